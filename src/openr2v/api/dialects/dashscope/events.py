"""``GET /api/v1/tasks/{id}/events``: live status and progress as Server-Sent Events (openr2v extension).

Same key and ownership rules as ``GET /api/v1/tasks/{id}``. The stream reads the task store,
so it follows tasks rendered by any process (in-process workers or remote ones). It polls
cheaply: one primary-key read per interval, an event only when status or progress changed,
a comment line as keep-alive. Events:

    event: status     data: the task body of GET /tasks/{id}, plus output.progress (0-100)
    event: progress   same body, when only the progress moved

The stream ends after the event of a final status (SUCCEEDED, FAILED, CANCELED, UNKNOWN), or
after ``MAX_STREAM_SECONDS`` (reconnect to go on: the first event is always the current state).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from openr2v.api.common import dialect_route, principal, public_base, read_task, runtime
from openr2v.api.dialects.base import View
from openr2v.api.openapi import component, errors
from openr2v.domain.task import Status, Task

from .protocol import ErrorBody, EventData
from .translate import format_error, format_task

__all__ = ["router"]

log = logging.getLogger("openr2v.api.events")

router = APIRouter(prefix="/api/v1", route_class=dialect_route(format_error), tags=["openr2v"])

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 10.0
MAX_STREAM_SECONDS = 3600.0
RETRY_MS = 2000

# Open API 3.1 (before itemSchema) has the schema of an event stream describe one event.
EVENT = {"type": "object", "required": ["data"], "properties": {
    "event": {"type": "string", "enum": ["status", "progress"]},
    "id": {"type": "string"},
    "retry": {"type": "integer"},
    "data": {"type": "string", "contentMediaType": "application/json",
             "contentSchema": component(EventData, "DashScope")},
}}


def _body(task: Task, video_url: str | None, request_id: str) -> dict[str, object]:
    body = format_task(task, View(video_url))
    progress = 100 if task.status == Status.SUCCEEDED else task.progress
    body["output"] = {**body["output"], "progress": progress}
    return {"request_id": request_id, **body}


@router.get("/tasks/{task_id}/events", response_class=StreamingResponse, responses={
    200: {"description": "Server-Sent Events: status and progress, each data line a task body.",
          "content": {"text/event-stream": {"schema": EVENT}}},
    **errors(ErrorBody, 401, 404, 500)})
async def task_events(task_id: str, request: Request) -> StreamingResponse:
    who = principal(request)
    rt = runtime(request)
    # Raises NotFound (404) for another key's task before the stream starts, as GET /tasks/{id} does.
    first = await read_task(rt, who, task_id)
    base = public_base(request)
    request_id = request.state.request_id

    async def stream() -> AsyncIterator[str]:
        task = first
        last: tuple[Status, int] | None = None
        n = 0
        started = last_sent = time.monotonic()
        yield f"retry: {RETRY_MS}\n\n"
        try:
            while True:
                state = (task.status, task.progress)
                if state != last:
                    n += 1
                    kind = "status" if last is None or last[0] != task.status else "progress"
                    data = json.dumps(_body(task, rt.service.video_path(task, base), request_id))
                    yield f"id: {n}\nevent: {kind}\ndata: {data}\n\n"
                    last, last_sent = state, time.monotonic()
                if task.status == Status.UNKNOWN or task.terminal:
                    return
                now = time.monotonic()
                if now - started > MAX_STREAM_SECONDS or await request.is_disconnected():
                    return
                if now - last_sent > KEEPALIVE_SECONDS:
                    yield ": keep-alive\n\n"
                    last_sent = now
                await asyncio.sleep(POLL_SECONDS)
                task = await read_task(rt, who, task_id)
        except Exception:  # headers are sent: the only way to report is to end the stream
            log.exception("event stream of task %s failed", task_id)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                      "x-request-id": request_id})
