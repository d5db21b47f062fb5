"""The reaper: a loop, on every API node and worker, that keeps the store and the queue honest.

Each round (``TaskService.reap``) re-queues RUNNING tasks whose worker stopped renewing its lease
(or fails them once out of attempts) and publishes again the PENDING tasks whose wake-up the
broker lost. Several reapers at once are harmless: every move is a conditional UPDATE.
"""

from __future__ import annotations

import logging
import threading

from openr2v.tasks.service import TaskService

__all__ = ["Reaper"]

log = logging.getLogger("openr2v.reaper")


class Reaper:
    def __init__(self, service: TaskService, interval: float) -> None:
        self.service = service
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="openr2v-reaper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.service.reap()
            except Exception:  # store or broker down for a moment: try again next round
                log.warning("reaper round failed", exc_info=True)
