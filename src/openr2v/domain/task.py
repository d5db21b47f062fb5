"""The canonical task: one generation, whatever dialect submitted it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from openr2v.domain.request import GenerationRequest

__all__ = ["Status", "Task", "TERMINAL"]


class Status(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"  # expired, or never known


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELED})


@dataclass
class Task:
    id: str
    owner: str
    region: str
    model: str
    dialect: str
    request: GenerationRequest
    status: Status = Status.PENDING
    progress: int = 0
    submit_time: float = 0.0
    scheduled_time: float | None = None
    end_time: float | None = None
    code: str | None = None
    message: str | None = None
    output_key: str | None = None
    usage: dict[str, Any] | None = None
    orig_prompt: str | None = None
    actual_prompt: str | None = None
    plan: dict[str, Any] | None = None
    attempts: int = 0
    request_id: str = ""
    expires_at: float = 0.0
    # Engine-private state that must survive a restart (e.g. an upstream task id).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL
