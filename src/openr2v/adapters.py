"""Picks the storage and queue adapters that Settings name (the task store picks itself by URL).

Embedded default: local directory + in-process threads. Scale-out: ``storage_url=s3://...`` and
``queue=celery`` (docs/deployment.md). The rest of the code sees one interface for each.
"""

from __future__ import annotations

from openr2v.config import Settings
from openr2v.storage import LocalStorage, Storage
from openr2v.tasks.queue import CeleryQueue, LocalQueue
from openr2v.tasks.store import TaskStore

__all__ = ["open_queue", "open_storage"]

QUEUES = ("local", "celery")


def open_storage(settings: Settings, secret: bytes) -> Storage:
    url = settings.storage_url
    if not url or url.startswith("file:"):
        return LocalStorage(settings.data_dir / "objects", secret)
    if url.startswith("s3://"):
        from openr2v.storage_s3 import S3Storage

        return S3Storage(url, settings.data_dir / "s3-cache", endpoint_url=settings.s3_endpoint_url,
                         public_endpoint_url=settings.s3_public_endpoint_url, region=settings.s3_region,
                         access_key_id=settings.s3_access_key_id, secret_access_key=settings.s3_secret_access_key,
                         addressing_style=settings.s3_addressing_style, cache_bytes=settings.storage_cache_bytes)
    raise ValueError(f"OPENR2V_STORAGE_URL {url!r}: use s3://bucket/prefix, or leave it unset for local files")


def open_queue(settings: Settings, store: TaskStore) -> LocalQueue | CeleryQueue:
    if settings.queue == "local":
        return LocalQueue(settings.render_threads, sweep=lambda: store.pending_ids(limit=256))
    if settings.queue == "celery":
        if not settings.broker_url:
            raise ValueError("OPENR2V_QUEUE=celery needs OPENR2V_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
        return CeleryQueue(settings.broker_url, settings.celery_queue,
                           visibility_timeout=settings.visibility_timeout_seconds,
                           marker_seconds=int(max(300.0, 10 * settings.requeue_pending_seconds)))
    raise ValueError(f"OPENR2V_QUEUE {settings.queue!r}: use one of {', '.join(QUEUES)}")
