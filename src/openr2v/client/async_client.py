"""``AsyncClient``: the asyncio twin of ``Client`` (same wire, same retries, same results)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from openr2v.client import wire
from openr2v.client.errors import (
    APIConnectionError,
    APIError,
    InvalidRequestError,
    TaskCanceled,
    TaskFailed,
    UploadError,
    WaitTimeout,
)
from openr2v.client.settings import ClientSettings
from openr2v.client.sse import aiter_events
from openr2v.client.types import AsyncTask, BaseTask, Ref, TaskPage, TaskStatus

__all__ = ["AsyncClient"]

ProgressCallback = Callable[[AsyncTask], Awaitable[None] | None]


class _NoLiveEvents(Exception):
    pass


class AsyncClient:
    """Asynchronous client; see ``Client`` for the arguments. Use ``async with``."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *,
                 transport: httpx.AsyncBaseTransport | None = None, http_client: httpx.AsyncClient | None = None,
                 timeout: float = 60.0, max_retries: int = 3, retry_backoff: float = 0.5,
                 poll_interval: float = 1.0, max_poll_interval: float = 5.0, live_events: bool = True,
                 workspace: str | None = None) -> None:
        self.settings = ClientSettings.resolve(base_url, api_key, workspace=workspace, timeout=timeout,
                                               max_retries=max_retries, retry_backoff=retry_backoff,
                                               poll_interval=poll_interval, max_poll_interval=max_poll_interval,
                                               live_events=live_events)
        self._own_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=True)
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._live_supported: bool | None = None

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- HTTP with retries ------------------------------------------------------------------

    async def _send(self, method: str, url: str, *, auth: bool = True, idempotent: bool | None = None,
                    kwargs: Callable[[], dict[str, Any]] | None = None, **fixed: Any) -> httpx.Response:
        s = self.settings
        idempotent = method in ("GET", "HEAD") if idempotent is None else idempotent
        headers = {**(s.api_headers() if auth else s.plain_headers()), **fixed.pop("headers", {})}
        attempt = 0
        while True:
            try:
                with contextlib.ExitStack() as stack:
                    extra = kwargs() if kwargs else {}
                    for f in extra.pop("_close", []):
                        stack.callback(f.close)
                    resp = await self._http.request(method, url, headers=headers, **fixed, **extra)
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                if attempt < s.max_retries:
                    await self._sleep(wire.backoff_delay(attempt, s.retry_backoff))
                    attempt += 1
                    continue
                raise APIConnectionError(f"cannot reach {url}: {e}", code="ConnectionError") from e
            except httpx.TransportError as e:
                if idempotent and attempt < s.max_retries:
                    await self._sleep(wire.backoff_delay(attempt, s.retry_backoff))
                    attempt += 1
                    continue
                raise APIConnectionError(f"{method} {url} failed: {type(e).__name__}: {e}",
                                         code="ConnectionError") from e
            delay = wire.retry_delay(resp.status_code, resp.headers, attempt, s.max_retries, s.retry_backoff)
            if delay is not None:
                await self._sleep(delay)
                attempt += 1
                continue
            if resp.status_code >= 400:
                raise wire.api_error(resp)
            return resp

    async def _api(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        return wire.json_body(await self._send(method, self.base_url + path, **kw))

    def _bind(self, body: dict[str, Any]) -> AsyncTask:
        task: AsyncTask = AsyncTask.from_body(body)
        task._downloader = self._download_task
        return task

    # -- uploads ----------------------------------------------------------------------------

    async def upload(self, path: str | os.PathLike[str], model: str = wire.DEFAULT_MODEL) -> str:
        path = Path(path)
        try:
            body = await self._api("GET", "/uploads", params={"action": "getPolicy", "model": model})
        except APIError as e:
            raise UploadError(f"getting an upload policy for {path.name} failed: {e.message}", code=e.code,
                              request_id=e.request_id) from e
        policy = body.get("data") or {}
        try:
            oss_url, fields = wire.upload_form(policy, path)
        except KeyError as e:
            raise UploadError(f"the upload policy lacks {e}", code="InvalidPolicy") from None

        def form() -> dict[str, Any]:
            f = path.open("rb")
            return {"data": fields, "files": {"file": (path.name, f)}, "_close": [f]}

        try:
            resp = await self._send("POST", str(policy["upload_host"]), auth=False, idempotent=True, kwargs=form,
                                    timeout=max(self.settings.timeout, 600.0))
        except APIError as e:
            raise UploadError(f"uploading {path.name} failed: {e.message}", code=e.code,
                              request_id=e.request_id) from e
        if resp.status_code != 200:
            raise UploadError(f"uploading {path.name} answered HTTP {resp.status_code}", code="UploadFailed")
        return oss_url

    # -- tasks ------------------------------------------------------------------------------

    async def submit(self, prompt: str, references: Sequence[str | os.PathLike[str] | Ref] = (), *,
                     model: str = wire.DEFAULT_MODEL, first_frame: str | os.PathLike[str] | None = None,
                     negative_prompt: str | None = None, size: str | tuple[int, int] | None = None,
                     resolution: str | None = None, ratio: str | None = None, duration: int | None = None,
                     audio: bool | None = None, shot_type: str | None = None, seed: int | None = None,
                     watermark: bool | None = None, prompt_extend: bool | None = None,
                     callback_url: str | None = None, parameters: Mapping[str, Any] | None = None,
                     extra_input: Mapping[str, Any] | None = None) -> AsyncTask:
        refs = wire.prepare_refs(model, references, first_frame)
        uploaded = {p: await self.upload(p, model) for p in wire.local_files(refs)}
        refs = wire.swap_uploads(refs, uploaded)
        body = wire.build_body(model, prompt, refs, negative_prompt=negative_prompt, size=size,
                               resolution=resolution, ratio=ratio, duration=duration, audio=audio,
                               shot_type=shot_type, seed=seed, watermark=watermark, prompt_extend=prompt_extend,
                               callback_url=callback_url, parameters=parameters, extra_input=extra_input)
        return await self.submit_body(body)

    async def submit_body(self, body: Mapping[str, Any]) -> AsyncTask:
        headers = {"X-DashScope-Async": "enable", "Content-Type": "application/json"}
        if "oss://" in json.dumps(body.get("input", {})):
            headers["X-DashScope-OssResourceResolve"] = "enable"
        return self._bind(await self._api("POST", wire.SUBMIT_PATH, json=dict(body), headers=headers,
                                          idempotent=False))

    async def get(self, task_id: str) -> AsyncTask:
        return self._bind(await self._api("GET", f"/tasks/{task_id}"))

    async def cancel(self, task_id: str) -> None:
        await self._api("POST", f"/tasks/{task_id}/cancel", idempotent=True)

    async def list(self, *, status: str | None = None, model: str | None = None, start_time: str | None = None,
                   end_time: str | None = None, page_no: int = 1, page_size: int = 10) -> TaskPage:
        params = {"page_no": page_no, "page_size": page_size, "status": status, "model_name": model,
                  "start_time": start_time, "end_time": end_time}
        body = await self._api("GET", "/tasks", params={k: v for k, v in params.items() if v is not None})
        return TaskPage(tasks=[self._bind(item) for item in wire.list_items(body)],
                        total=int(body.get("total") or 0), page_no=int(body.get("page_no") or page_no),
                        page_size=int(body.get("page_size") or page_size))

    # -- openr2v extensions (not in Alibaba Cloud's API) --------------------------------------

    async def estimate(self, references: Sequence[str | os.PathLike[str] | Ref] = (), *,
                       model: str = wire.DEFAULT_MODEL, first_frame: str | os.PathLike[str] | None = None,
                       size: str | tuple[int, int] | None = None, resolution: str | None = None,
                       ratio: str | None = None, duration: int | None = None,
                       audio: bool | None = None) -> dict[str, Any]:
        """Billed seconds and cost of a request before submitting it; local files are uploaded, so that the
        server measures their kind and length (a URL of unknown length is billed at its cap)."""
        refs = wire.prepare_refs(model, references, first_frame)
        uploaded = {p: await self.upload(p, model) for p in wire.local_files(refs)}
        body = wire.build_body(model, "", wire.swap_uploads(refs, uploaded), size=size, resolution=resolution,
                               ratio=ratio, duration=duration, audio=audio)
        answer = await self._api("POST", "/openr2v/estimate", json=body, idempotent=True)
        return answer["output"]

    async def plan(self, prompt: str, references: Sequence[str | os.PathLike[str] | Ref] = (), *,
                   model: str = wire.DEFAULT_MODEL, duration: int | None = None, shot_type: str | None = None,
                   seed: int | None = None) -> dict[str, Any]:
        """The shot plan the server makes of a prompt (only the references' order and kinds count: nothing is
        read or uploaded)."""
        body = wire.build_body(model, prompt, wire.named_refs(references), duration=duration,
                               shot_type=shot_type, seed=seed)
        answer = await self._api("POST", "/openr2v/plan", json=body, idempotent=True)
        return answer["output"]

    async def quota(self) -> dict[str, Any]:
        """This key's limits, free quota, usage and what remains (docs/quotas.md)."""
        return (await self._api("GET", "/openr2v/quota"))["output"]

    async def watch(self, task_id: str, *, read_timeout: float = 60.0) -> AsyncIterator[AsyncTask]:
        url = f"{self.base_url}/tasks/{task_id}/events"
        headers = {**self.settings.api_headers(), "Accept": "text/event-stream"}
        timeout = httpx.Timeout(self.settings.timeout, read=read_timeout)
        try:
            async with self._http.stream("GET", url, headers=headers, timeout=timeout) as resp:
                kind = resp.headers.get("content-type", "")
                if resp.status_code in (404, 405, 501) or (resp.status_code == 200 and
                                                           not kind.startswith("text/event-stream")):
                    self._live_supported = False
                    raise _NoLiveEvents()
                if resp.status_code != 200:
                    await resp.aread()
                    raise wire.api_error(resp)
                self._live_supported = True
                async for event in aiter_events(resp.aiter_lines()):
                    if event.event in ("status", "progress"):
                        try:
                            body = json.loads(event.data)
                        except ValueError:
                            continue  # not ours to understand; the next event or a poll tells the state
                        yield self._bind(body)
        except httpx.TransportError as e:
            raise APIConnectionError(f"the event stream of {task_id} broke: {e}", code="ConnectionError") from e

    async def wait(self, task: str | BaseTask, *, on_progress: ProgressCallback | None = None,
                   timeout: float | None = None, live: bool | None = None) -> AsyncTask:
        task_id = task if isinstance(task, str) else task.task_id
        s = self.settings
        deadline = time.monotonic() + timeout if timeout is not None else None
        last: AsyncTask | None = None

        async def seen(t: AsyncTask) -> AsyncTask:
            nonlocal last
            if on_progress is not None and (last is None or (t.status, t.progress) != (last.status, last.progress)):
                result = on_progress(t)
                if asyncio.iscoroutine(result):
                    await result
            last = t
            return t

        delays = wire.poll_delays(s.poll_interval, s.max_poll_interval)
        use_live = s.live_events if live is None else live
        while True:
            if use_live and self._live_supported is not False:
                remaining = deadline - time.monotonic() if deadline is not None else 60.0
                try:
                    async for t in self.watch(task_id, read_timeout=max(1.0, min(60.0, remaining))):
                        if (await seen(t)).finished:
                            return t
                        if deadline is not None and time.monotonic() > deadline:
                            break
                except (_NoLiveEvents, APIConnectionError, APIError):
                    pass
            t = await seen(await self.get(task_id))
            if t.finished:
                return t
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"task {task_id} is still {t.status} after {timeout:g} s", t)
            delay = next(delays)
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            await self._sleep(delay)

    async def generate(self, prompt: str, references: Sequence[str | os.PathLike[str] | Ref] = (), *,
                       model: str = wire.DEFAULT_MODEL, output: str | os.PathLike[str] | None = None,
                       on_progress: ProgressCallback | None = None, timeout: float | None = None,
                       **params: Any) -> AsyncTask:
        task = await self.submit(prompt, references, model=model, **params)
        if on_progress is not None:
            result = on_progress(task)
            if asyncio.iscoroutine(result):
                await result
        done = await self.wait(task, on_progress=on_progress, timeout=timeout)
        if done.status == TaskStatus.FAILED:
            raise TaskFailed(done)
        if not done.succeeded:
            raise TaskCanceled(done)
        if output is not None:
            await done.download(output)
        return done

    # -- files ------------------------------------------------------------------------------

    async def download(self, task: str | BaseTask, path: str | os.PathLike[str]) -> Path:
        t = await self.get(task) if isinstance(task, str) else task
        return await self._download_task(t, Path(path))

    async def _download_task(self, task: BaseTask, path: Path) -> Path:
        if not task.video_url:
            raise InvalidRequestError(f"task {task.task_id} has no video (status {task.status})")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        attempt = 0
        while True:
            try:
                async with self._http.stream("GET", task.video_url, headers=self.settings.plain_headers()) as resp:
                    delay = wire.retry_delay(resp.status_code, resp.headers, attempt, self.settings.max_retries,
                                             self.settings.retry_backoff)
                    if delay is None:
                        if resp.status_code != 200:
                            await resp.aread()
                            raise wire.api_error(resp)
                        # Small blocking writes between awaits: a file is no socket; not worth a thread.
                        with tmp.open("wb") as f:
                            async for chunk in resp.aiter_bytes(1 << 16):
                                f.write(chunk)
                        os.replace(tmp, path)
                        return path
            except httpx.TransportError as e:
                tmp.unlink(missing_ok=True)
                if attempt >= self.settings.max_retries:
                    raise APIConnectionError(f"downloading {task.task_id} failed: {e}",
                                             code="ConnectionError") from e
                delay = wire.backoff_delay(attempt, self.settings.retry_backoff)
            await self._sleep(delay)
            attempt += 1
