"""The compositor engine: a CPU previz renderer that needs no model weights.

Stages: 1. scene (background plate, reference cards, their placements), 2. sound,
3. watermark, 4. composite every frame with numpy and encode. Everything is seeded by the
job, so the same job gives the same bytes.
"""

from __future__ import annotations

import os

import numpy as np

from openr2v.engines.base import CancelledFn, ProgressFn, RenderJob, RenderResult
from openr2v.engines.compositor.cards import Layer
from openr2v.engines.compositor.scene import Scene, build_scene
from openr2v.engines.compositor.sound import build_soundtrack
from openr2v.engines.compositor.watermark import watermark_layer
from openr2v.errors import Canceled
from openr2v.media.encode import Mp4Writer

__all__ = ["CompositorEngine"]

CHECK_EVERY = 15  # frames between cancellation checks and progress reports
_PREP_PERCENT = 5  # progress once stages 1-3 are done; encoding covers the rest


class CompositorEngine:
    name = "compositor"

    def __init__(self, preset: str = "veryfast", *, threads: int = 2) -> None:
        self.preset = preset
        self.threads = threads  # fixed, not "auto": x264's bytes depend on it (determinism)

    def render(self, job: RenderJob, progress: ProgressFn, cancelled: CancelledFn) -> RenderResult:
        progress(0)
        # 1. Scene.
        scene = build_scene(job)
        _check(cancelled)
        # 2. Sound.
        notes = dict(scene.notes)
        audio = None
        if job.audio:
            sound = build_soundtrack(job, scene.loop_seconds)
            audio = sound.samples
            notes["audio_sources"] = sound.sources
        _check(cancelled)
        # 3. Watermark.
        mark = watermark_layer(job.width, job.height) if job.watermark else None
        notes["watermark"] = mark is not None
        progress(_PREP_PERCENT)
        # 4. Composite and encode.
        frames = job.duration * job.fps
        final = job.workdir / "output.mp4"
        partial = job.workdir / ".output.partial.mp4"
        with Mp4Writer(partial, job.width, job.height, frames, fps=job.fps, audio=audio, preset=self.preset,
                       threads=self.threads) as writer:
            self._encode(scene, mark, writer, job.fps, progress, cancelled)
        os.replace(partial, final)
        progress(100)
        notes["engine"] = self.name
        notes["preset"] = self.preset
        return RenderResult(path=final, width=job.width, height=job.height, fps=job.fps, frames=frames,
                            has_audio=audio is not None, notes=notes)

    def _encode(self, scene: Scene, mark: tuple[Layer, int, int] | None, writer: Mp4Writer, fps: int,
                progress: ProgressFn, cancelled: CancelledFn) -> None:
        # One buffer reused: the writer copies each frame into its own before encoding.
        buf = np.empty_like(scene.plate)
        reported = _PREP_PERCENT
        for k in range(writer.frames):
            if k % CHECK_EVERY == 0:
                _check(cancelled)
                percent = _PREP_PERCENT + (99 - _PREP_PERCENT) * k // writer.frames
                if percent != reported:
                    progress(percent)
                    reported = percent
            _composite(scene, mark, buf, k, fps)
            writer.write_yuv420(buf)


def _composite(scene: Scene, mark: tuple[Layer, int, int] | None, buf: np.ndarray, k: int, fps: int) -> None:
    """Frame ``k`` into ``buf``: the plate, the cards at their sway positions, the watermark."""
    np.copyto(buf, scene.plate)
    t = k / fps
    opacity = min(1.0, k / scene.fade_frames) if scene.fade_frames else 1.0
    for card in scene.cards:
        x, y = card.place.at(t)
        card.layer.draw(buf, x, y, k, opacity)
    if mark is not None:
        layer, mx, my = mark
        layer.draw(buf, mx, my)


def _check(cancelled: CancelledFn) -> None:
    if cancelled():
        raise Canceled("The task was canceled.")
