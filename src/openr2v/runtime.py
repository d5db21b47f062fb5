"""Wires the embedded default: store, storage, queue, engines and workers, from Settings.

The API app, the CLI's in-process mode and the tests build the same ``Runtime``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from openr2v.api.auth import KeyRing
from openr2v.config import Settings
from openr2v.engines import engine_resolver
from openr2v.errors import InvalidURL
from openr2v.media.fetch import Fetcher
from openr2v.storage import LocalStorage
from openr2v.tasks.queue import LocalQueue
from openr2v.tasks.service import ServiceConfig, TaskService
from openr2v.tasks.store import TaskStore
from openr2v.tasks.worker import Runner

__all__ = ["Runtime", "build_runtime"]

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
    storage: LocalStorage
    service: TaskService
    queue: LocalQueue
    runner: Runner
    secret: bytes
    _janitor_stop: threading.Event = field(default_factory=threading.Event)
    _janitor: threading.Thread | None = None

    def start(self) -> None:
        self.service.recover()
        self.queue.start(self.runner.handle)
        self._janitor = threading.Thread(target=self._janitor_loop, name="openr2v-janitor", daemon=True)
        self._janitor.start()

    def stop(self) -> None:
        self._janitor_stop.set()
        self.queue.stop()

    def _janitor_loop(self) -> None:
        interval = max(1.0, min(60.0, self.settings.retention_seconds / 4))
        while not self._janitor_stop.wait(interval):
            try:
                self.service.purge()
            except Exception:
                log.exception("purge failed")

    def resolve_upload(self, source: str) -> Path:
        """oss://<key> -> the uploaded file, if it exists and has not expired."""
        key = source.removeprefix("oss://")
        row = self.store.get_upload(key)
        path = self.storage.path(f"uploads/{key}")
        if row is None or path is None or row.expires_at <= time.time():
            raise InvalidURL(f"{source[:200]} does not name a live upload.")
        return path


def build_runtime(settings: Settings) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keys, created = KeyRing.from_settings(settings.api_keys, settings.region, settings.data_dir)
    secret = _secret(settings)
    store = TaskStore(settings.resolved_database_url())
    storage = LocalStorage(settings.data_dir / "objects", secret)
    queue = LocalQueue(settings.workers, sweep=lambda: store.pending_ids(limit=256))
    service = TaskService(store, storage, queue, ServiceConfig(
        retention_seconds=settings.retention_seconds, url_ttl_seconds=settings.url_ttl_seconds,
        max_concurrent_tasks=settings.max_concurrent_tasks,
        submit_rate_per_second=settings.submit_rate_per_second, submit_burst=settings.submit_burst,
        max_attempts=settings.max_attempts))
    rt = Runtime(settings=settings, keys=keys, created_key=created, store=store, storage=storage,
                 service=service, queue=queue, runner=None, secret=secret)  # type: ignore[arg-type]
    fetcher = Fetcher(settings.data_dir / "cache", allow_private=settings.allow_private_urls,
                      max_seconds=settings.fetch_max_seconds, connect_seconds=settings.fetch_connect_seconds,
                      resolve_oss=rt.resolve_upload)
    rt.runner = Runner(service, fetcher, engine_resolver(settings), settings.data_dir / "work")
    return rt
