"""Per-key submit rate: a token bucket per owner, in memory (per API process)."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, rate_per_second: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = rate_per_second
        self.burst = max(1, burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, owner: str) -> bool:
        if self.rate <= 0:
            return True
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(owner, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[owner] = (tokens, now)
                return False
            self._buckets[owner] = (tokens - 1.0, now)
            return True
