"""Things made again and again from the same inputs (a job seen again), kept: made once, shared read-only."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, ParamSpec, TypeVar

import numpy as np

__all__ = ["Kept", "kept_arrays"]

_P = ParamSpec("_P")
_V = TypeVar("_V")


def kept_arrays(maxsize: int) -> Callable[[Callable[_P, np.ndarray]], Callable[_P, np.ndarray]]:
    """``functools.lru_cache`` for a deterministic function that makes an array: the last ``maxsize`` results are kept
    and handed to every caller, so they are made read-only (a caller that shapes one in place must copy it)."""

    def keep(make: Callable[_P, np.ndarray]) -> Callable[_P, np.ndarray]:
        @functools.wraps(make)
        def made(*args: _P.args, **kwargs: _P.kwargs) -> np.ndarray:
            out = make(*args, **kwargs)
            out.setflags(write=False)
            return out

        return functools.lru_cache(maxsize=maxsize)(made)  # type: ignore[return-value]

    return keep


class Kept(Generic[_V]):
    """The last ``maxsize`` values made, by a key the caller chooses (what the value depends on, when the arguments
    themselves are not: a file's digest rather than its path). Safe from several threads; two threads asking for the
    same new key at once may both make it (the values are the same)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._values: OrderedDict[Hashable, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], _V]) -> _V:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = make()
        with self._lock:
            self._values[key] = value
            while len(self._values) > self.maxsize:
                self._values.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
