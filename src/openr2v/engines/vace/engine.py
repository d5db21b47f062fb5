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
   shot 1; a shot longer than one call continues from its last frame, on the same device), progress
   and cancellation from the denoising callback, then 16 to 30 fps, scale and crop to the contract
   size, watermark, encode into the shot's own segment. The segments are joined with hard cuts
   without re-encoding, the audio muxed in the join (``engines.common.shot_segments``).

The pipeline is loaded once, when the engine is built (once per worker process), and serves one
render at a time: its scheduler keeps per-call state, and one GPU gains nothing from two at once.
With several devices (``OPENR2V_VACE_DEVICES``) a pipeline is loaded on each, and a task's shots
render side by side, one thread per device taking the next shot; the shots are independent (each
has its own seed, from a CPU generator, and only shot 1 sees the first frame), so the bytes are the
same on one device or several (of one kind). One task at a time still holds all the pipelines:
a second task waits for the first to finish, whatever its shot count (simple, and never two tasks'
shots competing for one GPU).

Each task is sampled by its model's recipe (``VaceOptions.for_model``), switched in on every device's
pipeline before its shots (``sampling.Sampler``).
"""

from __future__ import annotations

import os
import queue
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from openr2v.config import Settings
from openr2v.engines.base import CancelledFn, ProgressFn, RenderJob, RenderResult
from openr2v.engines.common.shot_segments import HaltedFn, render_shot_segments
from openr2v.engines.common.sound import build_soundtrack, line_notes, plan_for
from openr2v.engines.common.sources import fit_still, load_still
from openr2v.engines.common.watermark import watermark_layer
from openr2v.engines.vace.loader import Loaded, devices, load_pipeline, on_device
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
from openr2v.errors import Canceled, InternalError, OpenR2VError
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
        # Every device is checked before any weights are read; then one whole pipeline on each.
        self.pipelines: list[Loaded] = [load_pipeline(self.options, device) for device in devices(self.options)]
        self.loaded: Loaded = self.pipelines[0]

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
        opts = self.options.for_model(job.request.model)  # the model's recipe (OPENR2V_VACE_RECIPE_OVERRIDES)
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
        adjustment = _adjustment(width, height, job.width, job.height)
        _record(job, {"model": self.loaded.notes["model"], "internal_size": [width, height],
                      "size_adjustment": adjustment, "native_fps": NATIVE_FPS, "recipe": opts.recipe,
                      "steps": opts.steps,
                      "model_frames": [sum(p.frames for p in parts) - len(parts) + 1 for parts in calls]})
        # 3. Sound and watermark.
        audio = None
        for loaded in self.pipelines:  # the model's recipe, on every device
            sampling = loaded.sampler.apply(opts)
        notes: dict[str, Any] = {"engine": self.name, **self.loaded.notes, **sampling,
                                 "devices": [loaded.device for loaded in self.pipelines],
                                 "load_seconds": round(sum(p.notes["load_seconds"] for p in self.pipelines), 3)}
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
        # 4. Shot by shot, side by side on the devices, each shot into its own segment; then joined.
        before = [loaded.counter.snapshot() for loaded in self.pipelines]
        first_frame = _first_frame(job, width, height)
        final, partial = job.workdir / "output.mp4", job.workdir / ".output.partial.mp4"
        steps = _Steps(progress, opts.steps * sum(map(len, calls)))
        runs = [_Run(k, loaded, opts, steps, cast) for k, loaded in enumerate(self.pipelines)]
        free: queue.SimpleQueue[_Run] = queue.SimpleQueue()  # a device is taken for a whole shot
        for one_run in runs:
            free.put(one_run)

        def render_shot(i: int, path: Path, halted: HaltedFn) -> tuple[int, dict[str, Any]]:
            shot, parts = shots[i], calls[i]
            run = free.get()
            try:
                prompt = shot_prompt(plan, shot.shot, cast.names, job.request.prompt)
                native = run.shot(prompt, _negative(job, opts), parts, width, height,
                                  first_frame if i == 0 else None, seed=job.seed + 1009 * i, halted=halted, index=i)
                with Mp4Writer(path, job.width, job.height, shot.count, fps=job.fps, preset=opts.preset,
                               threads=2) as writer:
                    for frame in resample(native, shot.count, job.fps, blend=opts.interpolation == "blend"):
                        _write(writer, to_contract(frame, job.width, job.height), mark)
                run.shots.append(shot.shot.index)
                return shot.count, {"index": shot.shot.index, "frames": [shot.first, shot.last],
                                    "model_frames": int(native.shape[0]), "calls": len(parts), "prompt": prompt,
                                    "device": run.device, "pipeline": run.number}
            finally:
                free.put(run)

        shot_notes = render_shot_segments(len(shots), len(runs), render_shot, partial, job.fps, audio=audio,
                                          cancelled=cancelled)
        os.replace(partial, final)
        clock.lap("shots")
        passes: dict[str, int] = {}
        blocks = 0
        for (passes_before, blocks_before), run in zip(before, runs, strict=True):
            run.count_work(passes_before, blocks_before)
            for role, n in run.passes.items():
                passes[role] = passes.get(role, 0) + n
            blocks += run.blocks
        progress(100)
        notes.update({
            "plan_mode": plan.mode, "references": cast.notes(), "shots": shot_notes,
            "internal_size": [width, height], "native_fps": NATIVE_FPS, "steps": opts.steps,
            "guidance_scale": opts.guidance_scale, "first_frame": first_frame is not None,
            "size_adjustment": adjustment,
            "timings_seconds": clock.laps, "seconds_per_step": _median([t for run in runs for t in run.step_times]),
            "denoising_steps": steps.done, "transformer_passes": passes, "blocks_computed": blocks,
            # Per device: the busiest one's passes are the render's critical path.
            "device_work": [run.work() for run in runs],
        })
        return RenderResult(path=final, width=job.width, height=job.height, fps=job.fps, frames=frames,
                            has_audio=audio is not None, notes=notes)


class _Steps:
    """Progress over all the task's denoising steps, counted from every device's thread."""

    def __init__(self, progress: ProgressFn, total: int) -> None:
        self.progress = progress
        self.total = max(1, total)
        self.done = 0
        self.reported = _PREP_PERCENT
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.done += 1
            percent = _PREP_PERCENT + (95 - _PREP_PERCENT) * self.done // self.total
            if percent != self.reported:
                self.progress(percent)
                self.reported = percent


class _Run:
    """One device's pipeline calls for one task (one thread at a time): cancellation at each step."""

    def __init__(self, number: int, loaded: Loaded, opts: VaceOptions, steps: _Steps, cast: Cast) -> None:
        self.number, self.loaded, self.pipe, self.opts, self.steps = number, loaded, loaded.pipe, opts, steps
        self.device = loaded.device
        # Each device's own copies: PIL images are not for sharing between threads.
        self.references = [r.image.copy() for r in cast.references] or None
        self.halted: HaltedFn = lambda: False
        self.step_times: list[float] = []
        self.done = 0
        self.shots: list[int] = []
        self.passes: dict[str, int] = {}
        self.blocks = 0
        self._last = 0.0

    def shot(self, prompt: str, negative: str, parts: list[Segment], width: int, height: int,
             first_frame: Image.Image | None, *, seed: int, halted: HaltedFn, index: int) -> np.ndarray:
        """The shot's model frames (uint8, F x H x W x 3), rendered in ``parts`` and joined."""
        self.halted = halted
        pieces: list[np.ndarray] = []
        try:
            with on_device(self.device):
                for j, part in enumerate(parts):
                    start = pieces[-1][-1] if part.continues else None
                    frame0 = Image.fromarray(start) if start is not None else (first_frame if j == 0 else None)
                    out = self._call(prompt, negative, part.frames, width, height, frame0, seed + 7 * j)
                    pieces.append(out[1:] if part.continues else out)  # frame 0 repeats the previous part's last
        except OpenR2VError:
            raise
        except Exception as e:  # the task's error says which shot and device failed (the others stop)
            raise InternalError(f"Shot {index + 1} failed on {self.device} (pipeline {self.number + 1}): "
                                f"{type(e).__name__}: {e}") from e
        return np.concatenate(pieces)

    def _call(self, prompt: str, negative: str, count: int, width: int, height: int,
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
                            reference_images=self.references, height=height,
                            width=width, num_frames=count, num_inference_steps=self.opts.steps,
                            guidance_scale=self.opts.guidance_scale, generator=generator, output_type="np",
                            callback_on_step_end=self._on_step)
        except torch.cuda.OutOfMemoryError:
            raise InternalError(f"The GPU ({self.device}) ran out of memory rendering {count} frames at "
                                f"{width}x{height}; lower OPENR2V_VACE_MAX_AREA or set OPENR2V_VACE_OFFLOAD.") from None
        finally:
            self.pipe.maybe_free_model_hooks()  # also after a cancel: offloaded weights go back to the CPU
        frames = np.asarray(out.frames[0], dtype=np.float32)
        return (np.clip(frames, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)

    def _on_step(self, pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        now = time.perf_counter()
        self.step_times.append(now - self._last)
        self._last = now
        _check(self.halted)
        self.done += 1
        self.steps.add()
        return {}

    def count_work(self, passes_before: dict[str, int], blocks_before: int) -> None:
        passes, blocks = self.loaded.counter.snapshot()
        self.passes = {role: n - passes_before.get(role, 0) for role, n in passes.items()}
        self.blocks = blocks - blocks_before

    def work(self) -> dict[str, Any]:
        return {"pipeline": self.number, "device": self.device, "shots": self.shots, "denoising_steps": self.done,
                "transformer_passes": sum(self.passes.values()), "blocks_computed": self.blocks}


def _median(times: list[float]) -> float | None:
    """Median time of a denoising step (the first of each call also holds the prompt encoding)."""
    return round(statistics.median(times), 4) if times else None


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
