"""Webhooks: a signed POST to a task's ``callback_url`` on every status change (openr2v extension).

    TaskService ─listener(task)─► WebhookDispatcher.on_change   renders the body and enqueues: O(1),
                                          │                     so the worker is never held up
            delivery threads ◄────────────┘
              POST (X-OpenR2V-Signature: t=<ts>,v1=<hmac>) ─► 2xx: done
                                                          └─► else: retry after backoff·2^n, up to
                                                              max_attempts, then drop (logged)

Events of one task are delivered in order (PENDING before RUNNING before SUCCEEDED): only the
oldest undelivered event of a task is ever in flight. Deliveries live in memory: a restart
drops those still queued (the task itself is always in the store, for polling).

The URL is chosen by the client and called by the server, so it passes the same SSRF guard as
references: checked at submit, and at each delivery its host is resolved, every address must be
public, and the connection goes to the checked address (no DNS rebinding, no redirects).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import ipaddress
import itertools
import json
import logging
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from openr2v.domain.task import Task
from openr2v.errors import InvalidURL
from openr2v.media.fetch import check_url_host, forbidden_reason, parse_ip_host

__all__ = ["SIGNATURE_HEADER", "Delivery", "WebhookDispatcher", "derive_secret", "sign"]

log = logging.getLogger("openr2v.webhooks")

SIGNATURE_HEADER = "X-OpenR2V-Signature"
EVENT = "task.status"
MAX_BACKOFF_SECONDS = 600.0
_USER_AGENT = "openr2v-webhooks/0.1"


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """``t=<ts>,v1=<hex HMAC-SHA256 over "<ts>." + body>``: the timestamp is signed, so it can't be replayed late."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def derive_secret(server_secret: bytes, owner: str) -> str:
    """Each key owner's own signing secret: receivers can't learn the server secret or another owner's."""
    return "whsec_" + hmac.new(server_secret, f"openr2v-webhook:{owner}".encode(), hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    id: str
    task_id: str
    owner: str
    url: str
    body: bytes
    status: str
    attempts: int = 0
    last_error: str = ""


@dataclass(order=True)
class _Due:
    when: float
    seq: int
    delivery: Delivery = field(compare=False)


Resolver = Callable[[str, int], list[str]]


def _getaddrinfo(host: str, port: int) -> list[str]:
    return [str(info[4][0]).split("%")[0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


class WebhookDispatcher:
    def __init__(self, *, render: Callable[[Task], dict[str, Any]], secret_for: Callable[[str], str],
                 allow_private: bool, max_attempts: int = 6, backoff_seconds: float = 2.0,
                 timeout_seconds: float = 10.0, threads: int = 2, transport: httpx.BaseTransport | None = None,
                 resolve: Resolver = _getaddrinfo, clock: Callable[[], float] = time.time) -> None:
        self.render = render
        self.secret_for = secret_for
        self.allow_private = allow_private
        self.max_attempts = max(1, max_attempts)
        self.backoff_seconds = backoff_seconds
        self.timeout_seconds = timeout_seconds
        self.resolve = resolve
        self.clock = clock
        self._threads_wanted = max(1, threads)
        self._http = httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
        self._cv = threading.Condition()
        self._heap: list[_Due] = []
        self._chains: dict[str, deque[Delivery]] = {}  # task id -> its undelivered events, oldest first
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.delivered = 0
        self.dropped = 0

    # -- producer side (called by the task service, on the worker's thread) -----------------

    def on_change(self, task: Task) -> None:
        url = task.request.extensions.get("callback_url")
        if not url:
            return
        payload = {"event": EVENT, **self.render(task)}
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        delivery = Delivery(id=str(uuid.uuid4()), task_id=task.id, owner=task.owner, url=str(url), body=body,
                            status=task.status.value)
        with self._cv:
            chain = self._chains.setdefault(task.id, deque())
            chain.append(delivery)
            if len(chain) == 1:
                self._schedule(delivery, self.clock())

    def _schedule(self, delivery: Delivery, when: float) -> None:
        heapq.heappush(self._heap, _Due(when, next(self._seq), delivery))
        self._cv.notify()

    # -- delivery threads -------------------------------------------------------------------

    def start(self) -> None:
        for i in range(self._threads_wanted):
            t = threading.Thread(target=self._loop, name=f"openr2v-webhooks-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._http.close()

    def pending(self) -> int:
        with self._cv:
            return sum(len(c) for c in self._chains.values())

    def _next_due(self) -> Delivery | None:
        with self._cv:
            while not self._stop.is_set():
                now = self.clock()
                if self._heap and self._heap[0].when <= now:
                    return heapq.heappop(self._heap).delivery
                wait = min(1.0, self._heap[0].when - now) if self._heap else 1.0
                self._cv.wait(max(0.01, wait))
        return None

    def _loop(self) -> None:
        while (delivery := self._next_due()) is not None:
            try:
                ok = self.deliver(delivery)
            except InvalidURL as e:  # the guard refused the target: retrying cannot help
                delivery.last_error = e.message
                delivery.attempts = self.max_attempts
                ok = False
            except Exception as e:  # a bug here must not kill the thread
                log.exception("webhook delivery %s crashed", delivery.id)
                delivery.last_error = repr(e)
                ok = False
            self._settle(delivery, ok)

    def _settle(self, delivery: Delivery, ok: bool) -> None:
        with self._cv:
            if not ok and delivery.attempts < self.max_attempts:
                delay = min(MAX_BACKOFF_SECONDS, self.backoff_seconds * 2 ** (delivery.attempts - 1))
                self._schedule(delivery, self.clock() + delay)
                return
            if ok:
                self.delivered += 1
            else:
                self.dropped += 1
                log.warning("webhook for task %s (%s) dropped after %d attempts: %s", delivery.task_id,
                            delivery.status, delivery.attempts, delivery.last_error)
            chain = self._chains.get(delivery.task_id)
            if chain and chain[0] is delivery:
                chain.popleft()
            if chain:
                self._schedule(chain[0], self.clock())
            else:
                self._chains.pop(delivery.task_id, None)

    def deliver(self, delivery: Delivery) -> bool:
        """One attempt: True on a 2xx answer."""
        delivery.attempts += 1
        url, headers, extensions = self._target(delivery.url)
        timestamp = int(self.clock())
        headers.update({
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            SIGNATURE_HEADER: sign(self.secret_for(delivery.owner).encode(), delivery.body, timestamp),
            "X-OpenR2V-Event": EVENT,
            "X-OpenR2V-Delivery": delivery.id,
            "X-OpenR2V-Attempt": str(delivery.attempts),
        })
        try:
            resp = self._http.post(url, content=delivery.body, headers=headers, extensions=extensions,
                                   timeout=self.timeout_seconds)
        except httpx.HTTPError as e:
            delivery.last_error = f"{type(e).__name__}: {e}"
            return False
        if 200 <= resp.status_code < 300:
            return True
        delivery.last_error = f"HTTP {resp.status_code}"
        return False

    def _target(self, url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """The URL to connect to (the checked IP), the Host header, and TLS's expected name."""
        if self.allow_private:
            return url, {}, {}
        field_name = "parameters.callback_url"
        check_url_host(url, field_name)  # scheme, local names, literal non-public addresses
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        scheme = parts.scheme.lower()
        port = parts.port or (443 if scheme == "https" else 80)
        ip = parse_ip_host(host)
        if ip is None:
            try:
                addresses = [ipaddress.ip_address(a) for a in self.resolve(host.encode("idna").decode(), port)]
            except (OSError, UnicodeError, ValueError) as e:
                raise InvalidURL(f"{field_name}: host {host!r} cannot be resolved ({e}).", param=field_name) from None
            if not addresses:
                raise InvalidURL(f"{field_name}: host {host!r} has no address.", param=field_name)
            for a in addresses:  # one bad address is enough: mixed answers are how rebinding hedges
                if reason := forbidden_reason(a):
                    raise InvalidURL(f"{field_name}: host {host!r} resolves to {a}, which is {reason}.",
                                     param=field_name)
            ip = addresses[0]
        ip_host = f"[{ip}]" if ip.version == 6 else str(ip)
        target = f"{scheme}://{ip_host}:{port}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
        default_port = port == (443 if scheme == "https" else 80)
        headers = {"Host": host if default_port else f"{host}:{port}"}
        extensions: dict[str, Any] = {"sni_hostname": host} if scheme == "https" and parse_ip_host(host) is None else {}
        return target, headers, extensions
