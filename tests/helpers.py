"""What tests share besides fixtures (those are in conftest.py): keys, live servers and their settings,
the contract's MP4 checks, a webhook receiver, the browser's command line."""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import httpx

from openr2v.api.app import create_app
from openr2v.config import Settings
from openr2v.embedded import serve_in_thread

__all__ = ["API_KEYS", "CHROMIUM", "CHROMIUM_ARGS", "CN_KEY", "KEY", "OTHER_KEY", "LiveServer", "QuietHandler",
           "Received", "VideoFacts", "WebhookReceiver", "assert_contract_mp4", "free_port", "front_settings",
           "run_server", "serve_directory", "start_serve_process", "test_settings", "video_facts"]

KEY = "sk-test"
OTHER_KEY = "sk-other"
CN_KEY = "sk-cn"
API_KEYS = f"{KEY}:intl,{OTHER_KEY}:intl,{CN_KEY}:cn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serves ``directory`` over HTTP on 127.0.0.1; yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()


@dataclass
class LiveServer:
    url: str
    settings: Settings
    app: object

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"

    def client(self, key: str = KEY) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def wait(self, task_id: str, key: str = KEY, timeout: float = 120) -> dict:
        deadline = time.time() + timeout
        with self.client(key) as c:
            while time.time() < deadline:
                body = c.get(f"/api/v1/tasks/{task_id}").json()
                if body["output"]["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
                    return body
                time.sleep(0.2)
        raise TimeoutError(f"task {task_id} did not finish in {timeout}s")


def test_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = dict(data_dir=data_dir, api_keys=API_KEYS, region="intl", render_threads=2,
                                     allow_private_urls=True, x264_preset="ultrafast")
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextlib.contextmanager
def run_server(settings: Settings) -> Iterator[LiveServer]:
    """Our ASGI app under uvicorn on a free port, in a thread."""
    app = create_app(settings)
    with serve_in_thread(app, name="openr2v-test") as url:
        yield LiveServer(url=url, settings=settings, app=app)


def start_serve_process(data_dir: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    """``openr2v serve`` as a real subprocess (one worker) on ``port``; returns once /healthz answers."""
    # ``env`` may override the defaults too (OPENR2V_ALLOW_PRIVATE_URLS="0" for a guarded server).
    full_env = {**os.environ, "OPENR2V_API_KEYS": API_KEYS, "OPENR2V_ALLOW_PRIVATE_URLS": "1", **env}
    proc = subprocess.Popen([sys.executable, "-m", "openr2v.cli", "serve", "--port", str(port), "--data-dir",
                             str(data_dir), "--render-threads", "1", "--log-level", "warning"], env=full_env)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def front_settings(upstream_url: str, key: str = OTHER_KEY, **overrides: object) -> dict[str, object]:
    """Settings of a front server (engine ``dashscope``) in front of ``upstream_url``, polling fast."""
    values: dict[str, object] = dict(engine="dashscope", upstream_url=upstream_url, upstream_api_key=key,
                                     upstream_poll_seconds=0.1, upstream_max_poll_seconds=0.5)
    values.update(overrides)
    return values


@dataclass
class VideoFacts:
    codec: str
    width: int
    height: int
    fps: float
    frames: int
    pix_fmt: str
    audio_codec: str | None
    sample_rate: int | None
    faststart: bool


def video_facts(data: bytes | Path) -> VideoFacts:
    """What an MP4 really holds, read with PyAV (frames counted by decoding)."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    with av.open(io.BytesIO(raw)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        frames = sum(1 for _ in c.decode(video=0))
        facts = VideoFacts(codec=v.codec_context.name, width=v.codec_context.width, height=v.codec_context.height,
                           fps=float(v.average_rate), frames=frames, pix_fmt=v.codec_context.pix_fmt,
                           audio_codec=a.codec_context.name if a else None,
                           sample_rate=a.codec_context.sample_rate if a else None,
                           faststart=raw.find(b"moov") < raw.find(b"mdat"))
    return facts


def assert_contract_mp4(data: bytes | Path, width: int, height: int, seconds: int, audio: bool) -> VideoFacts:
    f = video_facts(data)
    assert (f.codec, f.width, f.height, f.pix_fmt) == ("h264", width, height, "yuv420p"), f
    assert f.fps == 30 and f.frames == seconds * 30, f
    assert f.faststart, "moov must precede mdat (faststart)"
    if audio:
        assert (f.audio_codec, f.sample_rate) == ("aac", 48000), f
    else:
        assert f.audio_codec is None, f
    return f


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    at: float  # when (time.monotonic())


class WebhookReceiver:
    """A local HTTP endpoint that records POSTs and answers from a script (then 200)."""

    def __init__(self, port: int = 0) -> None:
        self.script: list[int] = []
        self.received: list[Received] = []
        self._cv = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._cv:
                    status = receiver.script.pop(0) if receiver.script else 200
                    receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body,
                                                      status, time.monotonic()))
                    receiver._cv.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 60) -> list[Received]:
        """Block until ``predicate(received)`` holds; return what was received."""
        deadline = time.time() + timeout
        with self._cv:
            while not predicate(self.received):
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError(f"webhook receiver got {len(self.received)} deliveries: "
                                       f"{[r.status for r in self.received]}")
                self._cv.wait(left)
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
