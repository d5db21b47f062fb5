"""Bring a reference to a local file: http(s) URLs, ``data:`` URIs and ``oss://`` uploads.

A reference URL is chosen by the client and fetched by the server, so every hop is checked
before it is contacted (SSRF): the host is resolved once, every address it resolves to must
be public, and the connection goes to that checked address (the URL is rewritten to the IP,
with the original ``Host`` header and TLS SNI/certificate name), so a second DNS answer can't
swap in an internal address (DNS rebinding). Redirects are followed by hand, each one checked
the same way. Bytes and wall time are capped while streaming, and bytes are counted after
any ``Content-Encoding`` is undone, a bounded piece at a time (a gzip bomb never inflates
past the cap in memory). An operator may name intranet hosts that references may reach
anyway (``allow_hosts``, "host" or "host:port" exactly as the URL spells it); every other hop,
redirects from an allowed host included, is checked as usual.

Errors: ``InvalidURL`` for what may never be fetched (scheme, forbidden address);
``InputDownloadFailed`` for what went wrong fetching (DNS, connect, status, size, time).
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import hashlib
import ipaddress
import os
import socket
import tempfile
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from openr2v.errors import InputDownloadFailed, InvalidURL

__all__ = ["AllowHosts", "Fetcher", "check_url_host", "forbidden_reason", "parse_allow_hosts", "parse_ip_host"]

MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_USER_AGENT = "openr2v-fetcher/0.1"
# Alibaba Cloud's metadata service sits in CGNAT space; AWS and GCP's in link-local; all are caught below.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "metadata", "metadata.google.internal")
# getaddrinfo has no timeout of its own; it runs here so a hung resolver costs only a thread.
_DNS_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="openr2v-dns")

# Decoded output is produced at most this much at a time, so one compressed chunk can't expand
# into gigabytes before the byte cap sees it.
_DECODE_PIECE = 1024 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) pairs references may reach although private; a port of None allows every port.
AllowHosts = Collection[tuple[str, int | None]]


def parse_allow_hosts(text: str) -> frozenset[tuple[str, int | None]]:
    """``"media.intranet, 10.0.0.5:8080, [fd00::1]:80"`` -> {(host, port or None)}; ValueError if malformed."""
    out: set[tuple[str, int | None]] = set()
    for raw in text.split(","):
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        port: str | None = None
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"allowed host {raw.strip()!r} is not host, host:port or [IPv6]:port")
                port = rest[1:]
        elif entry.count(":") == 1:
            host, port = entry.split(":")
        else:
            host = entry  # a name, an IPv4 address, or a bare IPv6 address (every port)
        if not host or (port is not None and not (port.isdigit() and 0 < int(port) < 65536)):
            raise ValueError(f"allowed host {raw.strip()!r} is not host, host:port or [IPv6]:port")
        out.add((host, int(port) if port is not None else None))
    return frozenset(out)


def _allowed(allow: AllowHosts, host: str, port: int) -> bool:
    return bool(allow) and ((host, port) in allow or (host, None) in allow)


def parse_ip_host(host: str) -> IPAddress | None:
    """The address a URL host names literally, in any spelling C's inet_aton accepts, else None.

    ``2130706433``, ``0x7f000001``, ``0177.0.0.1`` and ``127.1`` all mean 127.0.0.1 to the
    resolver, so they must mean it to the guard too.
    """
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        try:
            if part.lower().startswith("0x"):
                values.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                values.append(int(part, 8))
            else:
                values.append(int(part, 10) if part.isdigit() else -1)
        except ValueError:
            return None
        if values[-1] < 0:
            return None
    # The last part fills all the bytes the earlier parts leave (inet_aton's a, a.b, a.b.c forms).
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for v in head:
        number = number << 8 | v
    number = number << (8 * (4 - len(head))) | last
    return ipaddress.IPv4Address(number)


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched from (e.g. "loopback"), or None if it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        # Forms that carry an IPv4 address inside: judge the IPv4 address.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and ip.teredo is not None:
            embedded = ip.teredo[1]
        if embedded is not None:
            return forbidden_reason(embedded)
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local (cloud metadata)", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("shared/CGNAT (cloud metadata)", isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT),
        ("not globally routable", not ip.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def check_url_host(url: str, field: str, allow: AllowHosts = frozenset()) -> None:
    """Cheap submit-time check (no DNS): refuse bad schemes, local names and literal non-public IPs
    (except hosts the operator allowed)."""
    if url.startswith("data:") or url.lower().startswith("oss://"):
        return
    _scheme, host, port = _split(url, field)
    if not _allowed(allow, host, port):
        _check_literal(host, field)


def _split(url: str, field: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or ``InvalidURL``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidURL(f"{field}: {url[:200]!r} is not a valid URL.", param=field) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidURL(f"{field}: URL scheme {scheme or '(none)'!r} is not supported; use HTTP or HTTPS.",
                         param=field)
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise InvalidURL(f"{field}: {url[:200]!r} has no host.", param=field)
    return scheme, host, port or (443 if scheme == "https" else 80)


def _check_literal(host: str, field: str) -> IPAddress | None:
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        raise InvalidURL(f"{field}: host {host!r} is a local name; references must be public URLs.", param=field)
    ip = parse_ip_host(host)
    if ip is not None and (reason := forbidden_reason(ip)):
        raise InvalidURL(f"{field}: address {ip} is {reason}; references must be public URLs.", param=field)
    return ip


@dataclass
class _Hop:
    url: str  # the URL with the checked IP in place of the host name
    headers: dict[str, str]
    extensions: dict[str, object]


class Fetcher:
    """Fetches references into ``cache_dir`` (one file per source, named by its SHA-256)."""

    def __init__(self, cache_dir: Path, *, allow_private: bool, max_seconds: float, connect_seconds: float,
                 resolve_oss: Callable[[str], Path] | None = None,
                 transport: httpx.BaseTransport | None = None, allow_hosts: AllowHosts = frozenset()) -> None:
        self.cache_dir = cache_dir
        self.allow_private = allow_private
        self.allow_hosts = allow_hosts
        self.max_seconds = max_seconds
        self.connect_seconds = connect_seconds
        self.resolve_oss = resolve_oss
        self.transport = transport
        cache_dir.mkdir(parents=True, exist_ok=True)

    def fetch(self, source: str, *, max_bytes: int, field: str) -> Path:
        """A local path holding ``source``'s bytes (at most ``max_bytes`` of them)."""
        if source.startswith("data:"):
            return self._fetch_data(source, max_bytes, field)
        if source.lower().startswith("oss://"):
            if self.resolve_oss is None:
                raise InvalidURL(f"{field}: oss:// URLs are not accepted by this server.", param=field)
            path = self.resolve_oss(source)
            self._check_size(path.stat().st_size, max_bytes, field)
            return path
        return self._fetch_http(source, max_bytes, field)

    # -- data: URIs -------------------------------------------------------------------------

    def _fetch_data(self, source: str, max_bytes: int, field: str) -> Path:
        header, comma, payload = source.partition(",")
        if not comma or not header.lower().endswith(";base64"):
            raise InvalidURL(f"{field}: a data URI must have the form data:{{MIME_type}};base64,{{data}}.",
                             param=field)
        # Refuse from the encoded length before allocating the decoded bytes.
        self._check_size(len(payload) * 3 // 4 - 2, max_bytes, field)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidURL(f"{field}: the base64 data is not valid base64.", param=field) from None
        self._check_size(len(data), max_bytes, field)
        final = self._cache_path(source)
        if not final.exists():
            self._write_atomic(final, iter([data]))
        return final

    # -- http(s) ----------------------------------------------------------------------------

    def _fetch_http(self, url: str, max_bytes: int, field: str) -> Path:
        _scheme, host, port = _split(url, field)
        if not self.allow_private and not _allowed(self.allow_hosts, host, port):
            _check_literal(host, field)  # a cache hit must not bypass the guard
        final = self._cache_path(url)
        if final.exists():
            self._check_size(final.stat().st_size, max_bytes, field)
            return final
        deadline = time.monotonic() + self.max_seconds
        current = url
        with httpx.Client(transport=self.transport, follow_redirects=False, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                hop = self._prepare(current, field, deadline)
                try:
                    with client.stream("GET", hop.url, headers=hop.headers, extensions=hop.extensions) as resp:
                        if resp.status_code in _REDIRECTS and "location" in resp.headers:
                            current = urljoin(current, resp.headers["location"])
                            continue
                        if resp.status_code != 200:
                            raise InputDownloadFailed(f"{field}: the server answered HTTP {resp.status_code} "
                                                      f"{resp.reason_phrase}.".rstrip(" ."), param=field)
                        length = resp.headers.get("content-length", "")
                        if length.isdigit():
                            self._check_size(int(length), max_bytes, field)
                        encoding = resp.headers.get("content-encoding", "identity").strip().lower()
                        raw: Iterable[bytes] = resp.iter_raw()
                        if resp.is_stream_consumed:  # built in memory (a test transport): read and decoded
                            raw, encoding = [resp.content], "identity"
                        chunks = self._stream(_decode(raw, encoding, field),
                                              hop.extensions["timeout"], max_bytes, field, deadline)
                        self._write_atomic(final, chunks)
                        return final
                except httpx.TimeoutException:
                    raise self._timeout(field, deadline) from None
                except httpx.RemoteProtocolError as exc:
                    # httpx parses every Location, followed or not, and refuses spellings it won't
                    # read (an octal IPv4 such as 0177.0.0.1): a redirect to a URL never fetched.
                    if str(exc).startswith("Invalid URL in location header"):
                        raise InvalidURL(f"{field}: the server redirected to an invalid URL ({exc}).",
                                         param=field) from None
                    raise InputDownloadFailed(f"{field}: the download failed ({type(exc).__name__}: {exc}).",
                                              param=field) from None
                except httpx.HTTPError as exc:
                    raise InputDownloadFailed(f"{field}: the download failed ({type(exc).__name__}: {exc}).",
                                              param=field) from None
        raise InputDownloadFailed(f"{field}: more than {MAX_REDIRECTS} redirects.", param=field)

    def _prepare(self, url: str, field: str, deadline: float) -> _Hop:
        """Check one hop's URL and address; build the request that connects to the checked IP."""
        scheme, host, port = _split(url, field)
        trusted = self.allow_private or _allowed(self.allow_hosts, host, port)
        ip = parse_ip_host(host) if trusted else _check_literal(host, field)
        if ip is None:
            ip = self._resolve(host, port, field, deadline, check=not trusted)
        parts = urlsplit(url)
        ip_host = f"[{ip}]" if ip.version == 6 else str(ip)
        target = f"{scheme}://{ip_host}:{port}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
        default_port = port == (443 if scheme == "https" else 80)
        headers = {"Host": host if default_port else f"{host}:{port}", "User-Agent": _USER_AGENT,
                   "Accept-Encoding": "identity"}
        if parts.username is not None:
            token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        remaining = max(0.001, deadline - time.monotonic())
        # httpcore reads this dict on every socket read, so _stream can shrink "read" to what is
        # left of the total budget; a stalled server then can't outlast the deadline.
        timeouts = {"connect": min(self.connect_seconds, remaining), "read": remaining, "write": remaining,
                    "pool": remaining}
        extensions: dict[str, object] = {"timeout": timeouts}
        if scheme == "https" and parse_ip_host(host) is None:
            extensions["sni_hostname"] = host  # TLS: SNI and certificate checked against the name
        return _Hop(target, headers, extensions)

    def _resolve(self, host: str, port: int, field: str, deadline: float, *, check: bool) -> IPAddress:
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidURL(f"{field}: host {host!r} is not a valid domain name.", param=field) from None
        budget = max(0.001, min(self.connect_seconds, deadline - time.monotonic()))
        future = _DNS_POOL.submit(socket.getaddrinfo, ascii_host, port, type=socket.SOCK_STREAM)
        try:
            infos = future.result(timeout=budget)
        except concurrent.futures.TimeoutError:
            raise InputDownloadFailed(f"{field}: resolving {host!r} timed out.", param=field) from None
        except (OSError, UnicodeError) as exc:
            raise InputDownloadFailed(f"{field}: host {host!r} cannot be resolved ({exc}).", param=field) from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            raise InputDownloadFailed(f"{field}: host {host!r} has no address.", param=field)
        if check:
            # One bad address is enough to refuse: a mixed answer is how rebinding attacks hedge.
            for ip in addresses:
                if reason := forbidden_reason(ip):
                    raise InvalidURL(f"{field}: host {host!r} resolves to {ip}, which is {reason}; references "
                                     f"must be public URLs.", param=field)
        return addresses[0]

    def _stream(self, decoded: Iterable[bytes], timeouts: object, max_bytes: int, field: str,
                deadline: float) -> Iterator[bytes]:
        got = 0
        # Chunks as they arrive (no re-chunking, which would wait for a full chunk before the
        # deadline is checked); decoded, so the cap counts what lands on disk.
        for chunk in decoded:
            got += len(chunk)
            self._check_size(got, max_bytes, field)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout(field, deadline)
            if isinstance(timeouts, dict):
                timeouts["read"] = remaining
            yield chunk

    def _timeout(self, field: str, deadline: float) -> InputDownloadFailed:
        if time.monotonic() >= deadline - 0.01:
            return InputDownloadFailed(f"{field}: the download took longer than {self.max_seconds:g} s.",
                                       param=field)
        return InputDownloadFailed(f"{field}: the server did not answer in time.", param=field)

    # -- files ------------------------------------------------------------------------------

    def _cache_path(self, source: str) -> Path:
        return self.cache_dir / hashlib.sha256(source.encode()).hexdigest()

    def _write_atomic(self, final: Path, chunks: Iterator[bytes]) -> None:
        """Write to a temp file beside ``final`` and rename: readers never see half a file."""
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _check_size(size: int, max_bytes: int, field: str) -> None:
        if size > max_bytes:
            raise InputDownloadFailed(f"{field}: the file is larger than the {_human(max_bytes)} limit.",
                                      param=field)


def _decode(raw: Iterable[bytes], encoding: str, field: str) -> Iterator[bytes]:
    """Undo ``Content-Encoding`` (we ask for identity; some servers send gzip anyway), at most
    ``_DECODE_PIECE`` bytes of output per step: a small compressed chunk can hold gigabytes."""
    if encoding in ("", "identity"):
        yield from raw
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise InputDownloadFailed(f"{field}: the server sent the file with Content-Encoding {encoding[:40]!r}; "
                                  f"only identity, gzip and deflate are accepted.", param=field)
    # gzip: a gzip header; deflate: a zlib header, though some servers send raw deflate (tried next).
    candidates = [zlib.MAX_WBITS | 16] if encoding != "deflate" else [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    inflater = zlib.decompressobj(candidates.pop(0))
    started = False
    try:
        for chunk in raw:
            data = chunk
            while data:
                try:
                    out = inflater.decompress(data, _DECODE_PIECE)
                except zlib.error:
                    if started or not candidates:
                        raise
                    inflater, data = zlib.decompressobj(candidates.pop(0)), chunk
                    continue
                started = True
                data = inflater.unconsumed_tail
                if out:
                    yield out
        # All input was fed; what zlib still holds is at most its 32 KiB window.
        if tail := inflater.flush():
            yield tail
    except zlib.error as exc:
        raise InputDownloadFailed(f"{field}: the {encoding} body is corrupt ({exc}).", param=field) from None


def _human(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB" if n >= 1024 * 1024 else f"{n} bytes"
