"""Shared fixtures: generated reference media, a static file server, and live openr2v servers."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from openr2v.api.app import create_app
from openr2v.config import Settings
from openr2v.embedded import serve_in_thread
from tests import mediagen

KEY = "sk-test"
OTHER_KEY = "sk-other"
CN_KEY = "sk-cn"
API_KEYS = f"{KEY}:intl,{OTHER_KEY}:intl,{CN_KEY}:cn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- reference media --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small, valid references of every kind the contract accepts."""
    d = tmp_path_factory.mktemp("media")
    mediagen.make_video(d / "person1.mp4", 480, 640, 2.5, audio=True, seed=1, pitch_hz=120)
    mediagen.make_video(d / "person2.mp4", 480, 640, 3.0, audio=True, seed=2, pitch_hz=220)
    mediagen.make_video(d / "silent.mov", 400, 400, 2.0, audio=False, seed=3)
    mediagen.make_image(d / "object.png", 600, 600, "png", seed=4)
    mediagen.make_image(d / "background.jpg", 1280, 720, "jpeg", seed=5)
    mediagen.make_image(d / "face.webp", 512, 512, "webp", seed=6)
    mediagen.make_image(d / "frame.bmp", 800, 600, "bmp", seed=7)
    mediagen.make_image(d / "tiny.png", 200, 200, "png", seed=8)  # below the 360 px minimum
    mediagen.make_audio(d / "voice.wav", 3.0, "wav", pitch_hz=180)
    mediagen.make_audio(d / "voice.mp3", 3.0, "mp3", pitch_hz=140)
    (d / "notanimage.png").write_bytes(b"this is plain text, not a PNG\n" * 10)
    return d


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serves ``directory`` over HTTP on 127.0.0.1; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()


@pytest.fixture(scope="session")
def file_server(media_dir: Path) -> Iterator[str]:
    """Serves media_dir over HTTP on 127.0.0.1; yields its base URL."""
    with serve_directory(media_dir) as url:
        yield url


# -- live servers -----------------------------------------------------------------------------


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


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One shared server for tests that only add tasks of their own."""
    with run_server(test_settings(tmp_path_factory.mktemp("srv"))) as s:
        yield s


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[object]:
    """A factory for a private server with its own settings (closed after the test)."""
    stack = contextlib.ExitStack()

    def make(**overrides: object) -> LiveServer:
        sub = tmp_path / f"srv{len(stack._exit_callbacks)}"
        return stack.enter_context(run_server(test_settings(sub, **overrides)))

    with stack:
        yield make


def front_settings(upstream_url: str, key: str = OTHER_KEY, **overrides: object) -> dict[str, object]:
    """Settings of a front server (engine ``dashscope``) in front of ``upstream_url``, polling fast."""
    values: dict[str, object] = dict(engine="dashscope", upstream_url=upstream_url, upstream_api_key=key,
                                     upstream_poll_seconds=0.1, upstream_max_poll_seconds=0.5)
    values.update(overrides)
    return values


@pytest.fixture
def make_front(make_server: object) -> object:
    """A factory for an upstream-mode server (docs/engines/dashscope.md) in front of another LiveServer; it uses
    ``key`` (default OTHER_KEY) upstream, so the upstream's tasks of the gateway are told apart."""

    def make(upstream: LiveServer, key: str = OTHER_KEY, **overrides: object) -> LiveServer:
        return make_server(**front_settings(upstream.url, key, **overrides))  # type: ignore[operator, no-any-return]

    return make


@pytest.fixture
def ci_required() -> bool:
    return os.environ.get("CI", "").lower() == "true"


# -- output checks ----------------------------------------------------------------------------


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
    import io

    import av

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


# -- webhook receivers ------------------------------------------------------------------------


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

    def wait_for(self, predicate: object, timeout: float = 60) -> list[Received]:
        """Block until ``predicate(received)`` holds; return what was received."""
        deadline = time.time() + timeout
        with self._cv:
            while not predicate(self.received):  # type: ignore[operator]
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError(f"webhook receiver got {len(self.received)} deliveries: "
                                       f"{[r.status for r in self.received]}")
                self._cv.wait(left)
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


# -- a headless browser -----------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (never a downloaded browser). Skips when absent,
    except under CI=true, where a missing browser is a failure."""
    reason = None
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is missing (apt-get install chromium; `make test` does it as root)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = reason or "the playwright package is missing (pip install -e '.[test]')"
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


# -- scale-out services (tests/services.py): private, real, always stopped ----------------------


@pytest.fixture
def postgres_db() -> Iterator[object]:
    """A PostgreSQL database of this test's own (``.url``, ``.query``), dropped afterwards."""
    from tests.services import PostgresDB

    db = PostgresDB()
    try:
        yield db
    finally:
        db.drop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[object]:
    """Our own redis-server on a free port (``.url``, ``.restart()``), keeping nothing on disk."""
    from tests.services import RedisServer

    server = RedisServer(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def moto_s3(tmp_path: Path) -> Iterator[object]:
    """moto's S3 server as a subprocess with one bucket (``.endpoint``, ``.bucket``, ``.env()``)."""
    from tests.services import MotoS3

    s3 = MotoS3(tmp_path)
    try:
        yield s3
    finally:
        s3.stop()
