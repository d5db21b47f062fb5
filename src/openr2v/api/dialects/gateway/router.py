"""Gateway endpoints (the gateway's docs): ``POST /v1/video/generations``, ``GET /v1/video/generations/{task_id}``."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from openr2v.api.common import (
    JSONResponse,
    dialect_route,
    find_task,
    parse_json_object,
    principal,
    public_base,
    read_body,
    runtime,
    submit_task,
)
from openr2v.api.dialects.base import View
from openr2v.api.openapi import errors, json_body
from openr2v.domain.models import DIALECT_MODELS
from openr2v.errors import InvalidParameter, NotFound

from .protocol import ErrorBody, SubmitBody, SubmitResponse, TaskEnvelope
from .translate import DIALECT, TASK_NOT_EXIST, format_error, format_submit, format_task, parse_submit

__all__ = ["router"]


router = APIRouter(prefix="/v1/video", route_class=dialect_route(format_error), tags=["gateway"])
EXAMPLES: dict[str, dict[str, Any]] = {"the gateway's docs": {  # the document's own request
    "prompt": "character1 drinks bubble tea while dancing spontaneously to the music.", "model": "wan2.6-r2v",
    "metadata": {"input": {"reference_video_urls": ["https://example.com/reference-video.mp4"]},
                 "parameters": {"size": "1280*720", "duration": 5, "shot_type": "multi"}}}}
SUBMIT_DOC: dict[str, Any] = json_body(SubmitBody, "Gateway", description="model wan2.6-r2v (the gateway's docs).",
                                       properties={"model": {"type": "string", "enum": list(DIALECT_MODELS[DIALECT])}},
                                       examples=EXAMPLES)


@router.post("/generations", response_model=SubmitResponse, responses=errors(ErrorBody, 400, 401, 403, 429, 500),
             openapi_extra=SUBMIT_DOC)
async def create(request: Request) -> JSONResponse:
    who = principal(request)
    rt = runtime(request)
    body = parse_json_object(await read_body(request))
    sub = await asyncio.to_thread(parse_submit, body, rt.settings.region)
    task = await submit_task(rt, who, DIALECT, sub, request.state.request_id)
    return JSONResponse(format_submit(task))


@router.get("/generations/{task_id}", response_model=TaskEnvelope, responses={
    **errors(ErrorBody, 400, 401, 500), 400: {"model": ErrorBody, "description": "Bad Request, or task_not_exist: an "
                                              "unknown task (or another key's), as the gateway answers it."}})
async def get(task_id: str, request: Request) -> JSONResponse:
    who = principal(request)
    rt = runtime(request)
    try:
        task = await find_task(rt, who, task_id)
    except NotFound as e:
        # The gateway answers an unknown (or another key's) task with 400 task_not_exist.
        raise InvalidParameter(e.message, code=TASK_NOT_EXIST) from None
    return JSONResponse(format_task(task, View(rt.service.video_path(task, public_base(request)))))
