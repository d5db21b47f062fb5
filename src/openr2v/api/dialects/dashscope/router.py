"""DashScope native endpoints under /api/v1 (the Model Studio guides (wan2.6-r2v, wan2.7-r2v))."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from openr2v.api.common import (
    JSONResponse,
    dialect_route,
    parse_json_object,
    principal,
    public_base,
    read_body,
    read_task,
    runtime,
    submit_task,
)
from openr2v.api.dialects.base import View
from openr2v.api.digits import small_int
from openr2v.api.openapi import errors, header, json_body, optional, query
from openr2v.domain.models import DIALECT_MODELS
from openr2v.domain.task import Status
from openr2v.errors import AccessDenied, InvalidParameter, InvalidURL
from openr2v.runtime import Runtime

from .protocol import (
    CancelResponse,
    ErrorBody,
    LedgerResponse,
    PlanResponse,
    SubmitBody,
    SubmitResponse,
    TaskList,
    TaskResponse,
)
from .translate import DIALECT, format_error, format_task, parse_submit

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", route_class=dialect_route(format_error), tags=["dashscope"])

EXAMPLES: dict[str, dict[str, Any]] = {  # the wan2.6-r2v guide's and the wan2.7-r2v guide's own requests
    "wan2.6-r2v-flash": {"model": "wan2.6-r2v-flash", "input": {
        "prompt": "character1 gives an enthusiastic product introduction to camera, smiling and gesturing naturally.",
        "reference_urls": ["https://example.com/presenter.mp4"]}, "parameters": {"size": "1280*720", "duration": 5}},
    "wan2.7-r2v": {"model": "wan2.7-r2v", "input": {
        "prompt": "Image 1 and Image 2 chat in a cafe.",
        "media": [{"type": "reference_image", "url": "https://example.com/a.png"},
                  {"type": "reference_image", "url": "https://example.com/b.png"}]},
        "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 5}},
}
SUBMIT_DOC: dict[str, Any] = {
    **json_body(SubmitBody, "DashScope", description="wan2.6 models take input.reference_urls and parameters.size, "
                "wan2.7 input.media with resolution and ratio (the Model Studio guides).",
                properties={"model": {"type": "string", "enum": list(DIALECT_MODELS[DIALECT])}}, examples=EXAMPLES),
    "parameters": [
        header("X-DashScope-Async", {"type": "string", "pattern": "^[Ee][Nn][Aa][Bb][Ll][Ee]$"}, required=True,
               description="Must be enable: only asynchronous calls are supported (403 AccessDenied otherwise)."),
        header("X-DashScope-OssResourceResolve", {"type": "string"},
               description="enable lets the references name this key's temporary uploads (oss://...)."),
    ],
}
TIME = {"type": "string", "description": "YYYYMMDDhhmmss (also YYYY-MM-DD hh:mm:ss), UTC."}
LIST_DOC: dict[str, Any] = {"parameters": [
    query("status", {"type": "string"}, description="PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED or UNKNOWN "
          "(any case)."),
    query("model_name", {"type": "string"}),
    query("start_time", TIME),
    query("end_time", TIME),
    query("page_no", optional({"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1})),
    query("page_size", optional({"type": "integer", "minimum": 1, "maximum": 100, "default": 10})),
]}


def _ok(request: Request, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"request_id": request.state.request_id, **body})


@router.post("/services/aigc/video-generation/video-synthesis", response_model=SubmitResponse,
             responses=errors(ErrorBody, 400, 401, 403, 429, 500), openapi_extra=SUBMIT_DOC)
async def submit(request: Request) -> JSONResponse:
    who = principal(request)
    if request.headers.get("x-dashscope-async", "").strip().lower() != "enable":
        raise AccessDenied("current user api does not support synchronous calls")
    rt = runtime(request)
    body = parse_json_object(await read_body(request), "model, input and parameters")
    sub = await asyncio.to_thread(parse_submit, body, rt.settings.region)
    if sub.request.extensions.get("callback_url"):
        # openr2v extension: the webhook payload carries the video URL, so remember the base URL this
        # client reaches us at.
        sub.request.extensions["public_base_url"] = public_base(request)
    resolve = request.headers.get("x-dashscope-ossresourceresolve", "").strip().lower() == "enable"

    def oss(field: str, source: str) -> None:
        _check_upload(rt, who.owner, field, source, resolve)

    task = await submit_task(rt, who, DIALECT, sub, request.state.request_id, oss=oss)
    return _ok(request, {"output": {"task_id": task.id, "task_status": task.status.value}})


def _check_upload(rt: Runtime, owner: str, field: str, source: str, resolve: bool) -> None:
    """An oss:// source names a temporary upload of this key, and only under the resolve header."""
    if not resolve:
        raise InvalidURL(f"{field}: oss:// URLs need the header X-DashScope-OssResourceResolve: enable.",
                         param=field)
    row = rt.store.get_upload(source.removeprefix("oss://"))
    if row is None or row.owner != owner:
        raise InvalidURL(f"{field}: {source[:200]} does not name an upload of this API key.", param=field)


@router.get("/tasks/{task_id}", response_model=TaskResponse, responses=errors(ErrorBody, 401, 404, 500))
@router.get("/tasks/{task_id}/", include_in_schema=False)
async def get_task(task_id: str, request: Request) -> JSONResponse:
    who = principal(request)
    rt = runtime(request)
    task = await read_task(rt, who, task_id)
    return _ok(request, format_task(task, View(rt.service.video_path(task, public_base(request)))))


@router.get("/tasks/{task_id}/plan", tags=["openr2v"], response_model=PlanResponse,
            responses=errors(ErrorBody, 401, 404, 500))
async def get_plan(task_id: str, request: Request) -> JSONResponse:
    """openr2v extension: the shot plan the engine follows (shots, framing, who is on screen, dialogue),
    and once rendered, what the engine did (``render``: casting, shots, sizes)."""
    who = principal(request)
    task = await read_task(runtime(request), who, task_id)
    return _ok(request, {"output": {"task_id": task.id, "task_status": task.status.value,
                                    "actual_prompt": task.actual_prompt, "plan": task.plan,
                                    "render": task.extra.get("render")}})


@router.post("/tasks/{task_id}/cancel", response_model=CancelResponse, responses=errors(ErrorBody, 400, 401, 404, 500))
@router.post("/tasks/{task_id}/cancel/", include_in_schema=False)
async def cancel_task(task_id: str, request: Request) -> JSONResponse:
    who = principal(request)
    rt = runtime(request)
    await asyncio.to_thread(rt.service.cancel, who.owner, task_id)
    return _ok(request, {})


def _parse_list_time(value: str | None, name: str) -> float | None:
    if not value:
        return None
    for fmt in ("%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise InvalidParameter(f"{name} {value!r} must be formatted YYYYMMDDhhmmss.", param=name)


def _int_param(value: str | None, name: str, default: int, lo: int, hi: int) -> int:
    if not value:
        return default
    number = small_int(value)
    if number is None or not lo <= number <= hi:
        raise InvalidParameter(f"{name} must be an integer from {lo} to {hi}.", param=name)
    return number


@router.get("/tasks", response_model=TaskList, responses=errors(ErrorBody, 400, 401, 500), openapi_extra=LIST_DOC)
@router.get("/tasks/", include_in_schema=False)
async def list_tasks(request: Request) -> JSONResponse:
    who = principal(request)
    rt = runtime(request)
    q = request.query_params
    status = q.get("status") or None
    if status is not None and status.upper() not in Status.__members__:
        raise InvalidParameter(f"status {status!r} is not one of {', '.join(Status.__members__)}.",
                               param="status")
    page_no = _int_param(q.get("page_no"), "page_no", 1, 1, 1_000_000)
    page_size = _int_param(q.get("page_size"), "page_size", 10, 1, 100)
    tasks, total = await asyncio.to_thread(
        rt.service.list, who.owner, start=_parse_list_time(q.get("start_time"), "start_time"),
        end=_parse_list_time(q.get("end_time"), "end_time"), model=q.get("model_name") or None,
        status=status.upper() if status else None, page_no=page_no, page_size=page_size)
    base = public_base(request)
    data, jobs = [], []
    for t in tasks:
        item = {
            "task_id": t.id,
            "request_id": t.request_id,
            "model_name": t.model,
            "status": t.status.value,
            "region": t.region,
            "gmt_create": int(t.submit_time * 1000),
            "start_time": int(t.scheduled_time * 1000) if t.scheduled_time else None,
            "end_time": int(t.end_time * 1000) if t.end_time else None,
        }
        output = format_task(t, View(rt.service.video_path(t, base)))["output"]
        data.append(item)
        # The 2.x SDK reads ``tasks`` with string timestamps; 1.x and the real API use ``data``.
        jobs.append(output)
    pages = (total + page_size - 1) // page_size
    return _ok(request, {"data": data, "tasks": jobs, "total": total, "total_page": pages, "page_no": page_no,
                         "page_size": page_size})


@router.get("/openr2v/ledger", tags=["openr2v"], response_model=LedgerResponse, responses=errors(ErrorBody, 401, 500))
async def ledger(request: Request) -> JSONResponse:
    """openr2v extension: this key's billed totals (succeeded tasks only)."""
    who = principal(request)
    totals = await asyncio.to_thread(runtime(request).store.ledger_total, who.owner)
    return _ok(request, {"output": totals})
