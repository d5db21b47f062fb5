"""The compositor engine: a CPU previz of the prompt, no model weights.

Stages: 1. the scene (plan, casting, cut-outs, plates; see ``scene``); 2. the soundtrack (always:
its speech envelopes move the speakers' mouths, even in a silent video); 3. captions and the
watermark, rendered once; 4. shot by shot, stage the shot and draw its frames in the encoder's
YUV 4:2:0 buffer, and encode. Everything is seeded by the job, so the same job gives the same bytes.

With ``parallel_shots`` each shot is drawn and encoded in isolation into its own segment (a keyframe at
every cut), ``shot_workers`` shots at a time, and the segments are joined without re-encoding, the
audio (global, made once in stage 2) muxed in the join: the same bytes on one worker or several.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from openr2v.config import Settings
from openr2v.engines.base import CancelledFn, ProgressFn, RenderJob, RenderResult
from openr2v.engines.common.cards import Layer
from openr2v.engines.common.shot_segments import HaltedFn, render_shot_segments
from openr2v.engines.common.sound import build_soundtrack, line_notes, room_bed, speak_ahead
from openr2v.engines.common.watermark import watermark_layer
from openr2v.engines.compositor.blend import planes_of
from openr2v.engines.compositor.captions import Caption, caption_layers, captions_wanted
from openr2v.engines.compositor.motion import fallback_envelopes
from openr2v.engines.compositor.pipeline import EncoderThread
from openr2v.engines.compositor.scene import Scene, build_scene, prepare_shot
from openr2v.engines.compositor.shots import FramePlan, ShotRender
from openr2v.errors import Canceled
from openr2v.media.encode import Mp4Writer

__all__ = ["CompositorEngine"]

CHECK_EVERY = 15  # frames between cancellation checks and progress reports
DRAWERS = 2  # frames drawn at once (2 cores)
_PREP_PERCENT = 10  # progress once stages 1-3 are done; drawing and encoding cover the rest


class CompositorEngine:
    name = "compositor"

    def __init__(self, preset: str = "veryfast", *, threads: int = 2, cache_dir: Path | None = None,
                 parallel_shots: bool = False, shot_workers: int = 2, drawers: int = DRAWERS) -> None:
        self.preset = preset
        self.drawers = max(1, drawers)
        self.parallel_shots = parallel_shots
        self.shot_workers = max(1, shot_workers)
        self.threads = threads  # fixed, not "auto": x264's bytes depend on it (determinism)
        self.cache_dir = cache_dir  # cut-out masks by file hash, shared by tasks; None: no cache


    @classmethod
    def from_settings(cls, settings: Settings) -> CompositorEngine:
        # Cut-out masks are cached by reference file hash: a reference seen again is not segmented again.
        return cls(preset=settings.x264_preset, cache_dir=settings.data_dir / "cache" / "cutouts",
                   parallel_shots=settings.parallel_shots, shot_workers=settings.shot_workers)
    def render(self, job: RenderJob, progress: ProgressFn, cancelled: CancelledFn) -> RenderResult:
        progress(0)
        # The engine runs in parallel at a coarse grain (references side by side, drawing beside x264);
        # OpenCV's own worker threads on top only contend for the 2 cores (~15% more CPU, measured).
        cv2.setNumThreads(1)
        frames = job.duration * job.fps
        clock = [time.perf_counter()]
        timings: dict[str, float] = {}

        def lap(stage: str) -> None:
            now = time.perf_counter()
            timings[stage] = round(now - clock[0], 3)
            clock[0] = now

        # 1. Scene, while the plan's lines are spoken (the slowest part of the sound) beside it.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="openr2v-speech") as early:
            spoken = early.submit(speak_ahead, job)
            scene = build_scene(job, self.cache_dir)
            notes = dict(scene.notes)
            lap("scene")
            _check(cancelled)
            bed = room_bed(job)  # while the speech is still being made
            ahead = spoken.result()
        # 2. Sound.
        sound = build_soundtrack(job, scene.plan, scene.loop_seconds, ahead, bed)
        lap("sound")
        envelopes: dict[str, np.ndarray] = getattr(sound, "envelopes", None) or {}
        if not any(e.any() for e in envelopes.values()):
            envelopes = fallback_envelopes(scene.plan.lines, frames, job.fps)
            notes["speech_envelopes"] = "from the plan's line windows"
        scene.visemes = getattr(sound, "visemes", None) or {}
        audio = sound.samples if job.audio else None
        if audio is not None:
            notes["audio_sources"] = sound.sources
        _check(cancelled)
        # 3. Overlays.
        placed = getattr(sound, "lines", None)
        lines = ([(p.label, p.start, p.end, p.text) for p in placed] if placed is not None
                 else [(ln.speaker, ln.start, ln.end, ln.text) for ln in scene.plan.lines])
        notes["lines"] = (line_notes(placed) if placed is not None
                          else [{"speaker": who, "start": start, "end": end} for who, start, end, _ in lines])
        captions: list[Caption] = []
        if captions_wanted(job.request.extensions):
            captions = caption_layers(lines, job.width, job.height, job.fps)
            notes["captions"] = [c.text for c in captions]
        mark = watermark_layer(job.width, job.height) if job.watermark else None
        notes["watermark"] = mark is not None
        lap("overlays")
        progress(_PREP_PERCENT)
        # 4. Draw and encode, shot by shot.
        final = job.workdir / "output.mp4"
        partial = job.workdir / ".output.partial.mp4"
        overlays = _Overlays(captions, mark)
        try:
            if self.parallel_shots:
                notes["shots"] = self._draw_segments(job, scene, envelopes, overlays, audio, partial, progress,
                                                     cancelled)
                notes["shot_workers"] = self.shot_workers
            else:
                with Mp4Writer(partial, job.width, job.height, frames, fps=job.fps, audio=audio,
                               preset=self.preset, threads=self.threads) as writer:
                    notes["shots"] = self._draw(job, scene, envelopes, overlays, writer, progress, cancelled)
        except BaseException:
            scene.cancel()  # cut-outs no shot got to (a failure, a cancel) are not made for nothing
            raise
        notes["casting"] = scene.finish()
        os.replace(partial, final)
        lap("frames")
        notes["timings_seconds"] = timings  # wall clock per stage: for the bench and the operator's eye
        progress(100)
        notes["engine"] = self.name
        notes["preset"] = self.preset
        return RenderResult(path=final, width=job.width, height=job.height, fps=job.fps, frames=frames,
                            has_audio=audio is not None, notes=notes)

    def _draw(self, job: RenderJob, scene: Scene, envelopes: dict[str, np.ndarray], overlays: _Overlays,
              writer: Mp4Writer, progress: ProgressFn, cancelled: CancelledFn) -> list[dict[str, object]]:
        meter = _Meter(progress, writer.frames)
        shot_notes = []
        # The next shot is staged while this one is drawn, so x264 is not left waiting at a cut.
        stager = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openr2v-stage")
        try:
            with EncoderThread(writer, (job.height * 3 // 2, job.width)) as encoder:
                ahead = stager.submit(prepare_shot, scene, scene.shots[0], job, envelopes) if scene.shots else None
                for i in range(len(scene.shots)):
                    _check(cancelled)
                    assert ahead is not None
                    shot = ahead.result()
                    if i + 1 < len(scene.shots):
                        ahead = stager.submit(prepare_shot, scene, scene.shots[i + 1], job, envelopes)
                    shot_notes.append(shot.notes)
                    _draw_frames(shot, encoder, overlays, meter, cancelled, self.drawers)
        finally:
            stager.shutdown(wait=False, cancel_futures=True)  # a failed or canceled render does not wait for it
        return shot_notes

    def _draw_segments(self, job: RenderJob, scene: Scene, envelopes: dict[str, np.ndarray], overlays: _Overlays,
                       audio: np.ndarray | None, out: Path, progress: ProgressFn,
                       cancelled: CancelledFn) -> list[dict[str, object]]:
        """Every shot into its own segment, ``shot_workers`` at a time; then the segments joined into ``out``."""
        meter = _Meter(progress, job.duration * job.fps)

        def one(index: int, path: Path, halted: HaltedFn) -> tuple[int, dict[str, object]]:
            spec = scene.shots[index]
            with Mp4Writer(path, job.width, job.height, spec.last - spec.first, fps=job.fps, preset=self.preset,
                           threads=self.threads) as writer, \
                    EncoderThread(writer, (job.height * 3 // 2, job.width)) as encoder:
                shot = prepare_shot(scene, spec, job, envelopes)
                _draw_frames(shot, encoder, overlays, meter, halted, self.drawers)
            return spec.last - spec.first, shot.notes

        return render_shot_segments(len(scene.shots), self.shot_workers, one, out, job.fps, audio=audio,
                                    cancelled=cancelled)


class _Overlays:
    """Captions and the watermark, drawn over every frame."""

    def __init__(self, captions: list[Caption], mark: tuple[Layer, int, int] | None) -> None:
        self.captions = captions
        self.mark = mark

    def draw(self, buf: np.ndarray, k: int) -> None:
        for cap in self.captions:
            if cap.first <= k < cap.last:
                cap.layer.draw(buf, cap.x, cap.y)
        if self.mark is not None:
            self.mark[0].draw(buf, self.mark[1], self.mark[2])


class _Meter:
    """Progress over the frames drawn, from one thread or several."""

    def __init__(self, progress: ProgressFn, total: int) -> None:
        self._progress, self._total = progress, total
        self._drawn = 0
        self._reported = _PREP_PERCENT
        self._lock = threading.Lock()

    def add(self, frames: int) -> None:
        with self._lock:
            self._drawn += frames
            percent = _PREP_PERCENT + (99 - _PREP_PERCENT) * self._drawn // self._total
            if percent != self._reported:
                self._progress(percent)
                self._reported = percent


def _draw_frames(shot: ShotRender, encoder: EncoderThread, overlays: _Overlays, meter: _Meter,
                 cancelled: CancelledFn, drawers: int) -> None:
    # Plans (geometry, face warp maps) are made in frame order on one thread (a face keeps its last warp for
    # reuse); frames are drawn ``drawers`` at a time from their plans and handed to the encoder in order, so the
    # bytes are those of a serial loop. One drawing thread is about as slow as x264 on a talking face's frame:
    # with more cores than 2 it would set the pace.
    def draw(k: int, buf: np.ndarray, plan: Future[FramePlan]) -> np.ndarray:
        shot.draw(k, planes_of(buf), plan.result())
        overlays.draw(buf, k)
        return buf

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="openr2v-plan") as planner, \
            ThreadPoolExecutor(max_workers=drawers, thread_name_prefix="openr2v-draw") as pool:
        drawing: deque[Future[np.ndarray]] = deque()
        try:
            for k in range(shot.first, shot.last):
                if (k - shot.first) % CHECK_EVERY == 0:
                    _check(cancelled)
                    if k > shot.first:
                        meter.add(CHECK_EVERY)
                plan = planner.submit(shot.plan, k)
                drawing.append(pool.submit(draw, k, encoder.acquire(), plan))
                if len(drawing) >= drawers:
                    encoder.submit(drawing.popleft().result())
            while drawing:
                encoder.submit(drawing.popleft().result())
        finally:
            for future in drawing:
                future.cancel()
    meter.add((shot.last - shot.first - 1) % CHECK_EVERY + 1)


def _check(cancelled: CancelledFn) -> None:
    if cancelled():
        raise Canceled("The task was canceled.")
