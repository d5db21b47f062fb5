"""Worker leases: a RUNNING task's worker renews ``heartbeat_at`` while it renders.

One thread per worker process renews every lease it holds (a third of ``lease_seconds`` apart).
A renewal that finds the task no longer RUNNING in this attempt (canceled, or taken for dead by
a reaper and re-queued) marks the lease lost; the render checks that between stages and stops.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Protocol

__all__ = ["Leases", "worker_name"]

log = logging.getLogger("openr2v.worker")


class _Renewer(Protocol):
    def heartbeat(self, leases: dict[str, int]) -> set[str]: ...


def worker_name() -> str:
    """Who holds a lease, as recorded on the task (for operators): host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Leases:
    def __init__(self, service: _Renewer, interval: float) -> None:
        self.service = service
        self.interval = interval
        self._held: dict[str, int] = {}
        self._lost: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, task_id: str, attempt: int) -> None:
        with self._lock:
            self._held[task_id] = attempt
            self._lost.discard(task_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="openr2v-leases", daemon=True)
                self._thread.start()

    def release(self, task_id: str) -> None:
        with self._lock:
            self._held.pop(task_id, None)
            self._lost.discard(task_id)

    def lost(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._lost

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                held = dict(self._held)
            if not held:
                continue
            try:
                gone = self.service.heartbeat(held)
            except Exception:  # the store is unreachable: keep rendering; the next beat may pass
                log.warning("could not renew task leases", exc_info=True)
                continue
            with self._lock:
                # Only a lease still held in the same attempt: the task may have ended meanwhile.
                gone = {t for t in gone if self._held.get(t) == held[t]}
                self._lost |= gone
            for t in gone:
                log.warning("task %s: lease lost (canceled, or taken for dead and re-queued); stopping", t)
