"""What every dialect router shares: the per-dialect error route, auth, bodies, base URLs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from openr2v.api.auth import Principal
from openr2v.api.digits import small_int
from openr2v.errors import InternalError, InvalidParameter, OpenR2VError
from openr2v.runtime import Runtime

__all__ = ["ErrorFormatter", "dialect_route", "new_request_id", "principal", "public_base", "read_body",
           "runtime"]

log = logging.getLogger("openr2v.api")

# Five 10 MB images as base64 data URIs, plus the rest of the body.
MAX_BODY_BYTES = 72 * 1024 * 1024

ErrorFormatter = Callable[[OpenR2VError, str], Response]


def new_request_id() -> str:
    return str(uuid.uuid4())


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


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
