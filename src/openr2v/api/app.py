"""The ASGI app: every dialect's router over one runtime, plus health and signed files."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openr2v import __version__, metrics
from openr2v.api import console
from openr2v.api.dialects.aggregator import router as aggregator
from openr2v.api.dialects.dashscope import events as dashscope_events
from openr2v.api.dialects.dashscope import extensions as dashscope_extensions
from openr2v.api.dialects.dashscope import quota as dashscope_quota
from openr2v.api.dialects.dashscope import router as dashscope
from openr2v.api.dialects.dashscope import uploads as dashscope_uploads
from openr2v.api.dialects.dashscope.translate import webhook_body
from openr2v.api.dialects.gateway import router as gateway
from openr2v.api.dialects.openai import router as openai_videos
from openr2v.api.digits import small_int
from openr2v.api.openapi import NO_AUTH, build_document, query
from openr2v.config import Settings
from openr2v.runtime import Runtime, build_runtime

__all__ = ["DIALECT_ROUTERS", "create_app"]

# Each dialect's routers: what the app serves, and what GET /openapi/{dialect}.json describes.
DIALECT_ROUTERS: dict[str, list[APIRouter]] = {
    "dashscope": [dashscope.router, dashscope_uploads.router, dashscope_uploads.oss_router,
                  dashscope_events.router,  # openr2v extension: live progress (SSE)
                  dashscope_extensions.router,  # openr2v extensions: models, plan, estimate, webhooks
                  dashscope_quota.router],  # openr2v extensions: a key's quota, the admin's quota endpoints
    "aggregator": [aggregator.router],
    "gateway": [gateway.router],
    "openai": [openai_videos.router],
}
DESCRIPTION = "Open reference-to-video service speaking the Wan R2V API."


def create_app(settings: Settings | None = None, runtime: Runtime | None = None, *,
               start_workers: bool = True) -> FastAPI:
    rt = runtime or build_runtime(settings or Settings(), webhook_body=webhook_body)

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

    app = FastAPI(title="openr2v", version=__version__, lifespan=lifespan, description=DESCRIPTION)
    app.state.runtime = rt
    app.state.ready = False
    for router in DIALECT_ROUTERS["dashscope"]:
        app.include_router(router)
    app.include_router(console.router)  # the web console at /
    for dialect in ("aggregator", "gateway", "openai"):
        for router in DIALECT_ROUTERS[dialect]:
            app.include_router(router)
    _add_openapi(app)

    app.add_middleware(RequestIdHeader)
    app.add_middleware(RequestMetrics, dialects={route.path: dialect for dialect, routers in DIALECT_ROUTERS.items()
                                                 for router in routers for route in router.routes
                                                 if isinstance(route, APIRoute)})
    _add_ops_routes(app, rt)
    _add_http_errors(app)
    return app


def _add_ops_routes(app: FastAPI, rt: Runtime) -> None:
    """/metrics, /healthz and the signed /files/ URLs."""
    registry = metrics.registry(rt.store)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        """Prometheus text format (docs/operations/metrics.md); store figures are read now."""
        body = await asyncio.to_thread(metrics.exposition, registry)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/healthz", tags=["ops"], openapi_extra=NO_AUTH, responses={
        200: {"description": "Ready."}, 503: {"description": "Starting or stopping."}})
    async def healthz() -> JSONResponse:
        ok = bool(app.state.ready)
        return JSONResponse({"status": "ok" if ok else "starting", "region": rt.settings.region},
                            status_code=200 if ok else 503)

    @app.get("/files/{key:path}", tags=["ops"], openapi_extra=FILES_DOC, responses=FILES_RESPONSES)
    async def files(key: str, request: Request) -> Response:
        q = request.query_params
        key = unquote(key)
        expires = small_int(q.get("Expires", ""), digits=12)
        if expires is None:
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        verdict = rt.storage.verify(key, expires, q.get("Signature", ""), time.time())
        if verdict == "forged":
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        if verdict == "expired":
            return _oss_error(403, "AccessDenied", "Request has expired.")
        path = rt.storage.path(key)
        if path is None:
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        return FileResponse(path, media_type="video/mp4")


def _add_http_errors(app: FastAPI) -> None:
    """Starlette's own 404 and 405 answers, where the contract words them otherwise."""

    @app.exception_handler(StarletteHTTPException)
    async def not_routed(request: Request, exc: StarletteHTTPException) -> Response:
        # A /files/ path the route's pattern cannot take (a newline in the key) is still "no such key" in
        # OSS's words; everything else keeps FastAPI's answer.
        if exc.status_code == 404 and request.url.path.startswith("/files/"):
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        if exc.status_code == 405:
            # Starlette names only the methods of the first route matching the path; a path served by
            # several routes (GET and POST /v1/videos) must list them all in Allow.
            routers = [router for group in DIALECT_ROUTERS.values() for router in group]
            routes = [*app.router.routes, *(route for router in routers for route in router.routes)]
            allowed = sorted({m for r in routes if isinstance(r, APIRoute)
                              and r.matches(request.scope)[0] != Match.NONE for m in (r.methods or ())})
            exc = StarletteHTTPException(405, exc.detail, headers={"Allow": ", ".join(allowed)})
        return await http_exception_handler(request, exc)


# Signed URLs, no key; errors as OSS writes them (XML).
FILES_DOC: dict[str, Any] = {**NO_AUTH, "parameters": [
    query("Expires", {"type": "string"}, description="Unix time the signature ends (403 after it)."),
    query("Signature", {"type": "string"}, description="The server's signature of the key and Expires.")]}
_OSS_ERROR = {"application/xml": {"schema": {"type": "string"}}}
FILES_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The MP4.", "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}},
    403: {"description": "AccessDenied: the signature has expired.", "content": _OSS_ERROR},
    404: {"description": "NoSuchKey: no such object, or a forged or altered signature.", "content": _OSS_ERROR}}


def _add_openapi(app: FastAPI) -> None:
    """/openapi.json for the whole app, and /openapi/{dialect}.json for each dialect's routes alone."""
    documents: dict[str, dict[str, Any]] = {}

    def whole() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app.routes, title="openr2v", version=__version__,
                                                description=DESCRIPTION)
        return app.openapi_schema

    app.openapi = whole  # type: ignore[method-assign]

    @app.get("/openapi/{dialect}.json", include_in_schema=False)
    async def dialect_document(dialect: str) -> JSONResponse:
        if dialect not in DIALECT_ROUTERS:
            return JSONResponse({"detail": f"No dialect {dialect!r}; one of {', '.join(DIALECT_ROUTERS)}."},
                                status_code=404)
        if dialect not in documents:
            routes = [route for router in DIALECT_ROUTERS[dialect] for route in router.routes]
            documents[dialect] = build_document(routes, title=f"openr2v: the {dialect} dialect", version=__version__,
                                                description=DESCRIPTION)
        return JSONResponse(documents[dialect])


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


class RequestMetrics:
    """Counts requests and times them by dialect, route template (never the raw path, which would make
    a series per task id) and status. Plain ASGI, and each label set's children are kept, so a
    request costs a dict lookup, a counter increment and a histogram observation."""

    def __init__(self, app: ASGIApp, dialects: dict[str, str]) -> None:
        self.app = app
        self.dialects = dialects
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        elapsed = 0.0

        async def timed_send(message: Message) -> None:
            nonlocal status, elapsed
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed = time.perf_counter() - started
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self._observe(scope, status, elapsed or time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "<unmatched>"
        key = (route, scope["method"], str(status))
        children = self._children.get(key)
        if children is None:
            dialect = self.dialects.get(route, "ops" if route != "<unmatched>" else "none")
            children = (metrics.HTTP_REQUESTS.labels(dialect, route, scope["method"], str(status)),
                        metrics.HTTP_LATENCY.labels(dialect, route, scope["method"]))
            if len(self._children) < 10000:  # methods are client-chosen: a bound on what is kept
                self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)


def _oss_error(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(body, status_code=status, media_type="application/xml")
