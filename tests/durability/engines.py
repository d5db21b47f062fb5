"""A trivial engine for tests where the render is not what is tested (``OPENR2V_ENGINE=
tests.durability.engines:sleep_engine``): it waits ``OPENR2V_TEST_RENDER_SECONDS`` (checking
for cancellation), then writes a small file that depends only on the request and the seed."""

from __future__ import annotations

import hashlib
import os
import time

from openr2v.config import Settings
from openr2v.engines.base import CancelledFn, ProgressFn, RenderJob, RenderResult
from openr2v.errors import Canceled


class SleepEngine:
    name = "sleep"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def render(self, job: RenderJob, progress: ProgressFn, cancelled: CancelledFn) -> RenderResult:
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            if cancelled():
                raise Canceled("canceled")
            progress(50)
            time.sleep(min(0.05, self.seconds))
        out = job.workdir / "out.mp4"
        digest = hashlib.sha256(f"{job.request.model_dump_json()}|{job.seed}".encode()).hexdigest()
        out.write_bytes(f"not a video: {digest}\n".encode())
        return RenderResult(path=out, width=job.width, height=job.height, fps=job.fps,
                            frames=job.duration * job.fps, has_audio=job.audio)


def sleep_engine(settings: Settings) -> SleepEngine:
    return SleepEngine(float(os.environ.get("OPENR2V_TEST_RENDER_SECONDS", "0.05")))
