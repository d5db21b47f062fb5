"""``DashScopeEngine``: submit upstream (or resume), poll, copy the result, report the upstream's usage.

The upstream task id lives in ``Task.extra["upstream"]``; its ``phase`` says how far a render got:

    (absent) ──► submitting ──► submitted (task_id) ──► the video is copied ──► SUCCEEDED here
                     │
                     └── a re-run finds "submitting": the upstream may or may not hold a task, and
                         DashScope has no idempotency key, so the task FAILS rather than risk a second
                         upstream task (and a second bill); the window is one HTTP round trip.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from openr2v.client import (
    APIConnectionError,
    APIError,
    Client,
    OpenR2VClientError,
    RateLimitError,
    ServerError,
    Task,
    TaskStatus,
    UploadError,
)
from openr2v.client.wire import normalize_base_url, poll_delays
from openr2v.config import Settings
from openr2v.domain.models import REGISTRY
from openr2v.engines.base import CancelledFn, ProgressFn, RenderJob, RenderResult
from openr2v.engines.upstream.body import build_body, stage
from openr2v.engines.upstream.common import STATE, pause, retry_after, save_state
from openr2v.engines.upstream.models import parse_model_map, upstream_model
from openr2v.errors import Canceled, InternalError, OpenR2VError
from openr2v.media.probe import probe

__all__ = ["DashScopeEngine", "UpstreamError"]

log = logging.getLogger("openr2v.engines.upstream")

_PUBLIC = ("http://", "https://")
# A submit answered with these created nothing (DashScope's 429 and 503 promise as much); 502 and
# 504 come from proxies that may have passed the request on, so they are not retried.
_REFUSED = (429, 503)


class UpstreamError(OpenR2VError):
    """The upstream refused the task or its task FAILED: its code and message become the task's."""

    http_status = 502


@dataclass
class _Clients:
    api: Client  # uploads, polls, cancel and download, with the SDK's retries
    submit: Client  # no retries of its own: this engine decides when a submit may be sent again
    base_url: str


class DashScopeEngine:
    name = "dashscope"

    def __init__(self, url: str, api_key: str, *, workspace: str | None = None,
                 models: Mapping[str, str] | None = None, forward_urls: bool = False, poll_seconds: float = 2.0,
                 max_poll_seconds: float = 15.0, timeout_seconds: float = 6 * 3600,
                 submit_patience_seconds: float = 600.0, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = normalize_base_url(url)
        self.api_key = api_key
        self.workspace = workspace
        self.models = dict(models or {})
        self.forward_urls = forward_urls
        self.poll_seconds = poll_seconds
        self.max_poll_seconds = max_poll_seconds
        self.timeout_seconds = timeout_seconds
        self.submit_patience_seconds = submit_patience_seconds
        self.transport = transport  # tests drive an app in-process or inject faults
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings, *, transport: httpx.BaseTransport | None = None) -> DashScopeEngine:
        if not settings.upstream_url or not settings.upstream_api_key:
            raise ValueError("the dashscope engine needs OPENR2V_UPSTREAM_URL and OPENR2V_UPSTREAM_API_KEY")
        return cls(settings.upstream_url, settings.upstream_api_key, workspace=settings.upstream_workspace,
                   models=parse_model_map(settings.upstream_models), forward_urls=settings.upstream_forward_urls,
                   poll_seconds=settings.upstream_poll_seconds, max_poll_seconds=settings.upstream_max_poll_seconds,
                   timeout_seconds=settings.upstream_timeout_seconds,
                   submit_patience_seconds=settings.upstream_submit_patience_seconds, transport=transport)

    # -- the render call --------------------------------------------------------------------

    def render(self, job: RenderJob, progress: ProgressFn, cancelled: CancelledFn) -> RenderResult:
        state: dict[str, Any] = dict(job.extra.get(STATE) or {})
        if state.get("phase") == "submitting":
            raise InternalError(
                "This server stopped while submitting this task upstream; whether the upstream created it "
                "cannot be known, so it is not submitted again (that could render and bill it twice).")
        # A task submitted before a configuration change is still polled where it lives.
        with self._clients(state.get("url") or self.url) as clients:
            if state.get("task_id"):
                log.info("task %s: resuming upstream task %s at %s", job.task_id, state["task_id"], clients.base_url)
            else:
                state = self._submit(clients, job, progress, cancelled)
            progress(15)
            done = self._wait(clients, job, state, progress, cancelled)
            return self._collect(clients, job, state, done, progress)

    @contextlib.contextmanager
    def _clients(self, url: str) -> Iterator[_Clients]:
        http = httpx.Client(transport=self.transport, timeout=60.0, follow_redirects=True)
        try:
            common: dict[str, Any] = dict(http_client=http, workspace=self.workspace, live_events=False)
            api = Client(url, self.api_key, **common)
            yield _Clients(api=api, submit=Client(url, self.api_key, max_retries=0, **common), base_url=api.base_url)
        finally:
            http.close()

    def _save(self, job: RenderJob, state: dict[str, Any] | None) -> None:
        save_state(job, state)

    # -- 1-3. upload, submit, record --------------------------------------------------------

    def _submit(self, clients: _Clients, job: RenderJob, progress: ProgressFn,
                cancelled: CancelledFn) -> dict[str, Any]:
        spec = REGISTRY[job.request.model]
        model = upstream_model(spec, self.models)
        folder = job.workdir / "upstream"
        uploads = 0

        def send(path: Path, source: str | None, stem: str) -> str:
            nonlocal uploads
            if self.forward_urls and source and source.lower().startswith(_PUBLIC):
                return source
            if cancelled():
                raise Canceled("canceled")
            try:
                url = clients.api.upload(stage(path, folder, stem), model)
            except UploadError as e:
                cause = e.__cause__
                if isinstance(cause, APIError) and cause.status_code == 401:
                    raise _refusal(cause) from None
                raise UpstreamError(e.message, code=e.code or "InternalError") from None
            uploads += 1
            progress(min(10, 2 * uploads))
            return url

        body = build_body(job, spec, model, send)
        deadline = time.monotonic() + self.submit_patience_seconds
        attempt = 0
        while True:
            if cancelled():
                raise Canceled("canceled")
            self._save(job, {"phase": "submitting", "url": clients.base_url, "model": model, "since": time.time()})
            try:
                task = clients.submit.submit_body(body)
            except (APIError, APIConnectionError) as e:
                if not _created_nothing(e):
                    if isinstance(e, APIConnectionError):
                        raise InternalError(
                            f"The connection to the upstream broke while submitting ({e.message}); whether it "
                            f"created the task cannot be known, so it is not submitted again.") from None
                    self._save(job, None)
                    raise _refusal(e) from None
                self._save(job, None)  # refused: nothing exists upstream, a later try is safe
                if time.monotonic() >= deadline:
                    raise _refusal(e) from None
                delay = _retry_after(e, attempt, self.max_poll_seconds)
                log.info("task %s: upstream refused the submit (%s); retrying in %.1f s", job.task_id, e, delay)
                attempt += 1
                if self._pause(min(delay, max(0.0, deadline - time.monotonic())), cancelled):
                    raise Canceled("canceled") from None
                continue
            if not task.task_id:
                raise InternalError("The upstream answered the submit without a task id.")
            state = {"phase": "submitted", "task_id": task.task_id, "url": clients.base_url, "model": model,
                     "request_id": task.request_id, "submitted_at": time.time()}
            self._save(job, state)
            log.info("task %s: upstream task %s (%s) at %s", job.task_id, task.task_id, model, clients.base_url)
            return state

    # -- 4. poll ----------------------------------------------------------------------------

    def _wait(self, clients: _Clients, job: RenderJob, state: dict[str, Any], progress: ProgressFn,
              cancelled: CancelledFn) -> Task:
        task_id = str(state["task_id"])
        ends = float(state.get("submitted_at") or time.time()) + self.timeout_seconds
        delays = poll_delays(self.poll_seconds, self.max_poll_seconds)
        errors = 0
        while True:
            if cancelled():
                self._stop(clients, job, task_id)
            try:
                task = clients.api.get(task_id)
            except (RateLimitError, ServerError, APIConnectionError) as e:
                # Throttled, unavailable or unreachable (after the SDK's own retries): the upstream task
                # itself is fine, so keep asking, further apart.
                delay = _retry_after(e, errors, self.max_poll_seconds)
                errors += 1
                log.info("task %s: polling upstream task %s failed (%s); again in %.1f s", job.task_id, task_id,
                         e, delay)
            except APIError as e:
                raise _refusal(e) from None
            else:
                errors = 0
                if task.status == TaskStatus.SUCCEEDED:
                    return task
                if task.status == TaskStatus.FAILED:
                    raise UpstreamError(task.message or "The upstream task failed.", code=task.code or "InternalError")
                if task.status == TaskStatus.CANCELED:
                    raise Canceled(f"The upstream task {task_id} was canceled.")
                if task.status == TaskStatus.UNKNOWN:
                    raise InternalError(f"The upstream no longer knows task {task_id} (expired, or never created).")
                progress(_estimate(task, float(state.get("submitted_at") or time.time())))
                delay = next(delays)
            if time.time() >= ends:
                self._cancel_upstream(clients, task_id)
                raise InternalError(f"The upstream task {task_id} did not finish within {self.timeout_seconds:g} s.")
            if self._pause(delay, cancelled):
                self._stop(clients, job, task_id)

    def _pause(self, seconds: float, cancelled: CancelledFn) -> bool:
        return pause(seconds, cancelled, self._sleep)

    def _stop(self, clients: _Clients, job: RenderJob, task_id: str) -> None:
        # Only the owner's cancel travels upstream: a worker that merely lost its lease leaves the
        # upstream task to the worker that took this task over (it resumes polling it).
        if job.owner_canceled is None or job.owner_canceled():
            self._cancel_upstream(clients, task_id)
        raise Canceled("canceled")

    def _cancel_upstream(self, clients: _Clients, task_id: str) -> None:
        try:
            clients.api.cancel(task_id)
        except OpenR2VClientError as e:  # DashScope cancels only PENDING tasks; a running one goes on
            log.info("upstream cancel of %s refused: %s", task_id, e)

    # -- 5. copy the result -----------------------------------------------------------------

    def _collect(self, clients: _Clients, job: RenderJob, state: dict[str, Any], task: Task,
                 progress: ProgressFn) -> RenderResult:
        if not task.video_url:
            raise InternalError(f"The upstream task {task.task_id} SUCCEEDED without a video_url.")
        progress(95)
        path = job.workdir / "upstream.mp4"
        try:
            task.download(path)  # right away: the upstream's URL expires (24 h on DashScope)
        except OpenR2VClientError as e:
            raise InternalError(f"Copying the upstream video of task {task.task_id} failed: {e}.") from None
        info = probe(path, field="the upstream video")
        if info.kind != "video" or not info.width or not info.height:
            raise InternalError(f"The upstream task {task.task_id} answered a {info.format} file, not a video.")
        fps = round(info.fps or 30)
        notes = {"upstream_task_id": task.task_id, "upstream_url": state.get("url"), "upstream_model":
                 state.get("model"), "upstream_request_id": state.get("request_id")}
        return RenderResult(path=path, width=info.width, height=info.height, fps=fps,
                            frames=round((info.duration or job.duration) * fps), has_audio=info.has_audio,
                            notes=notes, usage=dict(task.usage.raw) if task.usage else None,
                            actual_prompt=task.actual_prompt)


def _created_nothing(e: OpenR2VClientError) -> bool:
    """A submit error after which the upstream certainly holds no task: a refusal, or no connection at all."""
    if isinstance(e, APIError):
        return e.status_code in _REFUSED
    return isinstance(e.__cause__, httpx.ConnectError | httpx.ConnectTimeout)


def _refusal(e: APIError | APIConnectionError) -> OpenR2VError:
    """The upstream's answer as the task's failure: its code and message, with context where the
    client of this server could not make sense of it otherwise."""
    if isinstance(e, APIConnectionError):
        return InternalError(f"The upstream cannot be reached: {e.message}")
    code = e.code or f"HTTP{e.status_code}"
    if e.status_code == 401:
        # The client's own key was fine; it is this server's key that the upstream refused.
        return UpstreamError(f"The upstream service refused this server's credentials: {e.message}", code=code)
    return UpstreamError(e.message, code=code)


def _retry_after(e: OpenR2VClientError, attempt: int, cap: float) -> float:
    if isinstance(e, APIError):
        return retry_after(e.status_code, e.headers, attempt, cap)
    return retry_after(None, None, attempt, cap)


def _estimate(task: Task, submitted_at: float) -> int:
    """Progress 15-90 while the upstream works: its own figure when it gives one (openr2v's live
    events), else a curve of the time spent (DashScope says nothing until the end)."""
    if task.status != TaskStatus.RUNNING:
        return 15
    if isinstance(task.progress, int):
        return 20 + int(task.progress * 0.7)
    return 20 + int(70 * (1 - math.exp(-(time.time() - submitted_at) / 120)))
