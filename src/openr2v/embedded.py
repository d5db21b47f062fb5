"""An openr2v server inside this process, for the CLI's no-server mode.

The whole API runs on a loopback port of its own (uvicorn in a thread), so the CLI drives it
with the same SDK and the same wire as a remote server: uploads, live events, downloads. The
data directory's own key (``<data_dir>/api_key``) is used, so a kept ``--data-dir`` shows its
tasks again on the next run.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp

__all__ = ["EmbeddedServer", "embedded_server", "serve_in_thread"]


@dataclass(frozen=True)
class EmbeddedServer:
    url: str
    api_key: str
    data_dir: Path


@contextlib.contextmanager
def embedded_server(data_dir: Path | None = None, *, workers: int | None = None,
                    log_level: str = "warning") -> Iterator[EmbeddedServer]:
    from openr2v.api.app import create_app
    from openr2v.config import Settings

    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="openr2v-")))
        # Explicit values win over OPENR2V_* from the environment: this server is private to us.
        overrides: dict[str, object] = {"data_dir": data_dir, "api_keys": "", "public_url": None}
        if workers is not None:
            overrides["render_threads"] = workers
        app = create_app(Settings(**overrides))
        url = stack.enter_context(serve_in_thread(app, log_level=log_level))
        yield EmbeddedServer(url=url, api_key=app.state.runtime.created_key, data_dir=data_dir)


@contextlib.contextmanager
def serve_in_thread(app: ASGIApp, *, log_level: str = "warning", name: str = "openr2v-embedded") -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a daemon thread; yields its base URL.

    Also what tests and scripts/fuzz.py use to run the app in-process."""
    import uvicorn

    with contextlib.ExitStack() as stack:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stack.callback(sock.close)
        sock.bind(("127.0.0.1", 0))  # bound before serving: no race for a free port
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=5))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
        thread.start()

        def shutdown() -> None:
            server.should_exit = True
            thread.join(20)

        stack.callback(shutdown)
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the openr2v server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
