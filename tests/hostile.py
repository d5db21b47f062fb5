"""A hostile HTTP server for end-to-end tests of the reference fetcher: lying, slow, huge, redirecting.

Routes (GET):

    /f/<name>            a registered file, with the registered Content-Type (which may lie)
    /trickle/<name>      the file, 64 bytes every ``delay`` s (?delay=0.2), with an honest Content-Length
    /stall/<name>        headers, then nothing until the client gives up
    /silent/<name>       the request is read, then nothing at all (not even a status line)
    /redirect/<name>     302 to ?to=URL (``name`` only keeps the URL's extension plausible)
    /chain/<n>/<name>    302 to /chain/<n-1>/..., then at 0 to ?to=URL
    /loop/<name>         302 to itself, forever
    /status/<code>/<name>
    /huge-declared/<name>  Content-Length of ?mb= (default 11) MB, the bytes sent lazily
    /huge-chunked/<name>   ?mb= MB with no Content-Length (ends when the connection closes)
    /gzip-bomb/<name>    Content-Encoding: gzip, ~?mb= (default 512) MB of zeros in ~0.5 KB per MB
    /encoded/<enc>/<name>  the file with ``Content-Encoding: <enc>`` and its bytes unchanged
    /header-bomb/<name>  a status line, then headers without end

Every request is counted in ``hits`` by path, so a test can prove a forbidden target was never
contacted. The server is threaded; slow handlers stop when ``close()`` is called.
"""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit

__all__ = ["HostileServer"]

MB = 1024 * 1024


class HostileServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.hits: Counter[str] = Counter()
        self._stop = threading.Event()
        self._bombs: dict[int, bytes] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                with server._lock:
                    server.hits[url.path] += 1
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                route, _, rest = url.path.lstrip("/").partition("/")
                try:
                    server._route(self, route, rest, query)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the fetcher hung up, as it should on a hostile answer

        self._server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def add(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Register ``data`` as /f/<name>; returns its URL."""
        self.files[name] = (data, content_type)
        return f"{self.url}/f/{name}"

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    # -- routes -----------------------------------------------------------------------------

    def _route(self, h: http.server.BaseHTTPRequestHandler, route: str, rest: str, q: dict[str, str]) -> None:
        name = rest.rsplit("/", 1)[-1]
        data, ctype = self.files.get(name, (b"", "application/octet-stream"))
        if route == "f" and name in self.files:
            self._send(h, 200, data, ctype)
        elif route == "trickle":
            h.send_response(200)
            self._headers(h, {"Content-Type": ctype, "Content-Length": str(len(data))})
            for at in range(0, len(data), 64):
                if self._stop.wait(float(q.get("delay", "0.2"))):
                    return
                h.wfile.write(data[at:at + 64])
                h.wfile.flush()
        elif route == "stall":
            h.send_response(200)
            self._headers(h, {"Content-Type": ctype, "Content-Length": str(len(data) or 1000)})
            self._stop.wait(60)
        elif route == "silent":
            self._stop.wait(60)
            h.close_connection = True
        elif route in ("redirect", "chain", "loop"):
            hops = int(rest.split("/", 1)[0]) if route == "chain" else 0
            if route == "loop":
                target = f"/loop/{rest}"
            elif hops > 0:
                target = f"/chain/{hops - 1}/{name}?to={q['to']}"
            else:
                target = q["to"]
            h.send_response(302)
            self._headers(h, {"Location": target, "Content-Length": "0"})
        elif route == "status":
            self._send(h, int(rest.split("/", 1)[0]), b"no", "text/plain")
        elif route == "huge-declared":
            size = int(float(q.get("mb", "11")) * MB)
            h.send_response(200)
            self._headers(h, {"Content-Type": "image/png", "Content-Length": str(size)})
            self._zeros(h, size)
        elif route == "huge-chunked":
            h.send_response(200)
            self._headers(h, {"Content-Type": "image/png", "Connection": "close"})
            h.close_connection = True
            self._zeros(h, int(float(q.get("mb", "11")) * MB))
        elif route == "gzip-bomb":
            body = self._bomb(int(q.get("mb", "512")))
            h.send_response(200)
            self._headers(h, {"Content-Type": "image/png", "Content-Encoding": "gzip",
                              "Content-Length": str(len(body))})
            h.wfile.write(body)
        elif route == "encoded":
            encoding = rest.split("/", 1)[0]
            h.send_response(200)
            self._headers(h, {"Content-Type": ctype, "Content-Encoding": encoding, "Content-Length": str(len(data))})
            h.wfile.write(data)
        elif route == "header-bomb":
            h.send_response(200)
            h.flush_headers()  # the status line only: what follows never ends
            for i in range(200_000):
                if self._stop.is_set():
                    return
                h.wfile.write(f"X-Filler-{i}: {'a' * 64}\r\n".encode())
        else:
            self._send(h, 404, b"not found", "text/plain")

    @staticmethod
    def _headers(h: http.server.BaseHTTPRequestHandler, headers: dict[str, str]) -> None:
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()

    def _send(self, h: http.server.BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
        h.send_response(status)
        self._headers(h, {"Content-Type": ctype, "Content-Length": str(len(body))})
        h.wfile.write(body)

    def _zeros(self, h: http.server.BaseHTTPRequestHandler, size: int) -> None:
        block = bytes(256 * 1024)
        for _ in range(0, size, len(block)):
            if self._stop.is_set():
                return
            h.wfile.write(block)

    def _bomb(self, mb: int) -> bytes:
        """gzip of ``mb`` MB of zeros, built once per size (about 1 KB per MB)."""
        with self._lock:
            if mb not in self._bombs:
                import io

                buf = io.BytesIO()
                with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
                    block = bytes(MB)
                    for _ in range(mb):
                        gz.write(block)
                self._bombs[mb] = buf.getvalue()
            return self._bombs[mb]


def wait_until(predicate: object, timeout: float = 10.0) -> bool:
    """Poll ``predicate()`` until it holds or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = bool(predicate())  # type: ignore[operator]
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)
