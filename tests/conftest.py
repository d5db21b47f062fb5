"""Shared fixtures: generated reference media, a static file server, and live openr2v servers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import mediagen
from tests.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    OTHER_KEY,
    LiveServer,
    WebhookReceiver,
    front_settings,
    run_server,
    serve_directory,
    test_settings,
)

# -- markers (pyproject.toml): `make check` runs what is neither slow, e2e nor browser -----------

# A test that uses a fixture named *server (but the static file_server) or make_front talks to a live server
# or service: e2e.
NOT_LIVE = frozenset({"file_server"})
# Modules by what they start: subprocesses and services (e2e), renders and long runs (slow), Chromium (browser).
MODULE_MARKS: dict[str, tuple[str, ...]] = {
    "tests/api/test_web.py": ("browser", "e2e"),
    "tests/api/test_fuzz.py": ("e2e", "slow"),
    "tests/api/test_hostile_references.py": ("e2e",),
    "tests/api/test_isolation.py": ("e2e",),  # its world fixture runs a server
    "tests/bench/": ("e2e", "slow"),
    "tests/durability/": ("e2e", "slow"),
    "tests/engines/": ("slow",),
    "tests/media/test_encode.py": ("slow",),
    "tests/tasks/test_celery_queue.py": ("e2e",),
    "tests/tasks/test_leases.py": ("e2e",),
    "tests/tasks/test_restart.py": ("e2e",),
    "tests/tasks/test_store_postgres.py": ("e2e",),
    "tests/test_cli.py": ("e2e",),
    "tests/test_storage_s3.py": ("e2e",),
    "tests/test_worker_node.py": ("e2e",),
}
SERVICE_FIXTURES = frozenset({"postgres_db", "redis_server", "moto_s3", "chromium"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    for item in items:
        path = Path(str(item.path)).relative_to(root).as_posix()
        names = set(getattr(item, "fixturenames", ()))
        marks = {m for prefix, ms in MODULE_MARKS.items() if path.startswith(prefix) for m in ms}
        if names & SERVICE_FIXTURES or "make_front" in names or any(
                n.endswith("server") and n not in NOT_LIVE for n in names):
            marks.add("e2e")
        if "chromium" in names:
            marks.add("browser")
        for mark in sorted(marks):
            item.add_marker(getattr(pytest.mark, mark))


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


@pytest.fixture(scope="session")
def file_server(media_dir: Path) -> Iterator[str]:
    """Serves media_dir over HTTP on 127.0.0.1; yields its base URL."""
    with serve_directory(media_dir) as url:
        yield url


# -- live servers -----------------------------------------------------------------------------


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


# -- webhook receivers ------------------------------------------------------------------------


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


# -- a headless browser -----------------------------------------------------------------------

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
