"""Runs one claimed task through the pipeline, in numbered stages.

1. fetch every reference (caps, SSRF guard, cache) and probe it against the registry's limits
2. decide what the request left open (size from a first frame, seed)
3. render with the model's engine (progress, cancellation)
4. store the MP4, compute usage, bill, and mark SUCCEEDED

Any ``OpenR2VError`` becomes FAILED with its code and message; anything else is an internal
bug and becomes FAILED InternalError. A task never stays RUNNING because of an exception.
"""

from __future__ import annotations

import logging
import random
import shutil
from collections.abc import Callable
from pathlib import Path

from openr2v.engines.base import Engine, RenderJob, ResolvedReference
from openr2v.errors import Canceled, InvalidParameter, OpenR2VError, UnsupportedFileFormat
from openr2v.media.fetch import Fetcher
from openr2v.media.probe import MediaInfo, check_limits, probe
from openr2v.spec.billing import compute_usage
from openr2v.spec.models import REGISTRY, TIERS, FileLimits, ModelSpec
from openr2v.spec.request import GenerationRequest
from openr2v.spec.task import Task
from openr2v.tasks.service import TaskService
from openr2v.tasks.store import LedgerEntry

__all__ = ["Runner"]

log = logging.getLogger("openr2v.worker")
FPS = 30


class Runner:
    def __init__(self, service: TaskService, fetcher: Fetcher, engine_for: Callable[[str], Engine],
                 work_root: Path) -> None:
        self.service = service
        self.fetcher = fetcher
        self.engine_for = engine_for
        self.work_root = work_root

    def handle(self, task_id: str) -> None:
        """Claim and run a task if it is still PENDING."""
        task = self.service.claim(task_id)
        if task is not None:
            self.run(task)

    def run(self, task: Task) -> None:
        workdir = self.work_root / task.id
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._run(task, workdir)
        except Canceled:
            self.service.mark_canceled(task.id)
        except OpenR2VError as e:
            log.info("task %s failed: %s %s", task.id, e.code, e.message)
            self.service.fail(task.id, e.code, e.message)
        except Exception as e:  # an internal bug: record it, never leave the task RUNNING
            log.exception("task %s crashed", task.id)
            self.service.fail(task.id, "InternalError", f"Internal error while generating the video: "
                                                        f"{type(e).__name__}.")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run(self, task: Task, workdir: Path) -> None:
        req = task.request
        spec = REGISTRY[req.model]
        svc = self.service

        # 1. Fetch and probe.
        refs: list[ResolvedReference] = []
        for ref in req.references:
            path, info = self._fetch(ref.source, ref.field, spec, expected=ref.kind)
            voice_path = voice_info = None
            if ref.voice:
                voice_field = f"{ref.field.rsplit('.', 1)[0]}.reference_voice"
                voice_path, voice_info = self._fetch(ref.voice, voice_field, spec, expected="audio")
            refs.append(ResolvedReference(label=ref.label, kind=info.kind, path=path, info=info,
                                          voice_path=voice_path, voice_info=voice_info))
            if svc.is_canceled(task.id):
                raise Canceled("canceled")
        images = sum(r.kind == "image" for r in refs)
        videos = sum(r.kind == "video" for r in refs)
        field = refs and req.references[0].field.rsplit("[", 1)[0] or "references"
        if images > spec.max_images:
            raise InvalidParameter(f"{field} holds {images} images; {spec.name} accepts at most "
                                   f"{spec.max_images}.", param=field)
        if videos > spec.max_videos:
            raise InvalidParameter(f"{field} holds {videos} videos; {spec.name} accepts at most "
                                   f"{spec.max_videos}.", param=field)
        first = None
        if req.first_frame:
            path, info = self._fetch(req.first_frame, "first_frame", spec, expected="image")
            first = ResolvedReference(label="first frame", kind="image", path=path, info=info)
        soundtrack = None
        if req.audio_url:
            soundtrack, _ = self._fetch(req.audio_url, "audio_url", spec, expected="audio",
                                        limits=spec.soundtrack)
        svc.progress(task.id, 5)

        # 2. Decisions the request left to us, recorded on the task.
        updates: dict[str, object] = {}
        if req.size is None:
            req.size = size_for_first_frame(req, first.info if first else None)
            updates["request"] = req
        seed = req.seed if req.seed is not None else random.Random(task.id).randrange(0, 2**31 - 1)
        if updates:
            svc.store.update_fields(task.id, **updates)

        # 3. Render.
        width, height = req.size
        job = RenderJob(task_id=task.id, request=req, references=refs, width=width, height=height,
                        duration=req.duration, fps=FPS, audio=req.audio, watermark=req.watermark, seed=seed,
                        workdir=workdir, first_frame=first, soundtrack=soundtrack, plan=task.plan)
        engine = self.engine_for(req.model)
        result = engine.render(job, lambda p: svc.progress(task.id, 10 + int(p * 0.85)),
                               lambda: svc.is_canceled(task.id))

        # 4. Store, bill, finish.
        key = f"outputs/{task.id}.mp4"
        svc.storage.put(key, result.path)
        durations = [r.info.duration or 0.0 for r in refs if r.kind == "video"]
        usage = compute_usage(spec, video_durations=durations, reference_count=len(refs), width=result.width,
                              height=result.height, duration=req.duration, audio=result.has_audio)
        ledger = LedgerEntry(task_id=task.id, input_seconds=usage.input_video_duration,
                             output_seconds=usage.output_video_duration, billed_seconds=usage.duration,
                             cost_usd=usage.cost_usd)
        usage_dict = usage.as_dict() | {"seed": seed, "cost_usd": usage.cost_usd}
        if not svc.succeed(task.id, key, usage_dict, ledger):
            svc.storage.delete(key)  # canceled or expired meanwhile: bill nothing

    def _fetch(self, source: str, field: str, spec: ModelSpec, *, expected: str | None,
               limits: FileLimits | None = None) -> tuple[Path, MediaInfo]:
        if limits is None:
            limits = {"image": spec.image, "video": spec.video, "audio": spec.voice}.get(expected or "", None)
        max_bytes = limits.max_bytes if limits else max(spec.image.max_bytes, spec.video.max_bytes)
        path = self.fetcher.fetch(source, max_bytes=max_bytes, field=field)
        info = probe(path, field=field)
        if limits is None:  # kind not known from the URL: the content decides
            if info.kind not in ("image", "video"):
                raise UnsupportedFileFormat(
                    f"{field}: the file is {info.format or 'not a supported format'}; use an image "
                    f"(JPEG, PNG, BMP, WEBP) or a video (MP4, MOV).", param=field)
            limits = spec.image if info.kind == "image" else spec.video
        check_limits(info, limits, field, expected)
        return path, info


def size_for_first_frame(req: GenerationRequest, frame: MediaInfo | None) -> tuple[int, int]:
    """wan2.7 with a first frame: the ratio of the tier closest to the frame's aspect."""
    table = TIERS[req.resolution or "1080P"]
    if frame is None or not frame.width or not frame.height:
        return table[req.ratio or "16:9"]
    aspect = frame.width / frame.height
    return min(table.values(), key=lambda wh: abs(wh[0] / wh[1] - aspect))
