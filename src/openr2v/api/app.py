"""The ASGI app: every dialect's router over one runtime, plus health and signed files."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import unquote

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from openr2v import __version__
from openr2v.api.dialects.dashscope import router as dashscope
from openr2v.api.dialects.dashscope import uploads as dashscope_uploads
from openr2v.config import Settings
from openr2v.runtime import Runtime, build_runtime

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, runtime: Runtime | None = None, *,
               start_workers: bool = True) -> FastAPI:
    rt = runtime or build_runtime(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start_workers:
            rt.start()
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            rt.stop()

    app = FastAPI(title="openr2v", version=__version__, lifespan=lifespan,
                  description="Open reference-to-video service speaking the Wan R2V API.")
    app.state.runtime = rt
    app.state.ready = False
    app.include_router(dashscope.router)
    app.include_router(dashscope_uploads.router)
    app.include_router(dashscope_uploads.oss_router)

    @app.middleware("http")
    async def request_id_header(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        rid = getattr(request.state, "request_id", None)
        if rid:
            response.headers["x-request-id"] = rid
        return response

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> JSONResponse:
        ok = bool(app.state.ready)
        return JSONResponse({"status": "ok" if ok else "starting", "region": rt.settings.region},
                            status_code=200 if ok else 503)

    @app.get("/files/{key:path}", tags=["ops"])
    async def files(key: str, request: Request) -> Response:
        q = request.query_params
        key = unquote(key)
        expires = q.get("Expires", "")
        if not expires.isdigit():
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        verdict = rt.storage.verify(key, int(expires), q.get("Signature", ""), time.time())
        if verdict == "forged":
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        if verdict == "expired":
            return _oss_error(403, "AccessDenied", "Request has expired.")
        path = rt.storage.path(key)
        if path is None:
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        return FileResponse(path, media_type="video/mp4")

    return app


def _oss_error(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(body, status_code=status, media_type="application/xml")
