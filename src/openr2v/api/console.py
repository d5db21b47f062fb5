"""The web console at ``/``: static HTML, JS and CSS shipped in the package (no build step).

Everything the page does goes through the public API (DashScope endpoints plus the openr2v
extensions), with the API key the user typed, kept in the browser's localStorage.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

__all__ = ["router"]

WEB = Path(__file__).parent / "web"
ASSETS = {"app.js": "text/javascript", "style.css": "text/css", "favicon.svg": "image/svg+xml"}
# The page loads only its own files; videos and uploads may live on another origin (PUBLIC_URL, S3).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "media-src 'self' blob: http: https:; connect-src 'self' http: https:; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> Response:
    return FileResponse(WEB / "index.html", media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/console/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:  # a fixed list: no path from a request names a file
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(WEB / name, media_type=ASSETS[name], headers=HEADERS)
