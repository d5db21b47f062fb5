"""A stand-in for a GPU video server (vLLM-Omni, SGLang diffusion, FastVideo), which cannot run here: it speaks
their ``/v1/videos`` over a socket (create, retrieve, content, delete), records every create as received, and
renders what a Wan pipeline gives back: ``num_frames`` rounded to 4k+1 at ``fps`` (16 by default), ``width`` x
``height`` (832x480 by default): not openr2v's contract, so the ``videos`` engine has to conform it. A prompt
holding FAIL makes a video that fails."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse

from openr2v.embedded import serve_in_thread
from tests import mediagen


@dataclass
class FakeVideos:
    url: str
    creates: list[dict[str, Any]] = field(default_factory=list)  # fields (JSON-decoded extra_body merged), files
    deleted: list[str] = field(default_factory=list)


def _app(state: FakeVideos, folder: Path) -> FastAPI:
    app = FastAPI()
    videos: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    @app.post("/v1/videos")
    async def create(request: Request) -> JSONResponse:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            fields: dict[str, Any] = {}
            files: dict[str, tuple[str, str, int]] = {}
            for key, value in form.multi_items():
                if hasattr(value, "read"):
                    data = await value.read()
                    files[key] = (value.filename or "", value.content_type or "", len(data))
                else:
                    fields[key] = value
            if "extra_body" in fields:  # SGLang's multipart carries the rest as JSON
                fields.update(json.loads(fields.pop("extra_body")))
        else:
            fields, files = await request.json(), {}
        if not str(fields.get("prompt") or "").strip():
            return JSONResponse({"detail": "prompt is required"}, status_code=400)
        fps = int(fields.get("fps") or 16)
        frames = int(fields.get("num_frames") or 81) // 4 * 4 + 1  # Wan's 4k+1 frames
        width, height = int(fields.get("width") or 832), int(fields.get("height") or 480)
        video_id = f"video-{uuid.uuid4().hex[:12]}"
        path = mediagen.make_video(folder / f"{video_id}.mp4", width, height, frames / fps, fps=fps,
                                   audio=str(fields.get("generate_sound")).lower() == "true", seed=len(state.creates))
        with lock:
            state.creates.append({"id": video_id, "fields": fields, "files": files})
            videos[video_id] = {"id": video_id, "object": "video", "status": "completed", "progress": 100,
                                "path": str(path)}
            if "FAIL" in str(fields["prompt"]):  # a render that fails, as a pipeline error reads
                videos[video_id].update(status="failed", error={"code": "engine_error", "message": "CUDA OOM"})
        return JSONResponse({"id": video_id, "object": "video", "status": "queued", "progress": 0})

    @app.get("/v1/videos/{video_id}")
    async def retrieve(video_id: str) -> JSONResponse:
        if video_id not in videos:
            return JSONResponse({"detail": "Video not found"}, status_code=404)
        return JSONResponse({k: v for k, v in videos[video_id].items() if k != "path"})

    @app.get("/v1/videos/{video_id}/content")
    async def content(video_id: str) -> Any:
        if video_id not in videos:
            return JSONResponse({"detail": "Video not found"}, status_code=404)
        return FileResponse(videos[video_id]["path"], media_type="video/mp4")

    @app.delete("/v1/videos/{video_id}")
    async def delete(video_id: str) -> JSONResponse:
        state.deleted.append(video_id)
        videos.pop(video_id, None)
        return JSONResponse({"id": video_id, "object": "video.deleted", "deleted": True})

    return app


@contextmanager
def fake_videos_server(folder: Path) -> Iterator[FakeVideos]:
    folder.mkdir(parents=True, exist_ok=True)
    state = FakeVideos(url="")
    with serve_in_thread(_app(state, folder), name="fake-videos") as url:
        state.url = url
        yield state
