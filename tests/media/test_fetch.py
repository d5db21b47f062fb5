"""Fetcher against a real HTTP server on 127.0.0.1, plus the SSRF guard's address rules."""

from __future__ import annotations

import base64
import http.server
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from openr2v.errors import InputDownloadFailed, InvalidURL
from openr2v.media import fetch as fetch_module
from openr2v.media.fetch import Fetcher, check_url_host, forbidden_reason, parse_ip_host

PAYLOAD = bytes(range(256)) * 64  # 16 KiB


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: dict[str, int] = {}

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        _Handler.hits[url.path] = _Handler.hits.get(url.path, 0) + 1
        if url.path == "/file":
            self._send(200, PAYLOAD)
        elif url.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif url.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif url.path == "/missing":
            self._send(404, b"not here")
        elif url.path == "/unsized":
            # No Content-Length: the body ends when the connection closes, so only the stream cap can stop it.
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(64):
                self.wfile.write(PAYLOAD)
            self.close_connection = True
        elif url.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass  # the client gave up, as it should
        elif url.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            time.sleep(3)
        elif url.path == "/host":
            self._send(200, self.headers.get("Host", "").encode())
        else:
            self._send(404, b"")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up mid-body is what the cap tests do on purpose


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def _fetcher(tmp_path: Path, *, allow_private: bool = True, max_seconds: float = 5.0, **kw: object) -> Fetcher:
    return Fetcher(tmp_path / "cache", allow_private=allow_private, max_seconds=max_seconds, connect_seconds=1.0,
                   **kw)  # type: ignore[arg-type]


# -- http(s) against a real server --------------------------------------------------------------------


def test_fetch_downloads_and_caches(server: str, tmp_path: Path) -> None:
    f = _fetcher(tmp_path)
    path = f.fetch(f"{server}/file?v=1", max_bytes=1 << 20, field="input.reference_urls[0]")
    assert path.read_bytes() == PAYLOAD
    hits = _Handler.hits["/file"]
    assert f.fetch(f"{server}/file?v=1", max_bytes=1 << 20, field="x") == path
    assert _Handler.hits["/file"] == hits  # served from the cache
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".part-")]


def test_fetch_sends_the_original_host_header(server: str, tmp_path: Path) -> None:
    port = urlsplit(server).port
    path = _fetcher(tmp_path).fetch(f"{server}/host", max_bytes=1000, field="f")
    assert path.read_bytes() == f"127.0.0.1:{port}".encode()


def test_concurrent_fetches_of_one_url(server: str, tmp_path: Path) -> None:
    f = _fetcher(tmp_path)
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: f.fetch(f"{server}/file?v=2", max_bytes=1 << 20, field="f"), range(4)))
    assert len(set(paths)) == 1 and paths[0].read_bytes() == PAYLOAD


def test_http_error_status(server: str, tmp_path: Path) -> None:
    with pytest.raises(InputDownloadFailed) as err:
        _fetcher(tmp_path).fetch(f"{server}/missing", max_bytes=1000, field="input.reference_urls[1]")
    assert "input.reference_urls[1]" in err.value.message and "404" in err.value.message


def test_redirects_are_followed_and_capped(server: str, tmp_path: Path) -> None:
    f = _fetcher(tmp_path)
    path = f.fetch(f"{server}/redirect?to=/file%3Fv%3D3", max_bytes=1 << 20, field="f")
    assert path.read_bytes() == PAYLOAD
    with pytest.raises(InputDownloadFailed, match="more than 5 redirects"):
        f.fetch(f"{server}/loop", max_bytes=1000, field="f")


def test_byte_cap_from_content_length(server: str, tmp_path: Path) -> None:
    with pytest.raises(InputDownloadFailed, match="larger than the 1000 bytes limit"):
        _fetcher(tmp_path).fetch(f"{server}/file?v=4", max_bytes=1000, field="f")


def test_byte_cap_while_streaming(server: str, tmp_path: Path) -> None:
    f = _fetcher(tmp_path)
    with pytest.raises(InputDownloadFailed, match="larger than"):
        f.fetch(f"{server}/unsized", max_bytes=100_000, field="f")
    assert not list((tmp_path / "cache").iterdir())  # no partial file left behind


@pytest.mark.parametrize("route", ["/trickle", "/stall"])
def test_total_time_cap(server: str, tmp_path: Path, route: str) -> None:
    started = time.monotonic()
    with pytest.raises(InputDownloadFailed, match="longer than 0.5 s|did not answer"):
        _fetcher(tmp_path, max_seconds=0.5).fetch(f"{server}{route}", max_bytes=1 << 20, field="f")
    assert time.monotonic() - started < 1.5


def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    with pytest.raises(InputDownloadFailed, match="f: the download failed"):
        _fetcher(tmp_path).fetch(f"http://127.0.0.1:{port}/x", max_bytes=1000, field="f")


# -- the SSRF guard -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/file",
    "http://localhost:{port}/file",
    "http://10.0.0.1/a.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://[::1]:{port}/file",
    "http://[::ffff:127.0.0.1]:{port}/file",
    "http://2130706433:{port}/file",
    "http://0x7f000001:{port}/file",
    "http://0177.0.0.1:{port}/file",
    "http://127.1:{port}/file",
    "http://0.0.0.0:{port}/file",
    "http://[fe80::1]/a.png",
])
def test_private_addresses_are_refused(server: str, tmp_path: Path, url: str) -> None:
    port = urlsplit(server).port
    hits = sum(_Handler.hits.values())
    with pytest.raises(InvalidURL) as err:
        _fetcher(tmp_path, allow_private=False).fetch(url.format(port=port), max_bytes=1000, field="f")
    assert err.value.message.startswith("f: ") and "public" in err.value.message
    assert sum(_Handler.hits.values()) == hits  # refused before any connection


def test_redirect_to_a_private_address_is_refused(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://127.0.0.1/secret"})

    f = _fetcher(tmp_path, allow_private=False, transport=httpx.MockTransport(handler))
    with pytest.raises(InvalidURL, match="127.0.0.1 is loopback"):
        f.fetch("http://93.184.216.34/a.png", max_bytes=1000, field="f")
    assert seen == ["http://93.184.216.34/a.png"]


def test_connection_is_pinned_to_the_checked_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The request goes to the IP that was checked, with the name only in Host and TLS SNI."""
    monkeypatch.setattr(fetch_module.socket, "getaddrinfo", _fake_dns({"cdn.example.com": ["93.184.216.34"]}))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"picture")

    f = _fetcher(tmp_path, allow_private=False, transport=httpx.MockTransport(handler))
    path = f.fetch("https://cdn.example.com/img/a.png?sig=1", max_bytes=1000, field="f")
    assert path.read_bytes() == b"picture"
    (req,) = seen
    assert str(req.url) == "https://93.184.216.34/img/a.png?sig=1"
    assert req.headers["host"] == "cdn.example.com"
    assert req.extensions["sni_hostname"] == "cdn.example.com"


def test_a_name_resolving_to_any_private_address_is_refused(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_module.socket, "getaddrinfo",
                        _fake_dns({"rebind.example.com": ["93.184.216.34", "127.0.0.1"]}))
    with pytest.raises(InvalidURL, match="resolves to 127.0.0.1"):
        _fetcher(tmp_path, allow_private=False).fetch("http://rebind.example.com/a", max_bytes=10, field="f")


def test_dns_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_module.socket, "getaddrinfo", _fake_dns({}))
    with pytest.raises(InputDownloadFailed, match="f: host 'nowhere.example' cannot be resolved"):
        _fetcher(tmp_path, allow_private=False).fetch("http://nowhere.example/a", max_bytes=10, field="f")


def _fake_dns(table: dict[str, list[str]]):  # noqa: ANN202
    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in table[host]]

    return getaddrinfo


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "file:///etc/passwd", "gopher://x/", "http:///nohost"])
def test_bad_schemes_and_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(InvalidURL):
        _fetcher(tmp_path).fetch(url, max_bytes=10, field="f")


@pytest.mark.parametrize(("url", "ok"), [
    ("https://example.com/a.png", True),
    ("http://93.184.216.34:8080/a.mp4", True),
    ("data:image/png;base64,AAAA", True),
    ("oss://dashscope-instant/abc/a.png", True),
    ("http://localhost/a.png", False),
    ("http://api.localhost/a.png", False),
    ("http://127.0.0.1/a.png", False),
    ("http://[::ffff:10.1.2.3]/a.png", False),
    ("http://3232235777/a.png", False),  # 192.168.1.1
    ("http://169.254.169.254/", False),
    ("ftp://example.com/a.png", False),
])
def test_check_url_host(url: str, ok: bool) -> None:
    if ok:
        check_url_host(url, "f")
    else:
        with pytest.raises(InvalidURL, match="^f: "):
            check_url_host(url, "f")


@pytest.mark.parametrize(("host", "ip"), [
    ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("10.1", "10.0.0.1"), ("[::1]", "::1"),
    ("example.com", None), ("1.2.3.4.5", None), ("256.1.1.1", None), ("08.1.1.1", None), ("1.2.3.4294967296", None),
])
def test_parse_ip_host(host: str, ip: str | None) -> None:
    parsed = parse_ip_host(host)
    assert (str(parsed) if parsed else None) == ip


@pytest.mark.parametrize(("ip", "reason"), [
    ("127.0.0.1", "loopback"), ("10.0.0.1", "private"), ("192.168.1.1", "private"), ("172.16.0.1", "private"),
    ("169.254.169.254", "link-local"), ("100.64.0.1", "CGNAT"), ("100.100.100.200", "CGNAT"),
    ("224.0.0.1", "multicast"), ("0.0.0.0", "unspecified"), ("240.0.0.1", "reserved"),
    ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "link-local"),
    ("2002:7f00:1::", "loopback"), ("64:ff9b::a00:1", "private"), ("fe80::1", "link-local"),
    ("fd00:ec2::254", "private"), ("ff02::1", "multicast"), ("::", "unspecified"),
    ("8.8.8.8", None), ("93.184.216.34", None), ("2606:4700::1111", None),
])
def test_forbidden_reason(ip: str, reason: str | None) -> None:
    got = forbidden_reason(ipaddress.ip_address(ip))
    assert (got is None) if reason is None else (got is not None and reason in got)


# -- data: and oss: -----------------------------------------------------------------------------------


def test_data_uri(tmp_path: Path) -> None:
    uri = "data:image/png;base64," + base64.b64encode(PAYLOAD).decode()
    f = _fetcher(tmp_path)
    path = f.fetch(uri, max_bytes=1 << 20, field="input.media[0].url")
    assert path.read_bytes() == PAYLOAD
    with pytest.raises(InputDownloadFailed, match="input.media\\[0\\].url: .*limit"):
        f.fetch(uri, max_bytes=1000, field="input.media[0].url")
    with pytest.raises(InvalidURL, match="not valid base64"):
        f.fetch("data:image/png;base64,@@@@", max_bytes=1000, field="f")
    with pytest.raises(InvalidURL, match="data:"):
        f.fetch("data:image/png,rawbytes", max_bytes=1000, field="f")


def test_oss_uses_the_resolver(tmp_path: Path) -> None:
    stored = tmp_path / "upload.bin"
    stored.write_bytes(b"12345")
    asked: list[str] = []
    f = _fetcher(tmp_path, resolve_oss=lambda url: asked.append(url) or stored)
    assert f.fetch("oss://bucket/dir/a.png", max_bytes=10, field="f") == stored
    assert asked == ["oss://bucket/dir/a.png"]
    with pytest.raises(InputDownloadFailed):
        f.fetch("oss://bucket/dir/a.png", max_bytes=4, field="f")
    with pytest.raises(InvalidURL, match="oss://"):
        _fetcher(tmp_path).fetch("oss://bucket/a.png", max_bytes=10, field="f")
