"""Typed results of the SDK: tasks, usage, pages of tasks, and references to send."""

from __future__ import annotations

import enum
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

__all__ = ["AsyncTask", "BaseTask", "Ref", "Task", "TaskPage", "TaskStatus", "Usage"]

RefKind = Literal["image", "video", "first_frame"]


class TaskStatus(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"  # expired, or never known

    @classmethod
    def parse(cls, value: Any) -> TaskStatus:
        try:
            return cls(str(value).upper())
        except ValueError:
            return cls.UNKNOWN


# The statuses after which a task never changes (both official SDKs stop polling on these).
TERMINAL = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.UNKNOWN})


@dataclass(frozen=True)
class Ref:
    """One reference: a local path, an http(s) URL, an ``oss://`` upload or a data URI.

    ``kind`` matters for wan2.7 (``media[].type``) and is guessed from the file when omitted;
    ``voice`` is a wan2.7 ``reference_voice`` (a path or URL of a WAV/MP3 clip).
    """

    source: str | os.PathLike[str]
    kind: RefKind | None = None
    voice: str | os.PathLike[str] | None = None

    @classmethod
    def image(cls, source: str | os.PathLike[str], voice: str | os.PathLike[str] | None = None) -> Ref:
        return cls(source, "image", voice)

    @classmethod
    def video(cls, source: str | os.PathLike[str], voice: str | os.PathLike[str] | None = None) -> Ref:
        return cls(source, "video", voice)

    @classmethod
    def first_frame(cls, source: str | os.PathLike[str]) -> Ref:
        return cls(source, "first_frame")


@dataclass(frozen=True)
class Usage:
    """What a succeeded task was billed for (seconds) and produced."""

    duration: float = 0.0  # billed seconds: input video seconds + output seconds
    input_video_duration: float = 0.0
    output_video_duration: float = 0.0
    size: str | None = None
    sr: int | None = None
    video_count: int = 1
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, usage: dict[str, Any] | None) -> Usage | None:
        if not usage:
            return None
        return cls(duration=float(usage.get("duration") or 0), input_video_duration=float(
            usage.get("input_video_duration") or 0), output_video_duration=float(
            usage.get("output_video_duration") or usage.get("video_duration") or 0),
            size=usage.get("size"), sr=usage.get("SR"), video_count=int(usage.get("video_count") or 1), raw=usage)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


@dataclass
class BaseTask:
    """One generation task as the server last reported it. Times are the wire's UTC strings."""

    task_id: str
    status: TaskStatus
    request_id: str = ""
    model: str | None = None
    progress: int | None = None  # 0-100 from openr2v's live events; None when the server does not say
    submit_time: str | None = None
    scheduled_time: str | None = None
    end_time: str | None = None
    video_url: str | None = None
    orig_prompt: str | None = None
    actual_prompt: str | None = None
    code: str | None = None
    message: str | None = None
    usage: Usage | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == TaskStatus.SUCCEEDED

    @property
    def submitted_at(self) -> datetime | None:
        return _parse_time(self.submit_time)

    @property
    def started_at(self) -> datetime | None:
        return _parse_time(self.scheduled_time)

    @property
    def finished_at(self) -> datetime | None:
        return _parse_time(self.end_time)

    @classmethod
    def from_body(cls, body: dict[str, Any], *, progress: int | None = None) -> Any:
        """From a DashScope task body ``{request_id, output: {...}, usage}`` (or a bare output object)."""
        output = body.get("output")
        out: dict[str, Any] = output if isinstance(output, dict) else body
        status = TaskStatus.parse(out.get("task_status") or out.get("status"))
        if progress is None:
            progress = out.get("progress") if isinstance(out.get("progress"), int) else None
        if progress is None and status == TaskStatus.SUCCEEDED:
            progress = 100
        return cls(task_id=str(out.get("task_id") or ""), status=status, request_id=str(body.get("request_id") or ""),
                   model=out.get("model") or out.get("model_name"), progress=progress,
                   submit_time=out.get("submit_time"), scheduled_time=out.get("scheduled_time"),
                   end_time=out.get("end_time"), video_url=out.get("video_url"), orig_prompt=out.get("orig_prompt"),
                   actual_prompt=out.get("actual_prompt"), code=out.get("code") or None,
                   message=out.get("message") or None, usage=Usage.parse(body.get("usage") or out.get("usage")),
                   raw=body)


@dataclass
class Task(BaseTask):
    """A task from the synchronous ``Client``; ``download`` saves its MP4."""

    _downloader: Callable[[BaseTask, Path], Path] | None = field(default=None, repr=False, compare=False)

    def download(self, path: str | os.PathLike[str]) -> Path:
        """Save the video to ``path`` (do it soon: the URL expires, 24 h by default)."""
        if self._downloader is None:
            raise RuntimeError("this task is not bound to a client")
        return self._downloader(self, Path(path))


@dataclass
class AsyncTask(BaseTask):
    """A task from ``AsyncClient``; ``await task.download(path)`` saves its MP4."""

    _downloader: Callable[[BaseTask, Path], Awaitable[Path]] | None = field(default=None, repr=False,
                                                                             compare=False)

    async def download(self, path: str | os.PathLike[str]) -> Path:
        if self._downloader is None:
            raise RuntimeError("this task is not bound to a client")
        return await self._downloader(self, Path(path))


@dataclass
class TaskPage:
    """One page of ``list``: the tasks (newest first), and where the page sits."""

    tasks: list[Any]
    total: int
    page_no: int
    page_size: int

    @property
    def total_pages(self) -> int:
        return (self.total + self.page_size - 1) // self.page_size if self.page_size else 0
