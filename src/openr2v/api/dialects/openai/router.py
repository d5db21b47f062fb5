"""openr2v's OpenAI-style endpoints: ``/v1/videos`` create, list, retrieve, delete, content."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from openr2v.api.common import (
    MAX_BODY_BYTES,
    JSONResponse,
    dialect_route,
    find_task,
    parse_json_object,
    principal,
    read_body,
    runtime,
    submit_task,
)
from openr2v.api.dialects.base import Submission
from openr2v.api.digits import small_int
from openr2v.api.openapi import component, errors, json_body, nullable, optional, query
from openr2v.domain.models import DIALECT_MODELS
from openr2v.domain.task import Status
from openr2v.errors import Canceled, InvalidParameter, NotFound

from .forms import coerce, unflatten
from .protocol import CreateBody, ErrorBody, Parameters, Video, VideoDeleted, VideoList
from .serving import frames_preview, list_tasks, store_upload
from .translate import DIALECT, format_error, format_task, parse_submit, task_error

__all__ = ["router"]

POLL_AFTER_MS = "500"  # the SDK's poll helper waits this long between retrieves (default 1000)
MAX_FILES = 8  # input_reference and up to five reference files, with room for a refusal naming the field
FILE_LISTS = ("references", "references[]")
SYNC_POLL_SECONDS = 0.2
TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELED, Status.UNKNOWN)


router = APIRouter(prefix="/v1", route_class=dialect_route(format_error), tags=["openai"])

# What the openai SDK's videos.create sends: a multipart form (its extra_body flattened with brackets, e.g.
# parameters[seed], references[]); JSON with the same fields is accepted too.
PROMPT = {"type": "string", "pattern": r"\S", "description": "Required, not blank."}
FORM = {"type": "object", "required": ["prompt"], "properties": {
    "prompt": PROMPT, "model": {"type": "string"}, "seconds": {"type": "string"},
    "size": {"type": "string"}, "negative_prompt": {"type": "string"},
    "input_reference": {"type": "string", "format": "binary"},
}, "additionalProperties": {"type": "string"}}
# model: one the dialect offers; absent, null or "" stands for the default (wan2.6-r2v-flash).
MODEL = {"anyOf": [{"type": "string", "enum": [*DIALECT_MODELS[DIALECT], ""]}, {"type": "null"}]}
EXAMPLES: dict[str, dict[str, Any]] = {"references": {
    "model": "wan2.6-r2v-flash", "prompt": "character1 waves at the camera.", "seconds": "5", "size": "1280x720",
    "references": ["https://example.com/char1.jpg"]}}
CREATE_DOC: dict[str, Any] = json_body(CreateBody, "OpenAI", extra_content={"multipart/form-data": {"schema": FORM}},
                                       properties={"model": MODEL, "prompt": PROMPT,
                                                   "parameters": nullable(component(Parameters, "OpenAI"))},
                                       examples=EXAMPLES)
LIST_DOC: dict[str, Any] = {"parameters": [
    query("limit", optional({"type": "integer", "minimum": 1, "maximum": 100, "default": 20})),
    query("order", optional({"type": "string", "enum": ["asc", "desc"], "default": "desc"})),
    query("after", {"type": "string"}, description="The last video id of the page before."),
]}
CONTENT_DOC: dict[str, Any] = {"parameters": [
    query("variant", optional({"type": "string", "enum": ["video", "thumbnail", "spritesheet"], "default": "video"}))]}
POLL_AFTER = {"openai-poll-after-ms": {"description": "How long the SDK's poll helper waits before the next "
                                                      "retrieve.", "required": True, "schema": {"type": "string"}}}


async def _form(headers: Headers, raw: bytes) -> FormData:
    async def stream() -> AsyncGenerator[bytes, None]:
        yield raw
        yield b""

    try:
        # Fields may hold data URLs (vLLM-Omni's image_reference): the body cap bounds them, not 1 MB.
        return await MultiPartParser(headers, stream(), max_files=MAX_FILES, max_fields=200,
                                     max_part_size=MAX_BODY_BYTES).parse()
    except MultiPartException as e:
        raise InvalidParameter(f"The multipart body cannot be read: {e.message}") from None


async def _parse(request: Request) -> Submission:
    """The create body of ``request`` (JSON or multipart) -> the parsed submit (its uploads stored)."""
    who = principal(request)
    rt = runtime(request)
    raw = await read_body(request)
    upload = None
    stored: set[str] = set()
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        form = await _form(request.headers, raw)
        fields: list[tuple[str, Any]] = []
        for key, value in form.multi_items():
            if not isinstance(value, UploadFile):
                fields.append((key, value))
            elif key == "input_reference":
                if upload is not None:
                    raise InvalidParameter("input_reference: only one file may be uploaded as input_reference.",
                                           param="input_reference")
                upload = await asyncio.to_thread(store_upload, rt, who.owner, value)
                stored.add(upload[0])
            elif key in FILE_LISTS:  # openr2v: reference files in a list, in the order they come
                source, kind = await asyncio.to_thread(store_upload, rt, who.owner, value, key.removesuffix("[]"))
                stored.add(source)
                fields.append((key, {"url": source, **({"type": kind} if kind else {})}))
            else:
                raise InvalidParameter(f"{key}: only input_reference and references may be files.", param=key)
        body = coerce(unflatten(fields))
    else:
        body = parse_json_object(raw)
    return await asyncio.to_thread(parse_submit, body, rt.settings.region, upload, frozenset(stored))


@router.post("/videos", response_model=Video, responses=errors(ErrorBody, 400, 401, 403, 429, 500),
             openapi_extra=CREATE_DOC)
async def create(request: Request) -> JSONResponse:
    sub = await _parse(request)
    task = await submit_task(runtime(request), principal(request), DIALECT, sub, request.state.request_id)
    return JSONResponse(format_task(task))


# Not in the OpenAPI document: a fuzzer's valid request would wait for a render (forever on an API-only server).
@router.post("/videos/sync", response_class=Response, include_in_schema=False, responses={
    200: {"description": "The finished MP4.", "content": {"video/mp4": {"schema": {"type": "string",
                                                                                   "format": "binary"}}}},
    **errors(ErrorBody, 400, 401, 403, 429, 500)})
async def create_sync(request: Request) -> Response:
    """vLLM-Omni's synchronous create: the same request, answered with the MP4 once it is rendered.

    The task is an ordinary one (it shows in lists and keeps its video); a client that hangs up
    before the end deletes it (which stops its render)."""
    rt = runtime(request)
    who = principal(request)
    sub = await _parse(request)
    task = await submit_task(rt, who, DIALECT, sub, request.state.request_id)
    while task.status not in TERMINAL:
        if await request.is_disconnected():
            await asyncio.to_thread(rt.service.delete, who.owner, task.id)  # stops a render too
            raise Canceled("The client closed the connection; the video was deleted.")
        await asyncio.sleep(SYNC_POLL_SECONDS)
        task = await asyncio.to_thread(rt.service.get, who.owner, task.id)
    if task.status != Status.SUCCEEDED:
        raise task_error(task)
    path = rt.storage.path(task.output_key) if task.output_key else None
    if path is None:
        raise NotFound(f"The content of video {task.id} is gone.", param="video_id")
    return FileResponse(path, media_type="video/mp4", headers={"x-openr2v-video-id": task.id})


@router.get("/videos", response_model=VideoList, responses=errors(ErrorBody, 400, 401, 500), openapi_extra=LIST_DOC)
async def list_videos(request: Request) -> JSONResponse:
    who = principal(request)
    q = request.query_params
    limit = small_int(q.get("limit") or "20")
    if limit is None or not 1 <= limit <= 100:
        raise InvalidParameter("limit must be an integer from 1 to 100.", param="limit")
    order = q.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidParameter("order must be asc or desc.", param="order")
    tasks, more = await asyncio.to_thread(list_tasks, runtime(request), who.owner, q.get("after") or None,
                                          limit, order)
    data = [format_task(t) for t in tasks]
    return JSONResponse({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                         "last_id": data[-1]["id"] if data else None, "has_more": more})


async def _video(request: Request, video_id: str) -> Any:
    try:
        return await find_task(runtime(request), principal(request), video_id)
    except NotFound:
        raise NotFound(f"Video with id {video_id!r} not found.", param="video_id") from None


@router.get("/videos/{video_id}", response_model=Video, responses={
    200: {"description": "The video.", "headers": POLL_AFTER}, **errors(ErrorBody, 401, 404, 500)})
async def retrieve(video_id: str, request: Request) -> JSONResponse:
    task = await _video(request, video_id)
    return JSONResponse(format_task(task), headers={"openai-poll-after-ms": POLL_AFTER_MS})


@router.delete("/videos/{video_id}", response_model=VideoDeleted, responses=errors(ErrorBody, 401, 404, 500))
async def delete(video_id: str, request: Request) -> JSONResponse:
    task = await _video(request, video_id)
    await asyncio.to_thread(runtime(request).service.delete, task.owner, task.id)
    return JSONResponse({"id": task.id, "object": "video.deleted", "deleted": True})


@router.get("/videos/{video_id}/content", response_class=Response, openapi_extra=CONTENT_DOC, responses={
    200: {"description": "The MP4, or a WEBP thumbnail, or a JPEG spritesheet.", "content": {
        "video/mp4": {"schema": {"type": "string", "format": "binary"}},
        "image/webp": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
    **errors(ErrorBody, 400, 401, 404, 500)})
async def content(video_id: str, request: Request) -> Response:
    task = await _video(request, video_id)
    variant = request.query_params.get("variant") or "video"
    if variant not in ("video", "thumbnail", "spritesheet"):
        raise InvalidParameter(f"variant {variant!r} is not one of video, thumbnail, spritesheet.", param="variant")
    if task.status != Status.SUCCEEDED:
        raise InvalidParameter(f"Video {video_id} has no content: its status is "
                               f"{format_task(task)['status']}.", param="video_id", code="video_not_ready")
    path = runtime(request).storage.path(task.output_key) if task.output_key else None
    if path is None:
        raise NotFound(f"The content of video {video_id} is gone.", param="video_id")
    if variant == "video":
        return FileResponse(path, media_type="video/mp4")
    data, media_type = await asyncio.to_thread(frames_preview, path, variant)
    return Response(data, media_type=media_type)
