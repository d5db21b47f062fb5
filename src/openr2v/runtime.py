"""Wires store, storage, queue, engines and workers from Settings.

The API app, the CLI's in-process mode, ``openr2v worker`` and the tests build the same
``Runtime``; Settings pick the adapters (openr2v.adapters): the embedded default (SQLite, local
files, in-process threads) or scale-out (PostgreSQL, S3, Celery).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openr2v.adapters import open_queue, open_storage
from openr2v.config import Settings
from openr2v.domain.task import Task
from openr2v.engines import engine_resolver
from openr2v.errors import InvalidURL
from openr2v.keys import KeyRing, owner_id
from openr2v.media.fetch import Fetcher, check_url_host, parse_allow_hosts
from openr2v.storage import Storage
from openr2v.tasks.moderation import moderator_from_settings
from openr2v.tasks.prompt_extend import rewriter_from_settings
from openr2v.tasks.queue import CeleryQueue, LocalQueue
from openr2v.tasks.quotas import QuotaBook, parse_quotas
from openr2v.tasks.reaper import Reaper
from openr2v.tasks.runner import Runner
from openr2v.tasks.service import ServiceConfig, TaskService
from openr2v.tasks.store import TaskStore
from openr2v.tasks.webhooks import SigningKey, WebhookDispatcher, announcer, derive_key

__all__ = ["Runtime", "WebhookBody", "build_runtime"]

# (task, the URL of its video or None) -> the body a webhook carries; the API layer decides its shape.
WebhookBody = Callable[[Task, str | None], dict[str, Any]]

log = logging.getLogger("openr2v")


def _secret(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.data_dir / "secret_key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


@dataclass
class Runtime:
    settings: Settings
    keys: KeyRing
    created_key: str | None
    store: TaskStore
    storage: Storage
    service: TaskService
    queue: LocalQueue | CeleryQueue
    secret: bytes
    runner: Runner = field(init=False)  # built once the runtime exists: its fetcher resolves our uploads
    webhooks: WebhookDispatcher | None = None
    _janitor_stop: threading.Event = field(default_factory=threading.Event)
    _janitor: threading.Thread | None = None
    reaper: Reaper | None = None

    def start(self) -> None:
        """An API node (with in-process workers when ``queue=local``)."""
        if self.settings.queue == "local" and self.store.url.startswith("sqlite"):
            # Embedded default: one process owns the store, so whatever is RUNNING was ours.
            # Elsewhere another node may be rendering it: leases decide (the reaper).
            self.service.recover()
        if self.webhooks is not None:
            self.webhooks.start()
        self.queue.start(self.runner.handle)
        self._janitor = threading.Thread(target=self._janitor_loop, name="openr2v-janitor", daemon=True)
        self._janitor.start()
        self._start_reaper()

    def start_worker(self) -> None:
        """A worker node (``openr2v worker``): renders; with Celery the caller runs the consumer."""
        if self.webhooks is not None:
            self.webhooks.start()
        if isinstance(self.queue, LocalQueue):
            self.queue.start(self.runner.handle)
        self._start_reaper()

    def _start_reaper(self) -> None:
        self.reaper = Reaper(self.service, self.settings.reaper_interval_seconds)
        self.reaper.start()

    def stop(self) -> None:
        self._janitor_stop.set()
        if self.reaper is not None:
            self.reaper.stop()
        self.runner.leases.stop()
        self.queue.stop()
        if self.webhooks is not None:
            self.webhooks.stop()

    def _janitor_loop(self) -> None:
        interval = max(1.0, min(60.0, self.settings.retention_seconds / 4))
        while not self._janitor_stop.wait(interval):
            try:
                self.service.purge()
            except Exception:
                log.exception("purge failed")

    def check_url(self, url: str, field: str) -> None:
        """The submit-time guard of a URL a client names (no DNS): InvalidURL for a bad scheme, a local name or a
        literal non-public address, unless private URLs are allowed or the operator allowed the host."""
        if not self.settings.allow_private_urls:
            check_url_host(url, field, self.runner.fetcher.allow_hosts)

    def resolve_upload(self, source: str) -> Path:
        """oss://<key> -> the uploaded file, if it exists and has not expired."""
        key = source.removeprefix("oss://")
        row = self.store.get_upload(key)
        live = row is not None and row.expires_at > time.time()
        path = self.storage.path(f"uploads/{key}") if live else None  # S3: a download, so only when live
        if path is None:
            raise InvalidURL(f"{source[:200]} does not name a live upload.")
        return path


def build_runtime(settings: Settings, *, webhook_body: WebhookBody) -> Runtime:
    """The runtime of ``settings``: storage and the task service first, then what renders (which needs the
    runtime to resolve uploads) and the webhooks (which carry ``webhook_body`` of a task)."""
    rt = _core(settings)
    fetcher = Fetcher(settings.data_dir / "cache", allow_private=settings.allow_private_urls,
                      max_seconds=settings.fetch_max_seconds, connect_seconds=settings.fetch_connect_seconds,
                      resolve_oss=rt.resolve_upload, allow_hosts=parse_allow_hosts(settings.fetch_allow_hosts))
    rt.runner = Runner(rt.service, fetcher, engine_resolver(settings), settings.data_dir / "work",
                       prompt_rewriter=rewriter_from_settings(settings))
    rt.webhooks = _webhooks(settings, rt.service, rt.secret, webhook_body)
    return rt


def _core(settings: Settings) -> Runtime:
    """Keys, secret, store, storage, queue and the task service; no runner yet."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keys, created = KeyRing.from_settings(settings.api_keys, settings.region, settings.data_dir)
    secret = _secret(settings)
    default_limits, key_limits = parse_quotas(settings.quotas, keys.keys)
    store = TaskStore(settings.resolved_database_url())
    quotas = QuotaBook(store, default_limits, {owner_id(k): v for k, v in key_limits.items()})
    storage = open_storage(settings, secret)
    queue = open_queue(settings, store)
    service = TaskService(store, storage, queue, ServiceConfig(
        retention_seconds=settings.retention_seconds, url_ttl_seconds=settings.url_ttl_seconds,
        max_concurrent_tasks=settings.max_concurrent_tasks,
        submit_rate_per_second=settings.submit_rate_per_second, submit_burst=settings.submit_burst,
        max_attempts=settings.max_attempts, lease_seconds=settings.lease_seconds,
        requeue_pending_seconds=settings.requeue_pending_seconds, upload_ttl_seconds=settings.upload_ttl_seconds),
        moderator=moderator_from_settings(settings), quotas=quotas)
    return Runtime(settings=settings, keys=keys, created_key=created, store=store, storage=storage,
                   service=service, queue=queue, secret=secret)


def _webhooks(settings: Settings, service: TaskService, secret: bytes, body: WebhookBody) -> WebhookDispatcher:
    """Webhooks carry ``body`` of the task, rendered when its status changes and kept in the store's
    outbox until delivered (tasks/webhooks.py)."""

    def render(task: Task) -> dict[str, Any]:
        base = task.request.extensions.get("public_base_url") or settings.public_url
        return body(task, service.video_path(task, base) if base else None)

    configured = SigningKey.configured(settings.webhook_secret) if settings.webhook_secret else None

    def secret_for(owner: str) -> SigningKey:
        return configured or derive_key(secret, owner)

    dispatcher = WebhookDispatcher(
        service.store.outbox, secret_for=secret_for, allow_private=settings.allow_private_urls,
        max_attempts=settings.webhook_max_attempts, backoff_seconds=settings.webhook_backoff_seconds,
        max_backoff_seconds=settings.webhook_max_backoff_seconds, timeout_seconds=settings.webhook_timeout_seconds,
        poll_seconds=settings.webhook_poll_seconds, threads=settings.webhook_threads)
    service.store.announce = announcer(render, service.clock)
    service.store.on_announced = dispatcher.wake
    return dispatcher
