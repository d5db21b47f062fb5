"""Queues carry wake-ups; the store is the truth. Two adapters with one face (``notify``):

- ``LocalQueue`` (embedded default): worker threads in this process. ``notify`` wakes one; a
  periodic sweep re-reads PENDING tasks from the store, so a lost notification only delays a
  task, never loses it (``openr2v worker`` with ``queue=local`` lives on that sweep alone).
- ``CeleryQueue`` (scale-out, ``openr2v.tasks.celery_app``): a message per wake-up on a Celery
  broker (Redis), whose id is the task id, so ``revoke`` reaches it. A worker claims the task
  with a conditional UPDATE, so a duplicate or stale message is a no-op.

``in_flight`` tells the reaper which PENDING tasks still have a wake-up waiting; the others are
published again (a Redis that keeps nothing on disk forgets every message when it restarts).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["CeleryQueue", "LocalQueue"]

log = logging.getLogger("openr2v.queue")


class LocalQueue:
    def __init__(self, workers: int, sweep: Callable[[], list[str]] | None = None,
                 sweep_seconds: float = 5.0) -> None:
        self.workers = max(0, workers)  # 0: an API-only node; tasks wait for workers elsewhere
        self._sweep = sweep
        self._sweep_seconds = sweep_seconds
        self._ids: deque[str] = deque()
        self._queued: set[str] = set()
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def notify(self, task_id: str) -> None:
        with self._cv:
            if task_id not in self._queued:
                self._queued.add(task_id)
                self._ids.append(task_id)
                self._cv.notify()

    def in_flight(self, task_ids: list[str]) -> set[str]:
        with self._cv:
            return {i for i in task_ids if i in self._queued}

    def start(self, handle: Callable[[str], None]) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, args=(handle,), name=f"openr2v-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        if self._sweep is not None and self.workers:
            t = threading.Thread(target=self._sweeper, name="openr2v-sweeper", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout)

    def _loop(self, handle: Callable[[str], None]) -> None:
        while not self._stop.is_set():
            with self._cv:
                while not self._ids and not self._stop.is_set():
                    self._cv.wait(1.0)
                if self._stop.is_set():
                    return
                task_id = self._ids.popleft()
                self._queued.discard(task_id)
            try:
                handle(task_id)
            except Exception:  # handle() records failures itself; this is a last resort
                log.exception("worker loop error on task %s", task_id)

    def _sweeper(self) -> None:
        assert self._sweep is not None
        while not self._stop.wait(self._sweep_seconds):
            try:
                for task_id in self._sweep():
                    self.notify(task_id)
            except Exception:
                log.exception("queue sweep failed")


class CeleryQueue:
    """Publishes wake-ups to Celery workers (``openr2v worker``) through a Redis broker.

    Publishing never fails a submit: the task is already in the store, and if the broker is
    down the reaper publishes it again once the broker is back. Beside each message a marker key
    (in the same Redis, so it vanishes with the messages) says a wake-up is waiting; the worker
    deletes it when the message arrives.
    """

    MARKER = "openr2v:queued:"

    def __init__(self, broker_url: str, queue_name: str = "openr2v", *, visibility_timeout: int = 6 * 3600,
                 marker_seconds: int = 300) -> None:
        import redis

        from openr2v.tasks.celery_app import make_celery

        self.queue_name = queue_name
        self.app = make_celery(broker_url, queue_name, visibility_timeout)
        # The marker outliving a message it stands for delays that task by at most this long.
        self._marker_seconds = marker_seconds
        self._redis = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=3)

    def notify(self, task_id: str) -> None:
        from openr2v.tasks.celery_app import TASK_NAME

        try:
            self.app.send_task(TASK_NAME, args=[task_id], task_id=task_id, queue=self.queue_name)
        except Exception as e:  # broker down: the reaper publishes it again later
            log.warning("could not publish task %s (%s: %s); the reaper will retry", task_id, type(e).__name__, e)
            return
        try:
            self._redis.set(self.MARKER + task_id, b"1", ex=self._marker_seconds)
        except Exception:  # no marker: at worst one duplicate message, which is a no-op
            log.debug("could not mark task %s as queued", task_id, exc_info=True)

    def taken(self, task_id: str) -> None:
        """A worker got the message for ``task_id``."""
        try:
            self._redis.delete(self.MARKER + task_id)
        except Exception:
            log.debug("could not unmark task %s", task_id, exc_info=True)

    def in_flight(self, task_ids: list[str]) -> set[str]:
        try:
            pipe = self._redis.pipeline(transaction=False)
            for task_id in task_ids:
                pipe.exists(self.MARKER + task_id)
            return {i for i, n in zip(task_ids, pipe.execute(), strict=True) if n}
        except Exception:  # broker unreachable: publishing again would fail too
            return set(task_ids)

    def revoke(self, task_id: str) -> None:
        try:
            self.app.control.revoke(task_id)
        except Exception as e:
            log.warning("could not revoke task %s (%s); its worker will skip it anyway", task_id, e)
        self.taken(task_id)

    def start(self, handle: Callable[[str], None]) -> None:
        """Nothing runs here: an API node never renders in this mode."""

    def stop(self, timeout: float = 5.0) -> None:
        self._redis.close()
        self.app.close()
