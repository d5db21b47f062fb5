"""What every dialect shares at the edge: the per-dialect error route, auth, bodies, base URLs, JSON
objects, the submit-time check of every source a request names, submitting a parsed Submission
(recording the untruncated prompt when a dialect truncates), and epoch timestamps.

Nothing here knows a wire shape."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse as _StarletteJSON
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from openr2v.api.digits import small_int
from openr2v.domain.request import GenerationRequest, source_scheme
from openr2v.domain.task import Status, Task
from openr2v.errors import InternalError, InvalidParameter, InvalidURL, NotFound, OpenR2VError
from openr2v.keys import Principal
from openr2v.logs import REQUEST_ID
from openr2v.runtime import Runtime

if TYPE_CHECKING:
    from openr2v.api.dialects.base import Submission

__all__ = ["ErrorFormatter", "JSONResponse", "OssCheck", "check_sources", "dialect_route", "epoch", "find_task",
           "first_error", "format_time", "new_request_id", "parse_json_object", "principal", "public_base", "read_body",
           "read_task", "runtime", "sources", "submit_task"]



class JSONResponse(_StarletteJSON):
    """A JSON answer encoded by orjson: the same compact UTF-8 JSON as Starlette's, in a fraction of the
    time (every poll is one; bench/load.py)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


log = logging.getLogger("openr2v.api")

# Five 10 MB images as base64 data URIs, plus the rest of the body.
MAX_BODY_BYTES = 72 * 1024 * 1024

ErrorFormatter = Callable[[OpenR2VError, str], Response]


def new_request_id() -> str:
    return str(uuid.uuid4())


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def principal(request: Request) -> Principal:
    return runtime(request).keys.authenticate(request.headers.get("authorization"))


def public_base(request: Request) -> str:
    configured = runtime(request).settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


async def read_body(request: Request) -> bytes:
    declared = small_int(request.headers.get("content-length") or "", digits=18)  # longer: the stream cap acts
    if declared is not None and declared > MAX_BODY_BYTES:
        raise InvalidParameter(f"The request body is {declared} bytes; the limit is {MAX_BODY_BYTES}.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidParameter(f"The request body exceeds {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def dialect_route(format_error: ErrorFormatter) -> type[APIRoute]:
    """An APIRoute class whose errors, of any kind, come out in the dialect's own envelope."""

    class DialectRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                request_id = new_request_id()
                request.state.request_id = request_id
                REQUEST_ID.set(request_id)  # for log lines (OPENR2V_LOG_FORMAT=json)
                try:
                    return await handler(request)
                except OpenR2VError as e:
                    return format_error(e, request_id)
                except HTTPException as e:
                    if e.status_code >= 500:
                        return internal(e, request_id)
                    # Starlette's own refusals from inside a handler, e.g. request.form() on a broken
                    # multipart body: the client's fault, said in the dialect's envelope, not a 500.
                    return format_error(InvalidParameter(f"The request cannot be read: {e.detail}"), request_id)
                except RequestValidationError as e:
                    err = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
                    field = ".".join(str(p) for p in err["loc"][1:]) or "request"
                    return format_error(InvalidParameter(f"{field}: {err['msg']}.", param=field), request_id)
                except Exception as e:
                    return internal(e, request_id)

            def internal(e: Exception, request_id: str) -> Response:
                log.error("internal error (request %s)", request_id, exc_info=e)
                return format_error(InternalError("An internal error has occurred, please try again later "
                                                  "or contact service support."), request_id)

            return guarded

    return DialectRoute


def parse_json_object(raw: bytes, shape: str = "") -> dict[str, Any]:
    """Body bytes -> a JSON object, or InvalidParameter (``shape`` says what the object holds)."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as e:  # bad UTF-8 or JSON, ints over 4300 digits, deep nesting
        raise InvalidParameter(f"The request body is not valid JSON: {e}.") from None
    if not isinstance(body, dict):
        raise InvalidParameter(f"The request body must be a JSON object{' with ' + shape if shape else ''}.")
    return body


def first_error(e: ValidationError, prefix: str = "") -> tuple[str, str]:
    """(dotted field path, message) of a pydantic error, e.g. ``metadata.input.reference_video_urls[1]``."""
    err = e.errors()[0]
    out = prefix
    for part in err["loc"]:
        if isinstance(part, str) and (part in ("str", "int", "bool", "float") or part[:1].isupper()):
            continue  # the member a union tried (field names are lower case), not a field
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body", err["msg"]


def sources(req: GenerationRequest, names: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """(wire field, source) of every URL a request names: references, voices, first frame, soundtrack, webhook."""
    for ref in req.references:
        yield ref.field, ref.source
        if ref.voice:
            yield ref.voice_field, ref.voice
    if req.first_frame:
        yield names.get("first_frame", "first_frame"), req.first_frame
    if req.audio_url:
        yield names.get("audio_url", "audio_url"), req.audio_url
    if callback := req.extensions.get("callback_url"):
        yield names.get("callback_url", "callback_url"), callback


# (wire field, oss:// source): raise when the dialect does not let this request name it.
OssCheck = Callable[[str, str], None]


def check_sources(rt: Runtime, sub: Submission, oss: OssCheck | None = None) -> None:
    """Refuse oss:// sources the dialect does not accept (by default: all but the request's own uploads)
    and URLs that name non-public hosts."""
    for field, src in sources(sub.request, sub.names):
        scheme = source_scheme(src)
        if scheme == "oss" and src not in sub.internal:
            if oss is None:
                raise InvalidURL(f"{field}: oss:// URLs are not accepted here; use an HTTP or HTTPS URL.",
                                 param=field)
            oss(field, src)
        elif scheme in ("http", "https"):
            rt.check_url(src, field)


async def submit_task(rt: Runtime, who: Principal, dialect: str, sub: Submission, request_id: str, *,
                 oss: OssCheck | None = None) -> Task:
    """Check the request's sources, create the task, and record an untruncated prompt as orig_prompt."""
    check_sources(rt, sub, oss)
    req = sub.request
    task = await asyncio.to_thread(rt.service.submit, who.owner, who.region, dialect, req, request_id)
    if sub.orig_prompt is not None and sub.orig_prompt != req.prompt:
        await asyncio.to_thread(rt.store.update_fields, task.id, orig_prompt=sub.orig_prompt)
        task.orig_prompt = sub.orig_prompt
    return task


async def read_task(rt: Runtime, who: Principal, task_id: str) -> Task:
    """This key's task as ``TaskService.get`` answers it; on the event loop when the store reads inline."""
    if rt.store.reads_inline:
        return rt.service.get(who.owner, task_id)
    return await asyncio.to_thread(rt.service.get, who.owner, task_id)


async def find_task(rt: Runtime, who: Principal, task_id: str) -> Task:
    """This key's live task, or NotFound (never UNKNOWN: these dialects have no such status)."""
    task = await read_task(rt, who, task_id)
    if task.status == Status.UNKNOWN:
        raise NotFound(f"Task {task_id} not found (it never existed, belongs to another key, or expired).")
    return task


def epoch(ts: float | None) -> int | None:
    return None if ts is None else int(ts)


def format_time(ts: float | None) -> str | None:
    """DashScope's timestamp text (UTC, milliseconds), which the gateway shows too."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
