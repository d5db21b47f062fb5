"""The engine interface: one render call per task, fed resolved local files.

Worker events an engine may emit: ``progress(percent)``; it polls ``cancelled()`` between
stages and raises ``openr2v.errors.Canceled`` when it returns True.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from openr2v.domain.request import GenerationRequest
from openr2v.media.probe import MediaInfo

__all__ = ["Engine", "RenderJob", "RenderResult", "ResolvedReference", "ProgressFn", "CancelledFn"]

ProgressFn = Callable[[int], None]
CancelledFn = Callable[[], bool]


@dataclass
class ResolvedReference:
    """A reference fetched to a local file and probed."""

    label: str  # what the prompt calls it: character2, Image 1, Video 2
    kind: str  # image | video
    path: Path
    info: MediaInfo
    voice_path: Path | None = None
    voice_info: MediaInfo | None = None


@dataclass
class RenderJob:
    task_id: str
    request: GenerationRequest
    references: list[ResolvedReference]
    width: int
    height: int
    duration: int  # seconds; frames = duration * fps exactly
    fps: int
    audio: bool
    watermark: bool
    seed: int
    workdir: Path
    first_frame: ResolvedReference | None = None
    soundtrack: Path | None = None
    plan: dict[str, Any] | None = None
    # Engine-private state of the task (Task.extra) as the worker found it, and how to persist a new
    # version before going on: an engine that starts work elsewhere (an upstream task) records it
    # here, so that a re-run after a crash resumes that work instead of starting it again.
    extra: dict[str, Any] = field(default_factory=dict)
    save_extra: Callable[[dict[str, Any]], None] | None = None
    # True once the task's owner canceled (or deleted) it; ``cancelled`` is also True when this
    # worker merely lost its lease, where work started elsewhere must go on for the next worker.
    owner_canceled: CancelledFn | None = None


@dataclass
class RenderResult:
    path: Path
    width: int
    height: int
    fps: int
    frames: int
    has_audio: bool
    notes: dict[str, Any] = field(default_factory=dict)
    # Usage as measured by whoever rendered (an upstream service): when set, it becomes the task's
    # usage and the ledger's billed seconds instead of openr2v's own computation.
    usage: dict[str, Any] | None = None
    # The prompt the renderer actually used (an upstream's prompt extension), when it says.
    actual_prompt: str | None = None


class Engine(Protocol):
    name: str

    def render(self, job: RenderJob, progress: ProgressFn, cancelled: CancelledFn) -> RenderResult: ...
