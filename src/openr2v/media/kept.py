"""Arrays made again and again from the same few arguments (a job seen again), kept: made once, shared read-only."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec

import numpy as np

__all__ = ["kept_arrays"]

_P = ParamSpec("_P")


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
