"""Hostile references end to end, against a real ``openr2v serve`` process with the SSRF guard on.

The server trusts exactly one private host, the hostile file server (``OPENR2V_FETCH_ALLOW_HOSTS``
= its 127.0.0.1:port), so content it serves is fetched while everything it redirects to, and
every other private address, name or spelling, is refused. A canary server stands at the private
targets: it must never be contacted.

What the body shows is refused at submit (HTTP 400 with the dialect's code, naming the field);
what only the file shows fails the task (FAILED, its code, a message naming the field). After the
whole batch the server is healthy, its RSS grew by a bounded amount and no file descriptor leaked.
"""

from __future__ import annotations

import io
import ipaddress
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import mediagen
from tests.helpers import KEY, free_port, start_serve_process
from tests.hostile import MB, HostileServer

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
ASYNC = {"X-DashScope-Async": "enable"}
FIELD = "input.reference_urls[0]"
FETCH_SECONDS = 2  # the server's time cap for one download (OPENR2V_FETCH_MAX_SECONDS)
RSS_GROWTH_CEILING_MB = 120  # below one decoded 36 MP RGBA image (144 MB); the bombs would take GBs


# -- the servers ------------------------------------------------------------------------------


def private_hostname() -> str:
    """A name of this machine that the real resolver maps to a non-public address (no local-name
    shortcut like ``localhost`` applies to it): the guard can only refuse it after resolving it."""
    from openr2v.media.fetch import forbidden_reason

    for name in dict.fromkeys([socket.gethostname(), socket.getfqdn()]):
        if not name or name.startswith("localhost") or "." in name and name.split(".")[-1] == "localhost":
            continue
        try:
            infos = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
        except OSError:
            continue
        addresses = [ipaddress.ip_address(i[4][0].split("%")[0]) for i in infos]
        if addresses and all(forbidden_reason(a) for a in addresses):
            return name
    pytest.fail("no name of this machine resolves to a private address; add one to /etc/hosts")


@dataclass
class Guarded:
    url: str
    proc: subprocess.Popen[bytes]
    data_dir: Path
    hostile: HostileServer
    canary: HostileServer
    hostname: str
    media: dict[str, bytes]
    baseline: tuple[int, int] = (0, 0)  # (RSS kB, open fds) after warming up

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)

    def stats(self) -> tuple[int, int]:
        return proc_stats(self.proc.pid)


def proc_stats(pid: int) -> tuple[int, int]:
    """(VmRSS in kB, number of open file descriptors) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return rss, len(list(Path(f"/proc/{pid}/fd").iterdir()))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Valid references and their hostile variants, as bytes."""
    d = tmp_path_factory.mktemp("hostile-media")
    mediagen.make_image(d / "ok.png", 600, 600, "png", seed=4)
    mediagen.make_video(d / "tail.mp4", 480, 640, 2.5, audio=True, seed=1)  # index after the data
    mediagen.make_video(d / "head.mp4", 480, 640, 2.5, audio=True, seed=1, faststart=True)
    mediagen.make_video(d / "head.mov", 400, 400, 2.0, audio=False, seed=3, faststart=True)
    mediagen.make_audio(d / "voice.wav", 2.0, "wav")
    out = {p.name: p.read_bytes() for p in d.iterdir()}
    gif = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (600, 600), (200, 10, 10)).save(gif, format="GIF")
    out["gif"] = gif.getvalue()
    return out


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, media: dict[str, bytes]) -> Iterator[Guarded]:
    hostile, canary = HostileServer(), HostileServer()
    canary.add("ok.png", media["ok.png"], "image/png")
    data_dir = tmp_path_factory.mktemp("guarded")
    port = free_port()
    proc = start_serve_process(
        data_dir, port, OPENR2V_ALLOW_PRIVATE_URLS="0", OPENR2V_FETCH_ALLOW_HOSTS=f"127.0.0.1:{hostile.port}",
        OPENR2V_FETCH_MAX_SECONDS=str(FETCH_SECONDS), OPENR2V_FETCH_CONNECT_SECONDS="1",
        OPENR2V_SUBMIT_RATE_PER_SECOND="0", OPENR2V_MAX_CONCURRENT_TASKS="0", OPENR2V_X264_PRESET="ultrafast")
    try:
        g = Guarded(f"http://127.0.0.1:{port}", proc, data_dir, hostile, canary, private_hostname(), media)
        _warm_up(g, media)
        g.baseline = g.stats()
        yield g
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        hostile.close()
        canary.close()


def _warm_up(g: Guarded, media: dict[str, bytes]) -> None:
    """Load what the batch will load (decoders, every dialect's routes) before the baseline is read."""
    url = g.hostile.add("warm.png", media["voice.wav"], "image/png")  # fetched and probed, then refused
    with g.client() as c:
        task = submit_dashscope(c, [url]).json()["output"]["task_id"]
        assert wait_task(c, task)["code"] == "UnsupportedFileFormat"
        for dialect in DIALECTS.values():
            dialect.submit(c, ["http://127.0.0.1/warm.mp4"])


# -- talking to it ----------------------------------------------------------------------------


def submit_dashscope(c: httpx.Client, refs: list[str], **input_extra: Any) -> httpx.Response:
    body = DIALECTS["dashscope"].body(refs, PROMPT)
    body["input"].update(input_extra)
    return c.post(SUBMIT, json=body, headers=ASYNC)


def wait_task(c: httpx.Client, task_id: str, timeout: float = 40) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = c.get(f"/api/v1/tasks/{task_id}").json()["output"]
        if out["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
            return out  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise TimeoutError(f"task {task_id} still not finished after {timeout} s")


PROMPT = "character1 waves."


@dataclass(frozen=True)
class Dialect:
    """How one dialect submits a list of reference URLs and spells a refused reference."""

    path: str
    body: Callable[[list[str], str], dict[str, Any]]  # (reference URLs, prompt) -> submit body
    code: Callable[[dict[str, Any]], str]
    message: Callable[[dict[str, Any]], str]
    url_code: str  # a reference URL refused at submit
    field: str  # how the first reference is named in the error

    def submit(self, c: httpx.Client, refs: list[str], prompt: str = PROMPT) -> httpx.Response:
        return c.post(self.path, json=self.body(refs, prompt), headers=ASYNC)


DIALECTS: dict[str, Dialect] = {
    "dashscope": Dialect(
        SUBMIT, lambda refs, prompt: {"model": "wan2.6-r2v-flash", "input": {"prompt": prompt, "reference_urls": refs},
                                      "parameters": {"size": "1280*720", "duration": 2}},
        lambda b: b["code"], lambda b: b["message"], "InvalidURL", FIELD),
    "aggregator": Dialect(
        "/model/v1/generation", lambda refs, prompt: {
            "model": "wan26_r2v", "input": {"prompt": prompt, "reference_urls": refs},
            "parameters": {"size": "1280*720", "duration": 2}},
        lambda b: b["error"]["code"], lambda b: b["error"]["message"], "001028004", FIELD),
    "gateway": Dialect(
        "/v1/video/generations", lambda refs, prompt: {
            "model": "wan2.6-r2v", "prompt": prompt,
            "metadata": {"input": {"reference_video_urls": refs}, "parameters": {"size": "1280*720", "duration": 5}}},
        lambda b: b["code"], lambda b: b["message"], "invalid_request", "metadata.input.reference_video_urls[0]"),
    "openai": Dialect(
        "/v1/videos", lambda refs, prompt: {"model": "wan2.6-r2v-flash", "prompt": prompt, "seconds": "2",
                                            "size": "1280x720", "references": refs},
        lambda b: b["error"]["code"], lambda b: b["error"]["message"] + f" param={b['error']['param']}",
        "invalid_url", "references[0]"),
}


# -- body-visible: refused at submit ----------------------------------------------------------

# Every spelling of a non-public host the guard must see through, and schemes that are not HTTP(S).
FORBIDDEN_URLS = [
    "http://127.0.0.1/a.mp4",
    "http://localhost/a.mp4",
    "http://LOCALHOST./a.mp4",
    "http://[::1]/a.mp4",
    "http://169.254.169.254/latest/meta-data/a.mp4",
    "http://100.100.100.200/latest/meta-data/a.mp4",  # Alibaba Cloud's metadata service (CGNAT space)
    "http://metadata.google.internal/a.mp4",
    "http://10.0.0.1/a.mp4",
    "http://172.16.5.4/a.mp4",
    "http://192.168.1.1/a.mp4",
    "http://0.0.0.0/a.mp4",
    "http://[::]/a.mp4",
    "http://[::ffff:127.0.0.1]/a.mp4",
    "http://[::ffff:a9fe:a9fe]/a.mp4",  # 169.254.169.254, IPv4-mapped
    "http://[64:ff9b::a9fe:a9fe]/a.mp4",  # the same through NAT64
    "http://[2002:7f00:1::]/a.mp4",  # 6to4 of 127.0.0.1
    "http://[fe80::1]/a.mp4",
    "http://[fd00::1]/a.mp4",
    "http://2130706433/a.mp4",  # 127.0.0.1 in decimal
    "http://2852039166/a.mp4",  # 169.254.169.254 in decimal
    "http://0x7f000001/a.mp4",
    "http://0177.0.0.1/a.mp4",
    "http://0xa9.0xfe.0xa9.0xfe/a.mp4",
    "http://127.1/a.mp4",
    "http://10.1/a.mp4",
    "http://user:pw@127.0.0.1/a.mp4",
    "http://example.com@169.254.169.254/a.mp4",
    "file:///etc/passwd.mp4",
    "file://localhost/etc/hosts.mp4",
    "ftp://example.com/a.mp4",
    "gopher://127.0.0.1:6379/_a.mp4",
    "dict://127.0.0.1:11211/a.mp4",
    "jar:http://example.com/a.mp4",
    "javascript:alert(1)//a.mp4",
    "//127.0.0.1/a.mp4",
    "127.0.0.1/a.mp4",
    "http:///a.mp4",
    "http://[::1/a.mp4",
]


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_forbidden_hosts_and_schemes_are_refused_at_submit(guarded: Guarded, dialect: str) -> None:
    d = DIALECTS[dialect]
    wrong: list[str] = []
    with guarded.client() as c:
        for url in FORBIDDEN_URLS:
            r = d.submit(c, [url])
            body = r.json()
            if r.status_code != 400 or d.code(body) != d.url_code or d.field not in d.message(body):
                wrong.append(f"{url}: HTTP {r.status_code} {body}")
    assert not wrong, "\n".join(wrong)
    assert sum(guarded.canary.hits.values()) == 0


def _raw_submit(g: Guarded, path: str, head: dict[str, str], body_chunks: Iterator[bytes]) -> tuple[int, bytes]:
    """Send a request over a raw socket (any body, any framing) while reading the answer as it comes:
    a server may answer before the body is sent, as it should for an oversized one."""
    sock = socket.create_connection(("127.0.0.1", int(g.url.rsplit(":", 1)[1])), timeout=30)
    lines = [f"POST {path} HTTP/1.1", "Host: test", f"Authorization: Bearer {KEY}", *ASYNC_LINES,
             *(f"{k}: {v}" for k, v in head.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    received = bytearray()
    done = threading.Event()

    def read() -> None:
        try:
            while chunk := sock.recv(65536):
                received.extend(chunk)
                if _complete(received):
                    break
        except OSError:
            pass
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        for chunk in body_chunks:
            if done.is_set():
                break
            sock.sendall(chunk)
    except OSError:
        pass  # the server closed its side after answering: fine, the answer is what counts
    done.wait(30)
    sock.close()
    head_raw, _, payload = bytes(received).partition(b"\r\n\r\n")
    assert head_raw, "no answer at all"
    return int(head_raw.split(b" ", 2)[1]), payload


ASYNC_LINES = [f"{k}: {v}" for k, v in ASYNC.items()]


def _complete(raw: bytearray) -> bool:
    head, sep, payload = bytes(raw).partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(payload) >= int(value)
    return False


DIALECT_PATHS = {name: d.path for name, d in DIALECTS.items()}


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_an_oversized_declared_body_is_refused_before_it_is_read(guarded: Guarded, dialect: str) -> None:
    """80 MB declared, over the 72 MB cap: answered 400 at once; the test sends only the first MB."""
    status, payload = _raw_submit(guarded, DIALECT_PATHS[dialect],
                                  {"Content-Type": "application/json", "Content-Length": str(80 * MB)},
                                  iter([b"{" + b" " * (MB - 1)]))
    assert status == 400, payload[:300]
    assert b"72" in payload or b"limit" in payload, payload[:300]


def test_an_oversized_chunked_body_is_refused_while_streaming(guarded: Guarded) -> None:
    """No Content-Length: the cap applies to what arrives; the answer is a clean 400, not a 5xx."""

    def chunks() -> Iterator[bytes]:
        piece = b" " * MB
        frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        yield b"1\r\n{\r\n"
        for _ in range(80):
            yield frame
        yield b"0\r\n\r\n"

    status, payload = _raw_submit(guarded, SUBMIT, {"Content-Type": "application/json",
                                                    "Transfer-Encoding": "chunked"}, chunks())
    assert status == 400, payload[:300]


BAD_BODIES: dict[str, bytes] = {
    "invalid-utf8": b'{"model": "wan2.6-r2v-flash", "input": {"prompt": "character1 \xff\xfe waves"}}',
    "invalid-utf8-only": b"\xff\xfe\xfd",
    "utf16-bom": '{"model": "wan2.6-r2v-flash"}'.encode("utf-16"),
    "nested-100k": b"[" * 100_000 + b"]" * 100_000,
    "nested-objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "nul-bytes": b'{"model": "wan2.6-r2v-flash\x00", "input": {"prompt": "\x00"}}',
    "huge-number": b'{"model": "wan2.6-r2v-flash", "parameters": {"duration": 1' + b"0" * 5000 + b"}}",
    "empty": b"",
}


@pytest.mark.parametrize("dialect", list(DIALECTS))
@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_malformed_bodies_get_a_clean_400(guarded: Guarded, dialect: str, case: str) -> None:
    with guarded.client() as c:
        r = c.post(DIALECT_PATHS[dialect], content=BAD_BODIES[case],
                   headers={**ASYNC, "Content-Type": "application/json"})
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.json(), r.text[:300]  # the dialect's own JSON envelope


@pytest.mark.parametrize("dialect", list(DIALECTS))
@pytest.mark.parametrize("where", ["prompt", "long-prompt", "url"])
def test_lone_surrogates_get_a_clean_400(guarded: Guarded, dialect: str, where: str) -> None:
    """Valid JSON (\\ud800 is a legal escape) but not valid Unicode: refused, never a 500 from the store."""
    d = DIALECTS[dialect]
    prompt = {"prompt": "\ud800 " + PROMPT, "long-prompt": PROMPT + "a" * 1600 + "\udfff"}.get(where, PROMPT)
    url = "https://example.com/\ud800.mp4" if where == "url" else "https://example.com/a.mp4"
    with guarded.client() as c:
        r = c.post(d.path, content=json.dumps(d.body([url], prompt)).encode(),
                   headers={**ASYNC, "Content-Type": "application/json"})
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert "surrogate" in d.message(r.json()) or "characters" in d.message(r.json()), r.text[:300]


def _data_uri(decoded_bytes: int) -> str:
    """A PNG data URI of about ``decoded_bytes`` (a real PNG header, then padding)."""
    import base64

    head = mediagen.png_bomb(400, 400)[:64]
    return "data:image/png;base64," + base64.b64encode(head + bytes(decoded_bytes - len(head))).decode()


@pytest.mark.parametrize("dialect", ["dashscope", "aggregator", "openai"])
def test_a_base64_image_over_the_limit_is_refused_at_submit(guarded: Guarded, dialect: str) -> None:
    """11 MB decoded (the limit is 10 MB): the body shows it, so it is a 400 naming the field."""
    d = DIALECTS[dialect]
    with guarded.client() as c:
        r = d.submit(c, [_data_uri(11 * MB)])
    assert r.status_code == 400, r.text[:300]
    assert d.field in d.message(r.json()) and "10.0 MB" in d.message(r.json()), r.text[:300]


def test_body_rules_of_the_contract(guarded: Guarded) -> None:
    """Six references, prompts over the limit (and far over), a 15 MB base64 image for wan2.7."""
    png = "https://example.com/a.png"
    with guarded.client() as c:
        six = submit_dashscope(c, [png] * 6)
        long_prompt = c.post(SUBMIT, headers=ASYNC, json={
            "model": "wan2.6-r2v-flash", "input": {"prompt": "character1 " + "a" * 1500, "reference_urls": [png]},
            "parameters": {"size": "1280*720", "duration": 2}})
        huge_prompt = c.post(SUBMIT, headers=ASYNC, json={
            "model": "wan2.6-r2v-flash", "input": {"prompt": "character1 " + "é" * 1_000_000,
                                                   "reference_urls": [png]},
            "parameters": {"size": "1280*720", "duration": 2}})
        long_negative = submit_dashscope(c, [png], negative_prompt="n" * 501)
        wan27_prompt = c.post(SUBMIT, headers=ASYNC, json={
            "model": "wan2.7-r2v", "input": {"prompt": "Image 1 " + "a" * 5000,
                                             "media": [{"type": "reference_image", "url": png}]}})
        wan27_base64 = c.post(SUBMIT, headers=ASYNC, json={
            "model": "wan2.7-r2v", "input": {"prompt": "Image 1 waves.",
                                             "media": [{"type": "first_frame", "url": _data_uri(15 * MB)},
                                                       {"type": "reference_image", "url": png}]}})
        openai_six = DIALECTS["openai"].submit(c, [png] * 6)
        aggregator_six = DIALECTS["aggregator"].submit(c, [png] * 3 + ["https://example.com/a.mp4"] * 3)
    for r, field in [(six, "input.reference_urls"), (long_prompt, "input.prompt"), (huge_prompt, "input.prompt"),
                     (long_negative, "input.negative_prompt"), (wan27_prompt, "input.prompt"),
                     (wan27_base64, "input.media[0]")]:
        assert r.status_code == 400 and r.json()["code"] == "InvalidParameter", r.text[:300]
        assert field in r.json()["message"], r.text[:300]
    assert openai_six.status_code == 400 and openai_six.json()["error"]["param"] == "references", openai_six.text
    assert aggregator_six.status_code == 400 and aggregator_six.json()["error"]["code"] == "001028001"


# -- file-only: the task fails --------------------------------------------------------------

# (case, how to build the URL from the servers, expected code, a fragment of the message)
Case = tuple[str, Callable[[Guarded], str], str, str]


def _file(name: str, data_key: str, ctype: str, transform: Callable[[bytes], bytes] = lambda b: b) -> Callable[
        [Guarded], str]:
    def build(g: Guarded) -> str:
        return g.hostile.add(name, transform(g.media[data_key]), ctype)

    return build


def _route(path: str) -> Callable[[Guarded], str]:
    return lambda g: f"{g.hostile.url}/{path.format(canary=g.canary.port, host=g.hostname)}"


def _redirect_to(target: str, hops: int = 0) -> Callable[[Guarded], str]:
    def build(g: Guarded) -> str:
        to = target.format(canary=g.canary.port, host=g.hostname, hostile=g.hostile.port)
        route = f"chain/{hops}/x.png" if hops else "redirect/x.png"
        return f"{g.hostile.url}/{route}?to={to}"

    return build


def _rot(data: bytes) -> bytes:
    """Keep everything up to the media data, then random bytes (bit rot in the picture)."""
    import numpy as np

    at = data.find(b"mdat") + 4
    return data[:at] + np.random.default_rng(0).bytes(len(data) - at)


URL_REFUSED, DOWNLOAD, FORMAT, PARAM = "InvalidURL", "BadRequest.InputDownloadFailed", "UnsupportedFileFormat", \
    "InvalidParameter"

FILE_CASES: list[Case] = [
    # names the real resolver maps to private addresses (the allowed server's own port, and the canary's)
    ("name-resolving-to-the-allowed-server", lambda g: f"http://{g.hostname}:{g.hostile.port}/f/ok.png",
     URL_REFUSED, "resolves to"),
    ("name-resolving-to-the-canary", lambda g: f"http://{g.hostname}:{g.canary.port}/f/ok.png", URL_REFUSED,
     "resolves to"),
    # redirects from the allowed server to private places: each hop is checked, none is contacted
    ("redirect-to-metadata", _redirect_to("http://169.254.169.254/latest/meta-data/x.png"), URL_REFUSED,
     "169.254.169.254"),
    ("redirect-to-alibaba-metadata", _redirect_to("http://100.100.100.200/latest/x.png"), URL_REFUSED, "CGNAT"),
    ("redirect-to-loopback-port", _redirect_to("http://127.0.0.1:{canary}/f/ok.png"), URL_REFUSED, "loopback"),
    ("redirect-to-localhost", _redirect_to("http://localhost:{canary}/f/ok.png"), URL_REFUSED, "local name"),
    ("redirect-to-ipv6-loopback", _redirect_to("http://[::1]:{canary}/f/ok.png"), URL_REFUSED, "loopback"),
    ("redirect-to-mapped-ipv6", _redirect_to("http://[::ffff:127.0.0.1]:{canary}/f/ok.png"), URL_REFUSED,
     "loopback"),
    ("redirect-to-decimal", _redirect_to("http://2130706433:{canary}/f/ok.png"), URL_REFUSED, "loopback"),
    ("redirect-to-octal", _redirect_to("http://0177.0.0.1:{canary}/f/ok.png"), URL_REFUSED, "invalid URL"),
    ("redirect-to-private-range", _redirect_to("http://192.168.7.7/x.png"), URL_REFUSED, "private"),
    ("redirect-to-private-name", _redirect_to("http://{host}:{canary}/f/ok.png"), URL_REFUSED, "resolves to"),
    ("chain-to-metadata", _redirect_to("http://169.254.169.254/x.png", hops=3), URL_REFUSED, "169.254.169.254"),
    ("chain-to-loopback", _redirect_to("http://127.0.0.1:{canary}/f/ok.png", hops=4), URL_REFUSED, "loopback"),
    ("redirect-to-file", _redirect_to("file:///etc/passwd"), URL_REFUSED, "scheme 'file'"),
    ("redirect-to-gopher", _redirect_to("gopher://127.0.0.1:{canary}/_x"), URL_REFUSED, "scheme 'gopher'"),
    ("redirect-loop", _route("loop/x.png"), DOWNLOAD, "redirects"),
    # downloads that go wrong
    ("http-404", _route("status/404/x.png"), DOWNLOAD, "404"),
    ("http-500", _route("status/500/x.png"), DOWNLOAD, "500"),
    ("trickle", lambda g: g.hostile.add("trickle.png", g.media["ok.png"], "image/png").replace("/f/", "/trickle/"),
     DOWNLOAD, f"longer than {FETCH_SECONDS} s"),
    ("stall-after-headers", _route("stall/x.png"), DOWNLOAD, f"longer than {FETCH_SECONDS} s"),
    ("silent-server", _route("silent/x.png"), DOWNLOAD, f"longer than {FETCH_SECONDS} s"),
    ("declared-too-big", _route("huge-declared/x.png?mb=11"), DOWNLOAD, "10 MB limit"),
    ("streamed-too-big", _route("huge-chunked/x.png?mb=11"), DOWNLOAD, "10 MB limit"),
    ("gzip-bomb", _route("gzip-bomb/x.png?mb=256"), DOWNLOAD, "10 MB limit"),
    ("unknown-content-encoding", lambda g: g.hostile.add("br.png", g.media["ok.png"], "image/png").replace(
        "/f/", "/encoded/br/"), DOWNLOAD, "Content-Encoding 'br'"),
    ("header-bomb", _route("header-bomb/x.png"), DOWNLOAD, "download failed"),
    # decompression bombs: huge declared dimensions, small on disk
    ("png-bomb-1.6-gigapixels", lambda g: g.hostile.add("bomb.png", mediagen.png_bomb(40000, 40000), "image/png"),
     FORMAT, "megapixels"),
    ("png-36-megapixels-rgba", lambda g: g.hostile.add("big.png", mediagen.png_bomb(6000, 6000, bit_depth=8,
                                                                                  color_type=6), "image/png"),
     PARAM, "at most 2000 pixels"),
    ("webp-bomb", lambda g: g.hostile.add("bomb.webp", mediagen.webp_bomb(), "image/webp"), FORMAT, "megapixels"),
    ("jpeg-bomb", lambda g: g.hostile.add("bomb.jpg", mediagen.jpeg_bomb(), "image/jpeg"), FORMAT, "megapixels"),
    # truncated and corrupt videos
    ("mp4-truncated-index-lost", _file("t1.mp4", "tail.mp4", "video/mp4", lambda b: b[:len(b) // 2]), FORMAT,
     "corrupt or truncated"),
    ("mp4-truncated-index-kept", _file("t2.mp4", "head.mp4", "video/mp4", lambda b: b[:len(b) // 2]), FORMAT,
     "truncated"),
    ("mov-truncated-index-kept", _file("t3.mov", "head.mov", "video/quicktime", lambda b: b[:len(b) // 2]), FORMAT,
     "truncated"),
    ("mp4-bit-rot", _file("rot.mp4", "head.mp4", "video/mp4", _rot), FORMAT, "corrupt"),
    ("mp4-garbage", lambda g: g.hostile.add("g.mp4", mediagen.corrupt_container("mp4"), "video/mp4"), FORMAT,
     "corrupt"),
    ("mov-garbage", lambda g: g.hostile.add("g.mov", mediagen.corrupt_container("mov"), "video/quicktime"), FORMAT,
     "corrupt"),
    # content that does not match its extension (or its Content-Type)
    ("mp4-that-is-a-png", _file("png.mp4", "ok.png", "video/mp4"), FORMAT, "expected a video"),
    ("mp4-that-is-text", lambda g: g.hostile.add("text.mp4", b"hello, I am a video\n" * 100, "video/mp4"), FORMAT,
     "not a supported"),
    ("mov-that-is-a-wav", _file("wav.mov", "voice.wav", "video/quicktime"), FORMAT, "expected a video"),
    ("png-that-is-an-mp4", _file("mp4.png", "head.mp4", "image/png"), FORMAT, "expected an image"),
    ("png-that-is-html", lambda g: g.hostile.add("page.png", b"<html><body>hi</body></html>" * 50, "image/png"),
     FORMAT, "not a supported"),
    ("png-that-is-a-gif", _file("gif.png", "gif", "image/png"), FORMAT, "not a supported"),
    ("no-extension-wav-claiming-png", _file("noext", "voice.wav", "image/png"), FORMAT, "use an image"),
]


@pytest.fixture(scope="module")
def file_tasks(guarded: Guarded) -> dict[str, tuple[str, str]]:
    """Every file-only case submitted at once (the worker takes them in turn): {case: (url, task id)}."""
    out: dict[str, tuple[str, str]] = {}
    with guarded.client() as c:
        for name, build, _code, _fragment in FILE_CASES:
            url = build(guarded)
            r = submit_dashscope(c, [url])
            assert r.status_code == 200, (name, r.text)
            out[name] = (url, r.json()["output"]["task_id"])
    return out


@pytest.mark.parametrize(("case", "code", "fragment"), [(c[0], c[2], c[3]) for c in FILE_CASES],
                         ids=[c[0] for c in FILE_CASES])
def test_file_only_problems_fail_the_task(guarded: Guarded, file_tasks: dict[str, tuple[str, str]], case: str,
                                          code: str, fragment: str) -> None:
    url, task_id = file_tasks[case]
    with guarded.client() as c:
        out = wait_task(c, task_id)
    assert out["task_status"] == "FAILED", (url, out)
    assert out["code"] == code, (url, out)
    assert out["message"].startswith(FIELD) and fragment in out["message"], (url, out["message"])
    assert "video_url" not in out


def test_the_canary_was_never_contacted(guarded: Guarded, file_tasks: dict[str, tuple[str, str]]) -> None:
    with guarded.client() as c:
        for _url, task_id in file_tasks.values():
            wait_task(c, task_id)
    assert dict(guarded.canary.hits) == {}


def test_server_healthy_and_bounded_after_the_batch(guarded: Guarded,
                                                    file_tasks: dict[str, tuple[str, str]]) -> None:
    """Runs last: every hostile task has ended, the server answers, memory and descriptors are bounded."""
    with guarded.client() as c:
        for _url, task_id in file_tasks.values():
            wait_task(c, task_id)
        assert c.get("/healthz").json()["status"] == "ok"
        # The fetch cache and work dirs hold nothing of the refused downloads but whole files.
        cache = guarded.data_dir / "cache"
        assert not list(cache.glob(".part-*")), "half-written downloads left behind"
    time.sleep(0.5)  # let the server close the connections of the last answers
    (rss0, fds0), (rss1, fds1) = guarded.baseline, guarded.stats()
    report = {"rss_before_mb": round(rss0 / 1024, 1), "rss_after_mb": round(rss1 / 1024, 1),
              "fds_before": fds0, "fds_after": fds1, "file_tasks": len(file_tasks)}
    print("hostile batch:", json.dumps(report))  # the figures docs/reliability.md quotes (pytest -s)
    assert (rss1 - rss0) / 1024 < RSS_GROWTH_CEILING_MB, report
    assert fds1 <= fds0 + 4, report
