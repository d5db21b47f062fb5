"""Engines for the upstream server (B) of the upstream-mode tests, where B's render is not what is tested
(``OPENR2V_ENGINE_OVERRIDES="wan2.6-r2v=tests.engines.upstream_engines:failing_engine"``)."""

from __future__ import annotations

import time

from openr2v.config import Settings
from openr2v.engines.base import CancelledFn, ProgressFn, RenderJob, RenderResult
from openr2v.errors import Canceled, DataInspectionFailed
from tests import mediagen

FAILURE_MESSAGE = "The output video may contain inappropriate content (upstream test engine)."


def _busy(seconds: float, progress: ProgressFn, cancelled: CancelledFn) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cancelled():
            raise Canceled("canceled")
        progress(50)
        time.sleep(0.05)


class TinyEngine:
    """A small real MP4 (320x192, silent, the requested duration) after a short wait."""

    name = "tiny"

    def render(self, job: RenderJob, progress: ProgressFn, cancelled: CancelledFn) -> RenderResult:
        _busy(0.3, progress, cancelled)
        out = mediagen.make_video(job.workdir / "out.mp4", 320, 192, float(job.duration), audio=False,
                                  seed=job.seed % 1000)
        return RenderResult(path=out, width=320, height=192, fps=30, frames=job.duration * 30, has_audio=False)


class FailingEngine:
    """Fails mid-render the way moderation does."""

    name = "failing"

    def render(self, job: RenderJob, progress: ProgressFn, cancelled: CancelledFn) -> RenderResult:
        _busy(0.3, progress, cancelled)
        raise DataInspectionFailed(FAILURE_MESSAGE)


def tiny_engine(settings: Settings) -> TinyEngine:
    return TinyEngine()


def failing_engine(settings: Settings) -> FailingEngine:
    return FailingEngine()


class SlowEngine(TinyEngine):
    """TinyEngine after a long (cancellable) wait: a render still running when the test acts."""

    name = "slow"

    def render(self, job: RenderJob, progress: ProgressFn, cancelled: CancelledFn) -> RenderResult:
        _busy(30, progress, cancelled)
        return super().render(job, progress, cancelled)


def slow_engine(settings: Settings) -> SlowEngine:
    return SlowEngine()
