"""The ASGI app: every dialect's router over one runtime, plus health and signed files."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import unquote

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openr2v import __version__
from openr2v.api import console
from openr2v.api.dialects.aggregator import router as aggregator
from openr2v.api.dialects.dashscope import events as dashscope_events
from openr2v.api.dialects.dashscope import extensions as dashscope_extensions
from openr2v.api.dialects.dashscope import router as dashscope
from openr2v.api.dialects.dashscope import uploads as dashscope_uploads
from openr2v.api.dialects.gateway import router as gateway
from openr2v.api.dialects.openai import router as openai_videos
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
    app.include_router(dashscope_events.router)  # openr2v extension: live progress (SSE)
    app.include_router(dashscope_extensions.router)  # openr2v extensions: models, plan, estimate, webhooks
    app.include_router(console.router)  # the web console at /
    app.include_router(aggregator.router)
    app.include_router(gateway.router)
    app.include_router(openai_videos.router)

    app.add_middleware(RequestIdHeader)

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


class RequestIdHeader:
    """Adds ``x-request-id`` (what a route stored in ``request.state.request_id``) to the response.

    Plain ASGI: Starlette's ``BaseHTTPMiddleware`` costs a task and a stream per request, a
    sizeable share of a task poll."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # the dict behind request.state

        async def send_with_id(message: Message) -> None:
            rid = state.get("request_id") if message["type"] == "http.response.start" else None
            if rid:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", str(rid).encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


def _oss_error(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(body, status_code=status, media_type="application/xml")
