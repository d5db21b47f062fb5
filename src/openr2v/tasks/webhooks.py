"""Webhooks: a signed POST to a task's ``callback_url`` on every status change (openr2v extension).

    status change ──same transaction──► outbox row (tasks/outbox.py; webhook-id, body, pending)
                                              │
    dispatcher threads on every node ◄────────┘ claim the oldest due event of a task under a lease
      POST (webhook-id, webhook-timestamp, webhook-signature) ─► 2xx: delivered
                                                              └─► else: again after backoff·2^n
                                                                  (capped), up to max_attempts,
                                                                  then dead (listed, redeliverable)

Durable: the rows live in the task store, so a restart or a kill -9 loses nothing; the next
dispatcher to look sends what is due (at least once: a receiver deduplicates on ``webhook-id``,
which is the same on every attempt). Events of one task go out in order. Signatures follow the
Standard Webhooks spec (openr2v/client/webhooks.py); the deprecated ``X-OpenR2V-Signature`` is
sent alongside for one release.

The URL is chosen by the client and called by the server, so it passes the same SSRF guard as
references: checked at submit, and at each delivery its host is resolved, every address must be
public, and the connection goes to the checked address (no DNS rebinding, no redirects).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from openr2v import metrics
from openr2v.client.webhooks import SIGNATURE_HEADER, secret_key, sign, sign_standard
from openr2v.domain.task import Task
from openr2v.errors import InvalidURL
from openr2v.logs import task_context
from openr2v.media.fetch import check_url_host, forbidden_reason, parse_ip_host
from openr2v.tasks.outbox import DEAD, DELIVERED, PENDING, Delivery, Outbox, new_delivery

__all__ = ["SIGNATURE_HEADER", "SigningKey", "WebhookDispatcher", "announcer", "derive_key", "sign"]

log = logging.getLogger("openr2v.webhooks")

EVENT = "task.status"
_USER_AGENT = "openr2v-webhooks/0.1"


@dataclass(frozen=True)
class SigningKey:
    """A key owner's webhook secret: ``key`` signs the standard headers, ``legacy`` X-OpenR2V-Signature."""

    key: bytes
    legacy: bytes

    @property
    def secret(self) -> str:
        """As Standard Webhooks libraries take it: ``whsec_<base64 key>``."""
        return "whsec_" + base64.b64encode(self.key).decode()

    @classmethod
    def configured(cls, secret: str) -> SigningKey:
        """OPENR2V_WEBHOOK_SECRET: ``whsec_<base64>`` (its decoded bytes), or any string (its UTF-8 bytes)."""
        return cls(key=secret_key(secret), legacy=secret.encode())


def derive_key(server_secret: bytes, owner: str) -> SigningKey:
    """Each key owner's own secret: receivers can't learn the server secret or another owner's. The
    legacy header keeps the hex form earlier releases printed, so receivers set up then still verify."""
    digest = hmac.new(server_secret, f"openr2v-webhook:{owner}".encode(), hashlib.sha256).digest()
    return SigningKey(key=digest, legacy=("whsec_" + digest.hex()).encode())


def announcer(render: Callable[[Task], dict[str, Any]], clock: Callable[[], float] = time.time
              ) -> Callable[[Task], dict[str, Any] | None]:
    """The store's ``announce``: the outbox row of a status change, for tasks with a ``callback_url``."""

    def announce(task: Task) -> dict[str, Any] | None:
        url = task.request.extensions.get("callback_url")
        if not url:
            return None
        body = json.dumps({"event": EVENT, **render(task)}, separators=(",", ":"), ensure_ascii=False)
        return new_delivery(task.id, task.owner, str(url), task.status.value, body, clock())

    return announce


Resolver = Callable[[str, int], list[str]]


def _getaddrinfo(host: str, port: int) -> list[str]:
    return [str(info[4][0]).split("%")[0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


class WebhookDispatcher:
    """Sends the outbox's due deliveries from ``threads`` threads; every node may run one."""

    def __init__(self, outbox: Outbox, *, secret_for: Callable[[str], SigningKey], allow_private: bool,
                 max_attempts: int = 6, backoff_seconds: float = 2.0, max_backoff_seconds: float = 600.0,
                 timeout_seconds: float = 10.0, poll_seconds: float = 1.0, threads: int = 2,
                 transport: httpx.BaseTransport | None = None, resolve: Resolver = _getaddrinfo,
                 clock: Callable[[], float] = time.time) -> None:
        self.outbox = outbox
        self.secret_for = secret_for
        self.allow_private = allow_private
        self.max_attempts = max(1, max_attempts)
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds
        # Longer than any one attempt can take, so a lease only runs out when its sender is gone.
        self.lease_seconds = 2 * timeout_seconds + 30
        self.resolve = resolve
        self.clock = clock
        self._threads_wanted = max(1, threads)
        self._http = httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def wake(self) -> None:
        """Something was written to the outbox: look now rather than at the next poll."""
        with self._wake:
            self._wake.notify_all()

    def start(self) -> None:
        for i in range(self._threads_wanted):
            t = threading.Thread(target=self._loop, name=f"openr2v-webhooks-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.wake()
        for t in self._threads:
            t.join(timeout)
        self._http.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception as e:  # the store away for a moment: try again at the next poll
                log.warning("webhook dispatcher: %s: %s", type(e).__name__, e)
                worked = False
            if not worked:
                with self._wake:
                    if not self._stop.is_set():
                        self._wake.wait(self.poll_seconds)

    def run_once(self) -> bool:
        """Claim and send one due delivery; False if none was due."""
        delivery = self.outbox.claim_due(self.clock(), self.lease_seconds)
        if delivery is None:
            return False
        permanent = False
        try:
            error = self.deliver(delivery)
        except InvalidURL as e:  # the guard refused the target: retrying cannot help
            error, permanent = e.message, True
        except Exception as e:  # a bug here must not kill the thread
            log.exception("webhook delivery %s crashed", delivery.id)
            error = repr(e)
        self._settle(delivery, error, permanent)
        return True

    def _settle(self, d: Delivery, error: str | None, permanent: bool) -> None:
        now = self.clock()
        if error is None:
            outcome = DELIVERED
            settled = self.outbox.settle(d, now, state=DELIVERED)
        elif permanent or d.attempts >= self.max_attempts:
            outcome = DEAD
            settled = self.outbox.settle(d, now, state=DEAD, error=error)
            log.warning("webhook %s for task %s (%s) dead after %d attempts: %s", d.id, d.task_id, d.event,
                        d.attempts, error)
        else:
            outcome = "failed"
            delay = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** min(d.attempts - 1, 40))
            settled = self.outbox.settle(d, now, state=PENDING, next_attempt_at=now + delay, error=error)
        metrics.WEBHOOK_ATTEMPTS.labels(outcome).inc()
        if not settled:
            log.warning("webhook %s attempt %d outlived its lease; another dispatcher took it", d.id, d.attempts)

    def deliver(self, delivery: Delivery) -> str | None:
        """One attempt: None on a 2xx answer, else what went wrong."""
        url, headers, extensions = self._target(delivery.url)
        timestamp = int(self.clock())
        body = delivery.body.encode()
        key = self.secret_for(delivery.owner)
        headers.update({
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_standard(key.key, delivery.id, timestamp, body),
            SIGNATURE_HEADER: sign(key.legacy, body, timestamp),  # deprecated
            "X-OpenR2V-Event": EVENT,
            "X-OpenR2V-Delivery": delivery.id,
            "X-OpenR2V-Attempt": str(delivery.attempts),
        })
        with task_context(delivery.task_id):
            try:
                resp = self._http.post(url, content=body, headers=headers, extensions=extensions,
                                       timeout=self.timeout_seconds)
            except httpx.HTTPError as e:
                return f"{type(e).__name__}: {e}"
        if 200 <= resp.status_code < 300:
            return None
        return f"HTTP {resp.status_code}"

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
