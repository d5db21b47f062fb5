"""A render that costs nothing, for bench/load.py only (``OPENR2V_ENGINE=noop_engine:noop_engine``
with this folder on PYTHONPATH): the load benchmark measures the service, not the compositor."""

from __future__ import annotations

from openr2v.config import Settings
from openr2v.engines.base import CancelledFn, ProgressFn, RenderJob, RenderResult


class NoopEngine:
    name = "noop"

    def render(self, job: RenderJob, progress: ProgressFn, cancelled: CancelledFn) -> RenderResult:
        out = job.workdir / "out.mp4"
        out.write_bytes(b"noop")
        return RenderResult(path=out, width=job.width, height=job.height, fps=job.fps,
                            frames=job.duration * job.fps, has_audio=job.audio)


def noop_engine(settings: Settings) -> NoopEngine:
    return NoopEngine()
