"""The embedded default's queue: worker threads in the API process, the store as the truth.

``notify`` wakes a worker; a periodic sweep re-reads PENDING tasks from the store, so a lost
notification only delays a task, never loses it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["LocalQueue"]

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
