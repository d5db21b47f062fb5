"""The vace engine: Wan2.1-VACE or Wan2.2-VACE-Fun through diffusers' ``WanVACEPipeline``, weights from a local
folder, sampled by a recipe (steps, guidance, scheduler, LoRAs, block cache; ``recipes.py``, ``tuning.py``).

Stages of ``render``:
1. the plan (recorded at submit) and the cast: every reference looked at and cast by the
   compositor's code, characters and objects cut out on white, labels turned into descriptions;
2. sizes and frames: the render size (multiples of 16, about ``max_area``), each shot's output
   frames and the 16 fps model frames (4k+1 per call) that cover them;
3. the soundtrack and the watermark, by the compositor's own code (``build_soundtrack``,
   ``watermark_layer``), so both engines sound and look alike there; the soundtrack is built for a
   silent video too, for its lines' phoneme timelines (``notes["lines"]``, see ``sound.line_notes``);
4. shot by shot: the pipeline renders the shot (with the first frame as conditioning frame 0 for
   shot 1; a shot longer than one call continues from its last frame), progress and cancellation
   from the denoising callback, then 16 to 30 fps, scale and crop to the contract size, watermark,
   encode. Shots are joined with hard cuts.

The pipeline is loaded once, when the engine is built (once per worker process), and serves one
render at a time: its scheduler keeps per-call state, and one GPU gains nothing from two at once.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Any

import numpy as np
from PIL import Image

from openr2v.config import Settings
from openr2v.engines.base import CancelledFn, ProgressFn, RenderJob, RenderResult
from openr2v.engines.common.sound import build_soundtrack, line_notes, plan_for
from openr2v.engines.common.sources import fit_still, load_still
from openr2v.engines.common.watermark import watermark_layer
from openr2v.engines.vace.loader import Loaded, load_pipeline
from openr2v.engines.vace.options import VaceOptions
from openr2v.engines.vace.references import Cast, cast_references, shot_prompt
from openr2v.engines.vace.timing import (
    NATIVE_FPS,
    Segment,
    internal_size,
    native_count,
    resample,
    segments,
    shot_frames,
    to_contract,
)
from openr2v.errors import Canceled, InternalError
from openr2v.media.encode import Mp4Writer

__all__ = ["VaceEngine"]

STATE = "vace"  # the key of Task.extra this engine writes: what it rendered at, kept on the task
_PREP_PERCENT = 5  # progress once the cast and the soundtrack are ready; denoising covers up to 95
_GREY = (128, 128, 128)  # "nothing known here" in VACE's conditioning video (0 in its [-1, 1] range)


class VaceEngine:
    name = "vace"

    def __init__(self, options: VaceOptions) -> None:
        self.options = options.checked()
        self._lock = threading.Lock()
        self.loaded: Loaded = load_pipeline(self.options)

    @classmethod
    def from_settings(cls, settings: Settings) -> VaceEngine:
        return cls(VaceOptions.from_settings(settings))

    def render(self, job: RenderJob, progress: ProgressFn, cancelled: CancelledFn) -> RenderResult:
        while not self._lock.acquire(timeout=0.5):  # another task holds the pipeline: wait, cancellable
            _check(cancelled)
        try:
            return self._render(job, progress, cancelled)
        finally:
            self._lock.release()

    def _render(self, job: RenderJob, progress: ProgressFn, cancelled: CancelledFn) -> RenderResult:
        opts = self.options
        progress(0)
        clock = _Clock()
        frames = job.duration * job.fps
        # 1. Plan and cast.
        plan = plan_for(job)
        cast = cast_references(job, opts.label_template)
        clock.lap("references")
        _check(cancelled)
        # 2. Sizes and frames.
        width, height = internal_size(job.width, job.height, opts.max_area)
        shots = shot_frames(plan.shots, job.fps, frames)
        calls = [segments(native_count(s.count, job.fps), opts.max_frames) for s in shots]
        run = _Run(self.loaded.pipe, opts, progress, cancelled, total_steps=opts.steps * sum(map(len, calls)))
        adjustment = _adjustment(width, height, job.width, job.height)
        _record(job, {"model": self.loaded.notes["model"], "internal_size": [width, height],
                      "size_adjustment": adjustment, "native_fps": NATIVE_FPS, "steps": opts.steps,
                      "model_frames": [sum(p.frames for p in parts) - len(parts) + 1 for parts in calls]})
        # 3. Sound and watermark.
        audio = None
        notes: dict[str, Any] = {"engine": self.name, **self.loaded.notes}
        # Built for a silent video too: its lines' phoneme timelines are for a lip-sync stage.
        sound = build_soundtrack(job, plan, {})
        notes["lines"] = line_notes(sound.lines)
        if job.audio:
            audio = sound.samples
            notes["audio_sources"] = sound.sources
        mark = watermark_layer(job.width, job.height) if job.watermark else None
        notes["watermark"] = mark is not None
        clock.lap("sound")
        progress(_PREP_PERCENT)
        # 4. Shot by shot.
        passes_before, blocks_before = self.loaded.counter.snapshot()
        first_frame = _first_frame(job, width, height)
        final, partial = job.workdir / "output.mp4", job.workdir / ".output.partial.mp4"
        shot_notes = []
        with Mp4Writer(partial, job.width, job.height, frames, fps=job.fps, audio=audio, preset=opts.preset,
                       threads=2) as writer:
            for i, (shot, parts) in enumerate(zip(shots, calls, strict=True)):
                _check(cancelled)
                prompt = shot_prompt(plan, shot.shot, cast.names, job.request.prompt)
                native = run.shot(prompt, _negative(job, opts), cast, parts, width, height,
                                  first_frame if i == 0 else None, seed=job.seed + 1009 * i)
                for frame in resample(native, shot.count, job.fps, blend=opts.interpolation == "blend"):
                    _write(writer, to_contract(frame, job.width, job.height), mark)
                shot_notes.append({"index": shot.shot.index, "frames": [shot.first, shot.last],
                                   "model_frames": int(native.shape[0]), "calls": len(parts), "prompt": prompt})
        os.replace(partial, final)
        clock.lap("shots")
        passes, blocks = self.loaded.counter.snapshot()
        progress(100)
        notes.update({
            "plan_mode": plan.mode, "references": cast.notes(), "shots": shot_notes,
            "internal_size": [width, height], "native_fps": NATIVE_FPS, "steps": opts.steps,
            "guidance_scale": opts.guidance_scale, "first_frame": first_frame is not None,
            "size_adjustment": adjustment,
            "timings_seconds": clock.laps, "seconds_per_step": run.seconds_per_step(),
            "denoising_steps": run.done,
            "transformer_passes": {role: n - passes_before.get(role, 0) for role, n in passes.items()},
            "blocks_computed": blocks - blocks_before,
        })
        return RenderResult(path=final, width=job.width, height=job.height, fps=job.fps, frames=frames,
                            has_audio=audio is not None, notes=notes)


class _Run:
    """Pipeline calls for one task: progress over all its denoising steps, cancellation at each one."""

    def __init__(self, pipe: Any, opts: VaceOptions, progress: ProgressFn, cancelled: CancelledFn,
                 total_steps: int) -> None:
        self.pipe, self.opts, self.progress, self.cancelled = pipe, opts, progress, cancelled
        self.total = max(1, total_steps)
        self.done = 0
        self.reported = _PREP_PERCENT
        self.step_times: list[float] = []
        self._last = 0.0

    def shot(self, prompt: str, negative: str, cast: Cast, parts: list[Segment], width: int, height: int,
             first_frame: Image.Image | None, seed: int) -> np.ndarray:
        """The shot's model frames (uint8, F x H x W x 3), rendered in ``parts`` and joined."""
        pieces: list[np.ndarray] = []
        for j, part in enumerate(parts):
            start = pieces[-1][-1] if part.continues else None
            frame0 = Image.fromarray(start) if start is not None else (first_frame if j == 0 else None)
            out = self._call(prompt, negative, cast, part.frames, width, height, frame0, seed + 7 * j)
            pieces.append(out[1:] if part.continues else out)  # frame 0 repeats the previous part's last
        return np.concatenate(pieces)

    def _call(self, prompt: str, negative: str, cast: Cast, count: int, width: int, height: int,
              frame0: Image.Image | None, seed: int) -> np.ndarray:
        import torch

        video = mask = None
        if frame0 is not None:
            # VACE's frame conditioning: known frames are given with a black mask, the rest are grey
            # with a white mask (to be generated).
            video = [frame0.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)]
            video += [Image.new("RGB", (width, height), _GREY)] * (count - 1)
            mask = [Image.new("L", (width, height), 0)] + [Image.new("L", (width, height), 255)] * (count - 1)
        # A CPU generator: the same seed gives the same noise on any device.
        generator = torch.Generator("cpu").manual_seed(seed % 2**63)
        self._last = time.perf_counter()
        try:
            out = self.pipe(prompt=prompt, negative_prompt=negative, video=video, mask=mask,
                            reference_images=[r.image for r in cast.references] or None, height=height,
                            width=width, num_frames=count, num_inference_steps=self.opts.steps,
                            guidance_scale=self.opts.guidance_scale, generator=generator, output_type="np",
                            callback_on_step_end=self._on_step)
        except torch.cuda.OutOfMemoryError:
            raise InternalError(f"The GPU ran out of memory rendering {count} frames at {width}x{height}; "
                                "lower OPENR2V_VACE_MAX_AREA or set OPENR2V_VACE_OFFLOAD.") from None
        finally:
            self.pipe.maybe_free_model_hooks()  # also after a cancel: offloaded weights go back to the CPU
        frames = np.asarray(out.frames[0], dtype=np.float32)
        return (np.clip(frames, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)

    def _on_step(self, pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        now = time.perf_counter()
        self.step_times.append(now - self._last)
        self._last = now
        _check(self.cancelled)
        self.done += 1
        percent = _PREP_PERCENT + (95 - _PREP_PERCENT) * self.done // self.total
        if percent != self.reported:
            self.progress(percent)
            self.reported = percent
        return {}

    def seconds_per_step(self) -> float | None:
        """Median time of a denoising step (the first of each call also holds the prompt encoding)."""
        return round(statistics.median(self.step_times), 4) if self.step_times else None


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = round(now - self._t, 3)
        self._t = now


def _first_frame(job: RenderJob, width: int, height: int) -> Image.Image | None:
    if job.first_frame is None:
        return None
    return fit_still(load_still(job.first_frame.path).convert("RGB"), width, height)


def _record(job: RenderJob, record: dict[str, Any]) -> None:
    """Keep the render size and frames on the task (DESIGN: an adjustment is recorded, never silent)."""
    job.extra = {**job.extra, STATE: record}
    if job.save_extra is not None:
        job.save_extra(job.extra)


def _negative(job: RenderJob, opts: VaceOptions) -> str:
    return job.request.negative_prompt or opts.negative_prompt


def _write(writer: Mp4Writer, yuv: np.ndarray, mark: Any) -> None:
    if mark is not None:
        mark[0].draw(yuv, mark[1], mark[2])
    writer.write_yuv420(yuv)


def _adjustment(w: int, h: int, width: int, height: int) -> str:
    if (w, h) == (width, height):
        return f"rendered at {width}x{height}"
    return (f"rendered at {w}x{h} (sides multiples of 16, about OPENR2V_VACE_MAX_AREA pixels) and "
            f"scaled and centre-cropped to {width}x{height}")


def _check(cancelled: CancelledFn) -> None:
    if cancelled():
        raise Canceled("The task was canceled.")
