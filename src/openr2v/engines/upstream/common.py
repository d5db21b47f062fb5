"""What the upstream engines share: durable state on the task, pauses that notice a cancel, backoff."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from openr2v.client.wire import backoff_delay, retry_delay
from openr2v.engines.base import CancelledFn, RenderJob

__all__ = ["STATE", "pause", "retry_after", "save_state"]

STATE = "upstream"  # the key of Task.extra the upstream engines own


def save_state(job: RenderJob, state: dict[str, Any] | None) -> None:
    """Persist the engine's state on the task before going on: a re-run after a crash reads it back and
    resumes the upstream work instead of starting it again."""
    extra = {k: v for k, v in job.extra.items() if k != STATE}
    if state is not None:
        extra[STATE] = state
    job.extra = extra
    if job.save_extra is not None:
        job.save_extra(extra)


def pause(seconds: float, cancelled: CancelledFn, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Sleep ``seconds`` in short steps; True as soon as the task should stop."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if cancelled():
            return True
        sleep(min(0.25, left))
    return cancelled()


def retry_after(status: int | None, headers: Mapping[str, str] | None, attempt: int,
                cap: float) -> float:
    """The upstream's ``Retry-After`` when it sent one, else exponential backoff up to ``cap``."""
    if status is not None and headers is not None:
        h = httpx.Headers(headers)
        delay = retry_delay(status, h, 0, 1, 1.0)
        if delay is not None and ("retry-after" in h or "retry-after-ms" in h):
            return delay
    return min(cap, backoff_delay(attempt, 1.0))
