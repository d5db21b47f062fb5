"""Runs one claimed task through the pipeline, in numbered stages.

1. fetch every reference (caps, SSRF guard, cache) and probe it against the registry's limits
2. decide what the request left open (size from a first frame, seed); with ``prompt_extend`` and a
   prompt LLM configured, let it rewrite the prompt (its plan replaces the rule-based one)
3. render with the model's engine (progress, cancellation)
4. moderate what was made (tasks/moderation.py): the texts the render introduced and the MP4; a
   refusal fails the task before anything is stored or billed (the work directory goes, and the MP4)
5. store the MP4, compute usage, bill, and mark SUCCEEDED

Any ``OpenR2VError`` becomes FAILED with its code and message; anything else is an internal
bug and becomes FAILED InternalError. A task never stays RUNNING because of an exception.

While it runs, the task's lease is renewed (tasks/leases.py) and every write is fenced by the
attempt its claim made: a worker taken for dead (its task re-queued) stops at its next check and
can no longer change the task.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openr2v import metrics
from openr2v.domain.billing import compute_usage, reported_usage
from openr2v.domain.models import REGISTRY, TIERS, FileLimits, ModelSpec
from openr2v.domain.prompt import ShotPlan, plan_prompt
from openr2v.domain.request import GenerationRequest
from openr2v.domain.task import Task
from openr2v.engines.base import Engine, RenderJob, RenderResult, ResolvedReference
from openr2v.errors import Canceled, InvalidParameter, OpenR2VError, UnsupportedFileFormat
from openr2v.logs import task_context
from openr2v.media.fetch import Fetcher
from openr2v.media.probe import MediaInfo, check_limits, probe
from openr2v.tasks.leases import Leases, worker_name
from openr2v.tasks.moderation import RECHECK, output_texts
from openr2v.tasks.prompt_extend import PromptRewriter
from openr2v.tasks.service import TaskService
from openr2v.tasks.store import LedgerEntry

__all__ = ["Runner"]

log = logging.getLogger("openr2v.worker")
FPS = 30


class Runner:
    def __init__(self, service: TaskService, fetcher: Fetcher, engine_for: Callable[[str], Engine],
                 work_root: Path, prompt_rewriter: PromptRewriter | None = None) -> None:
        self.service = service
        self.fetcher = fetcher
        self.engine_for = engine_for
        self.work_root = work_root
        self.prompt_rewriter = prompt_rewriter
        self.worker_id = worker_name()
        self.leases = Leases(service, max(0.2, service.config.lease_seconds / 3))

    def handle(self, task_id: str) -> None:
        """Claim and run a task if it is still PENDING (or RUNNING on a lease that ran out)."""
        task = self.service.claim(task_id, self.worker_id)
        if task is None and self.service.reap_task(task_id):
            task = self.service.claim(task_id, self.worker_id)
        if task is not None:
            self.run(task)

    def run(self, task: Task) -> None:
        with task_context(task.id):  # every log line of the run names the task
            self._run_claimed(task)

    def _run_claimed(self, task: Task) -> None:
        workdir = self.work_root / f"{task.id}-{task.attempts}"
        workdir.mkdir(parents=True, exist_ok=True)
        attempt = task.attempts
        self.leases.hold(task.id, attempt)
        try:
            self._run(task, workdir)
        except Canceled:
            self.service.mark_canceled(task.id, attempt)
        except OpenR2VError as e:
            log.info("task %s failed: %s %s", task.id, e.code, e.message)
            self.service.fail(task.id, e.code, e.message, attempt)
        except Exception as e:  # an internal bug: record it, never leave the task RUNNING
            log.exception("task %s crashed", task.id)
            self.service.fail(task.id, "InternalError", f"Internal error while generating the video: "
                                                        f"{type(e).__name__}.", attempt)
        finally:
            self.leases.release(task.id)
            shutil.rmtree(workdir, ignore_errors=True)

    def _stop_asked(self, task: Task) -> bool:
        """Canceled by its owner, or this worker's lease on it is gone."""
        return self.leases.lost(task.id) or self.service.is_canceled(task.id)

    def _run(self, task: Task, workdir: Path) -> None:
        req = task.request
        spec = REGISTRY[req.model]
        svc = self.service
        if svc.moderator is not None and task.extra.get(RECHECK):
            svc.moderator.check_input(req)  # the hook failed at submit; failing again here fails the task
        refs, first, soundtrack = self._resolve(task, spec)
        svc.progress(task.id, 5, task.attempts)
        (width, height), seed, plan, rewritten = self._decide(task, first)
        job = RenderJob(task_id=task.id, request=req, references=refs, width=width, height=height,
                        duration=req.duration, fps=FPS, audio=req.audio, watermark=req.watermark, seed=seed,
                        workdir=workdir, first_frame=first, soundtrack=soundtrack, plan=plan,
                        extra=dict(task.extra), save_extra=lambda extra: svc.store.update_fields(task.id, extra=extra),
                        owner_canceled=lambda: svc.is_canceled(task.id))
        engine = self.engine_for(req.model)
        started = time.monotonic()
        result = engine.render(job, lambda p: svc.progress(task.id, 10 + int(p * 0.85), task.attempts),
                               lambda: self._stop_asked(task))
        metrics.RENDER_SECONDS.labels(getattr(engine, "name", type(engine).__name__)).observe(
            time.monotonic() - started)
        # Moderate the output before anything is kept: a refusal raises, run() fails the task and
        # removes the work directory with the MP4; no ledger row is written.
        if svc.moderator is not None:
            texts = output_texts(result.actual_prompt or rewritten, plan, result.notes)
            svc.moderator.check_output(req, texts, result.path, task.id, result.notes)
        self._finish(task, spec, job, result, seed)

    def _resolve(self, task: Task, spec: ModelSpec) -> tuple[list[ResolvedReference], ResolvedReference | None,
                                                            Path | None]:
        """Fetch and probe every input: (references, first frame, soundtrack)."""
        req = task.request
        refs: list[ResolvedReference] = []
        for ref in req.references:
            path, info = self._fetch(ref.source, ref.field, spec, expected=ref.kind)
            voice_path = voice_info = None
            if ref.voice:
                voice_path, voice_info = self._fetch(ref.voice, ref.voice_field, spec, expected="audio")
            refs.append(ResolvedReference(label=ref.label, kind=info.kind, path=path, info=info,
                                          voice_path=voice_path, voice_info=voice_info))
            if self._stop_asked(task):
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
        return refs, first, soundtrack

    def _decide(self, task: Task, first: ResolvedReference | None) -> tuple[tuple[int, int], int,
                                                                             dict[str, Any] | None, str | None]:
        """What the request left to us, recorded on the task: the size (after a first frame), the seed, and
        the plan (a prompt LLM's rewrite when one is configured): (size, seed, plan, rewritten prompt)."""
        req = task.request
        size = req.size
        if size is None:
            size = req.size = size_for_first_frame(req, first.info if first else None)
            self.service.store.update_fields(task.id, request=req)
        seed = req.seed if req.seed is not None else random.Random(task.id).randrange(0, 2**31 - 1)
        plan = task.plan
        rewritten: str | None = None
        if req.prompt_extend and self.prompt_rewriter is not None:
            plan, rewritten = self._extend_prompt(task, seed) or (plan, None)
            if self._stop_asked(task):
                raise Canceled("canceled")
        return size, seed, plan, rewritten

    def _finish(self, task: Task, spec: ModelSpec, job: RenderJob, result: RenderResult, seed: int) -> None:
        """Store, bill, finish. A retry writes a key of its own: a lost earlier attempt that wakes up late
        must not overwrite or delete the object this one records."""
        svc, req, refs = self.service, task.request, job.references
        key = f"outputs/{task.id}.mp4" if task.attempts <= 1 else f"outputs/{task.id}-{task.attempts}.mp4"
        svc.storage.put(key, result.path)
        # What the engine actually did (casting, shots, sizes), kept with the task for the client to see.
        latest = svc.store.get(task.id)
        notes = json.loads(json.dumps(result.notes, default=str))
        svc.store.update_fields(task.id, extra={**(latest.extra if latest else job.extra), "render": notes})
        if result.actual_prompt:
            svc.store.update_fields(task.id, actual_prompt=result.actual_prompt)
        if result.usage is not None:  # measured by the renderer (an upstream service): its numbers bill
            rep = reported_usage(spec, result.usage, width=result.width, height=result.height,
                                 audio=result.has_audio, duration=req.duration)
            ledger = LedgerEntry(task_id=task.id, input_seconds=rep.input_seconds, output_seconds=rep.output_seconds,
                                 billed_seconds=rep.billed_seconds, cost_usd=rep.cost_usd)
            usage_dict = rep.usage | {"seed": seed, "cost_usd": rep.cost_usd}
        else:
            durations = [r.info.duration or 0.0 for r in refs if r.kind == "video"]
            usage = compute_usage(spec, video_durations=durations, reference_count=len(refs), width=result.width,
                                  height=result.height, duration=req.duration, audio=result.has_audio)
            ledger = LedgerEntry(task_id=task.id, input_seconds=usage.input_video_duration,
                                 output_seconds=usage.output_video_duration, billed_seconds=usage.duration,
                                 cost_usd=usage.cost_usd)
            usage_dict = usage.as_dict() | {"seed": seed, "cost_usd": usage.cost_usd}
        if not svc.succeed(task.id, key, usage_dict, ledger, task.attempts):
            svc.storage.delete(key)  # canceled or expired meanwhile: bill nothing

    def _extend_prompt(self, task: Task, seed: int) -> tuple[dict[str, Any], str] | None:
        """The prompt LLM's rewrite (plan, prompt), stored as the task's plan and actual_prompt; None keeps the
        rule-based form. A rewrite the moderator refuses fails the task before it is stored or rendered."""
        req = task.request
        rule_plan = (ShotPlan.from_dict(task.plan) if task.plan else
                     plan_prompt(req.prompt, [r.label for r in req.references], req.duration, req.shot_type, seed))
        ext = self.prompt_rewriter.rewrite(req, rule_plan, seed) if self.prompt_rewriter else None
        if ext is None:
            return None
        if self.service.moderator is not None:  # the rules only: the hook sees it with the video
            self.service.moderator.check_texts("output", {"actual_prompt": ext.prompt})
        plan = ext.plan.as_dict()
        self.service.store.update_fields(task.id, actual_prompt=ext.prompt, plan=plan)
        return plan, ext.prompt

    def _fetch(self, source: str, field: str, spec: ModelSpec, *, expected: str | None,
               limits: FileLimits | None = None) -> tuple[Path, MediaInfo]:
        if limits is None:
            limits = {"image": spec.image, "video": spec.video, "audio": spec.voice}.get(expected or "", None)
        max_bytes = limits.max_bytes if limits else max(spec.image.max_bytes, spec.video.max_bytes)
        try:
            path = self.fetcher.fetch(source, max_bytes=max_bytes, field=field)
        except OpenR2VError as e:
            metrics.FETCH_FAILURES.labels(e.code).inc()
            raise
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
