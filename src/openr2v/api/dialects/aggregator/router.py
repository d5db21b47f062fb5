"""Aggregator endpoints (the aggregator's docs): ``POST /model/v1/generation``, ``GET /model/v1/generation/{id}``."""

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
from openr2v.api.openapi import component, errors, json_body, nullable
from openr2v.domain.models import DIALECT_MODELS
from openr2v.domain.task import Status, Task
from openr2v.errors import NotFound

from .pricing import quote
from .protocol import ErrorBody, SubmitBody, SubmitParameters, TaskBody
from .translate import DIALECT, STATUS_CHECK, format_error, format_task, parse_submit

__all__ = ["router"]


router = APIRouter(prefix="/model/v1", route_class=dialect_route(format_error), tags=["aggregator"])
EXAMPLES: dict[str, dict[str, Any]] = {"the aggregator's docs": {  # the document's own request
    "model": "wan26_r2v", "input": {"prompt": "character1 walking in the park with a happy expression",
                                     "reference_urls": ["https://example.com/char1.jpg"]},
    "parameters": {"size": "1280*720", "duration": 5}}}
SUBMIT_DOC: dict[str, Any] = json_body(SubmitBody, "Aggregator", description="model wan26_r2v (the aggregator's docs).",
                                       properties={"model": {"type": "string", "enum": list(DIALECT_MODELS[DIALECT])},
                                                   # null parameters are taken as absent
                                                   "parameters": nullable(component(SubmitParameters, "Aggregator"))},
                                       examples=EXAMPLES)


def _body(request: Request, task: Task) -> JSONResponse:
    rt = runtime(request)
    url = rt.service.video_path(task, public_base(request))
    cost = (quote(task.model, task.usage or {}, rt.settings.prices_file)
            if task.status == Status.SUCCEEDED else None)
    return JSONResponse(format_task(task, View(url, request.state.request_id, cost)))


@router.post("/generation", response_model=TaskBody, responses=errors(ErrorBody, 400, 401, 403, 429, 500),
             openapi_extra=SUBMIT_DOC)
async def create(request: Request) -> JSONResponse:
    who = principal(request)
    rt = runtime(request)
    body = parse_json_object(await read_body(request))
    sub = await asyncio.to_thread(parse_submit, body, rt.settings.region)
    task = await submit_task(rt, who, DIALECT, sub, request.state.request_id)
    return _body(request, task)


@router.get("/generation/{task_id}", response_model=TaskBody, responses=errors(ErrorBody, 401, 404, 500))
async def get(task_id: str, request: Request) -> JSONResponse:
    who = principal(request)
    try:
        task = await find_task(runtime(request), who, task_id)
    except NotFound as e:
        raise NotFound(e.message, code=STATUS_CHECK) from None
    return _body(request, task)
