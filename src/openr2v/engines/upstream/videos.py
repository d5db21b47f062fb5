"""``VideosEngine`` (``OPENR2V_ENGINE=videos``): render on an OpenAI-style ``/v1/videos`` server.

vLLM-Omni, SGLang diffusion, FastVideo or another openr2v (``OPENR2V_UPSTREAM_FLAVOR``; the request
shapes are in videos_body.py). One render call:

1. split the job into units: the whole prompt, or one per shot of the plan (``OPENR2V_UPSTREAM_SHOTS``)
2. create one upstream video per unit (in parallel), recording each upstream id on the task *before*
   waiting, so a re-run after a crash polls those videos instead of creating more
3. poll ``GET /v1/videos/{id}`` until each is completed; a cancel (or delete) of the task here
   deletes them upstream (``DELETE /v1/videos/{id}``)
4. download ``GET /v1/videos/{id}/content``; one video that already has the contract's size, fps
   and length is kept byte for byte, anything else is conformed, and shots are joined with hard cuts

Usage is openr2v's own (these servers report none). State in ``Task.extra["upstream"]``:
``{"url", "flavor", "videos": {unit: id}, "submitting": [units]}``; a unit found "submitting" after a
crash may or may not exist upstream, so the task fails rather than risk a second video.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from openr2v.client.wire import poll_delays
from openr2v.config import Settings
from openr2v.domain.models import REGISTRY
from openr2v.engines.base import CancelledFn, ProgressFn, RenderJob, RenderResult
from openr2v.engines.upstream.common import STATE, pause, retry_after, save_state
from openr2v.engines.upstream.engine import UpstreamError
from openr2v.engines.upstream.joins import join_clips
from openr2v.engines.upstream.models import parse_model_map
from openr2v.engines.upstream.videos_body import FLAVORS, Unit, build_request, shot_units, whole_unit
from openr2v.errors import Canceled, InternalError
from openr2v.media.probe import probe

__all__ = ["VideosEngine", "check_videos_settings"]

log = logging.getLogger("openr2v.engines.upstream.videos")

SHOTS = ("whole", "each")
_REFUSED = (429, 503)  # a create answered so created nothing


def check_videos_settings(settings: Settings) -> None:
    if not settings.upstream_url or not settings.upstream_url.lower().startswith(("http://", "https://")):
        raise ValueError("the videos engine needs OPENR2V_UPSTREAM_URL, the root of an OpenAI-style /v1/videos "
                         "server (e.g. http://gpu-host:8091)")
    if settings.upstream_flavor not in FLAVORS:
        raise ValueError(f"OPENR2V_UPSTREAM_FLAVOR {settings.upstream_flavor!r} is not one of {', '.join(FLAVORS)}")
    if settings.upstream_shots not in SHOTS:
        raise ValueError(f"OPENR2V_UPSTREAM_SHOTS {settings.upstream_shots!r} is not one of {', '.join(SHOTS)}")
    parse_model_map(settings.upstream_models)


def _root(url: str) -> str:
    base = url.strip().rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


class VideosEngine:
    name = "videos"

    def __init__(self, url: str, api_key: str | None = None, *, flavor: str = "vllm-omni", shots: str = "whole",
                 models: dict[str, str] | None = None, poll_seconds: float = 2.0, max_poll_seconds: float = 15.0,
                 timeout_seconds: float = 6 * 3600, submit_patience_seconds: float = 600.0,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = _root(url)
        self.api_key = api_key
        self.flavor = flavor
        self.shots = shots
        self.models = dict(models or {})
        self.poll_seconds = poll_seconds
        self.max_poll_seconds = max_poll_seconds
        self.timeout_seconds = timeout_seconds
        self.submit_patience_seconds = submit_patience_seconds
        self.transport = transport
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> VideosEngine:
        check_videos_settings(settings)
        assert settings.upstream_url is not None
        return cls(settings.upstream_url, settings.upstream_api_key, flavor=settings.upstream_flavor,
                   shots=settings.upstream_shots, models=parse_model_map(settings.upstream_models),
                   poll_seconds=settings.upstream_poll_seconds, max_poll_seconds=settings.upstream_max_poll_seconds,
                   timeout_seconds=settings.upstream_timeout_seconds,
                   submit_patience_seconds=settings.upstream_submit_patience_seconds)

    def _model(self, job: RenderJob) -> str | None:
        """The model name sent: the configured one; openr2v's own name to an openr2v; else the server's."""
        spec = REGISTRY[job.request.model]
        if spec.name in self.models:
            return self.models[spec.name]
        return spec.name if self.flavor == "openr2v" else None

    # -- the render call --------------------------------------------------------------------

    def render(self, job: RenderJob, progress: ProgressFn, cancelled: CancelledFn) -> RenderResult:
        state: dict[str, Any] = dict(job.extra.get(STATE) or {})
        if state.get("submitting"):
            raise InternalError(
                "This server stopped while creating this task's video upstream; whether the upstream created it "
                "cannot be known, so it is not created again (that could render it twice).")
        shots = state.get("shots") or self.shots
        flavor = state.get("flavor") or self.flavor
        units = shot_units(job) if shots == "each" else [whole_unit(job)]
        state = {"url": state.get("url") or self.url, "flavor": flavor, "shots": shots, "submitting": [],
                 "videos": dict(state.get("videos") or {}), "since": state.get("since") or time.time()}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        lock = threading.Lock()
        stop = threading.Event()  # one unit failing stops the others

        def halted() -> bool:
            return stop.is_set() or cancelled()

        with httpx.Client(base_url=state["url"], headers=headers, transport=self.transport, timeout=120.0,
                          follow_redirects=True) as http:
            def one(unit: Unit) -> Path:
                try:
                    key = str(unit.index)
                    if key not in state["videos"]:
                        self._create(http, job, unit, state, lock, flavor, halted)
                    video_id = state["videos"][key]
                    self._wait(http, job, video_id, float(state["since"]), progress, halted)
                    return self._download(http, job, video_id, unit)
                except BaseException:
                    stop.set()
                    raise

            with ThreadPoolExecutor(max_workers=min(8, len(units))) as pool:
                futures = [pool.submit(one, u) for u in units]
            failures = [e for f in futures if (e := f.exception()) is not None]
            if failures:
                # The cause, not a sibling that stopped because of it.
                error = next((e for e in failures if not isinstance(e, Canceled)), failures[0])
                if not isinstance(error, Canceled) or job.owner_canceled is None or job.owner_canceled():
                    self._delete_all(http, state)  # a lost lease leaves them to the next worker
                raise error
            clips = [f.result() for f in futures]
        progress(97)
        notes = {"upstream_url": state["url"], "upstream_flavor": flavor, "upstream_shots": shots,
                 "upstream_video_ids": [state["videos"][str(u.index)] for u in units]}
        out = job.workdir / "upstream.mp4"
        info = probe(clips[0], field="the upstream video")
        exact = (len(clips) == 1 and (info.width, info.height) == (job.width, job.height)
                 and round(info.fps or 0) == job.fps and round((info.duration or 0) * job.fps) == units[0].frames
                 and info.has_audio == job.audio)
        if exact:
            clips[0].replace(out)
        else:
            join_clips(clips, [u.frames for u in units], out, job.width, job.height, job.fps, audio=job.audio)
            notes["upstream_conformed"] = True
        return RenderResult(path=out, width=job.width, height=job.height, fps=job.fps, frames=job.duration * job.fps,
                            has_audio=job.audio, notes=notes)

    # -- create, recorded before waiting ----------------------------------------------------

    def _create(self, http: httpx.Client, job: RenderJob, unit: Unit, state: dict[str, Any], lock: threading.Lock,
                flavor: str, cancelled: CancelledFn) -> None:
        key = str(unit.index)
        body = build_request(job, unit, flavor, self._model(job))
        deadline = time.monotonic() + self.submit_patience_seconds
        attempt = 0
        while True:
            if cancelled():
                raise Canceled("canceled")
            with lock:
                state["submitting"].append(key)
                save_state(job, state)
            try:
                files = body.files or ([] if body.data is None else [("_", ("", b"", "application/octet-stream"))])
                r = http.post("/v1/videos", data=body.form(), files=files or None, json=body.json)
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                status, headers, error = None, None, f"The upstream cannot be reached: {e}"
            except httpx.HTTPError as e:
                raise InternalError(f"The connection to the upstream broke while creating a video ({e}); whether "
                                    f"it created one cannot be known, so it is not created again.") from None
            else:
                if r.status_code < 300:
                    video_id = str(r.json().get("id") or "")
                    if not video_id:
                        raise InternalError("The upstream answered the create without a video id.")
                    with lock:
                        state["submitting"].remove(key)
                        state["videos"][key] = video_id
                        save_state(job, state)
                    log.info("task %s: unit %s is upstream video %s at %s", job.task_id, key, video_id, state["url"])
                    return
                status, headers, error = r.status_code, r.headers, _message(r)
                if status not in _REFUSED:
                    with lock:
                        state["submitting"].remove(key)
                        save_state(job, state)
                    raise UpstreamError(f"The upstream refused the video: {error}", code=_code(r))
            with lock:  # refused or unreachable: nothing exists upstream, a later try is safe
                state["submitting"].remove(key)
                save_state(job, state)
            if time.monotonic() >= deadline:
                raise UpstreamError(error, code="Throttling" if status == 429 else "InternalError")
            delay = retry_after(status, headers, attempt, self.max_poll_seconds)
            attempt += 1
            if pause(min(delay, max(0.0, deadline - time.monotonic())), cancelled, self._sleep):
                raise Canceled("canceled")

    # -- poll -------------------------------------------------------------------------------

    def _wait(self, http: httpx.Client, job: RenderJob, video_id: str, since: float, progress: ProgressFn,
              cancelled: CancelledFn) -> None:
        delays = poll_delays(self.poll_seconds, self.max_poll_seconds)
        errors = 0
        while True:
            if cancelled():
                raise Canceled("canceled")
            delay = next(delays)
            try:
                r = http.get(f"/v1/videos/{video_id}")
            except httpx.HTTPError as e:
                r, delay = None, retry_after(None, None, errors, self.max_poll_seconds)
                errors += 1
                log.info("task %s: polling upstream video %s failed (%s)", job.task_id, video_id, e)
            if r is not None and (r.status_code == 429 or r.status_code >= 500):
                delay = retry_after(r.status_code, r.headers, errors, self.max_poll_seconds)
                errors += 1
            elif r is not None:
                if r.status_code == 404:
                    raise InternalError(f"The upstream no longer knows video {video_id} (deleted or expired).")
                if r.status_code >= 400:
                    raise UpstreamError(f"Polling upstream video {video_id}: {_message(r)}", code=_code(r))
                body = r.json()
                status = body.get("status")
                if status == "completed":
                    return
                if status == "failed":
                    err = body.get("error") or {}
                    raise UpstreamError(str(err.get("message") or f"The upstream video {video_id} failed."),
                                        code=str(err.get("code") or "InternalError"))
                if isinstance(body.get("progress"), int | float) and status == "in_progress":
                    progress(15 + int(float(body["progress"]) * 0.75))
                errors = 0
            if time.time() >= since + self.timeout_seconds:
                self._delete(http, video_id)
                raise InternalError(f"The upstream video {video_id} did not finish within {self.timeout_seconds:g} s.")
            if pause(delay, cancelled, self._sleep):
                raise Canceled("canceled")

    def _delete_all(self, http: httpx.Client, state: dict[str, Any]) -> None:
        for video_id in state["videos"].values():
            self._delete(http, video_id)

    def _delete(self, http: httpx.Client, video_id: str) -> None:
        try:
            r = http.delete(f"/v1/videos/{video_id}")
            if r.status_code >= 400 and r.status_code != 404:
                log.info("upstream delete of %s refused: %s", video_id, _message(r))
        except httpx.HTTPError as e:
            log.info("upstream delete of %s failed: %s", video_id, e)

    # -- copy -------------------------------------------------------------------------------

    def _download(self, http: httpx.Client, job: RenderJob, video_id: str, unit: Unit) -> Path:
        path = job.workdir / f"upstream-{unit.index}.mp4"
        for attempt in range(4):
            try:
                with http.stream("GET", f"/v1/videos/{video_id}/content") as r:
                    if r.status_code >= 400:
                        r.read()
                        raise UpstreamError(f"Copying upstream video {video_id}: {_message(r)}", code=_code(r))
                    with path.open("wb") as fh:
                        for chunk in r.iter_bytes(1 << 20):
                            fh.write(chunk)
                break
            except httpx.HTTPError as e:
                if attempt == 3:
                    raise InternalError(f"Copying upstream video {video_id} failed: {e}.") from None
                self._sleep(math.pow(2, attempt))
        info = probe(path, field="the upstream video")
        if info.kind != "video" or not info.width:
            raise InternalError(f"The upstream video {video_id} is a {info.format} file, not a video.")
        return path


def _message(r: httpx.Response) -> str:
    """The error text of an OpenAI-style (``{"error": {...}}``) or FastAPI (``{"detail": ...}``) answer."""
    try:
        body = r.json()
    except ValueError:
        return f"HTTP {r.status_code}: {r.text[:300]}"
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if body.get("detail"):
            return str(body["detail"])[:500]
        if body.get("message"):
            return str(body["message"])
    return f"HTTP {r.status_code}: {str(body)[:300]}"


def _code(r: httpx.Response) -> str:
    try:
        err = r.json().get("error")
    except (ValueError, AttributeError):
        err = None
    if isinstance(err, dict) and err.get("code"):
        return str(err["code"])
    return f"HTTP{r.status_code}"
