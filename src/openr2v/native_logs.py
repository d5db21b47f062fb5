"""Quiet the start-up chatter of native libraries (TensorFlow Lite, absl, glog inside mediapipe).

Those libraries write to file descriptor 2 from C++, below Python's logging, when a graph starts
("Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires a model ..."): noise for a
user watching `make demo` or a server log. ``quiet_native_stderr`` points descriptor 2 at /dev/null
for the short time such a graph is built and first run. Set ``OPENR2V_NATIVE_LOGS=1`` to see them.

The redirection is process-wide, so it is held as briefly as possible and serialized; another
thread's stderr output in that window (tens of milliseconds, once per graph) is lost too.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

__all__ = ["quiet_native_stderr"]

_lock = threading.Lock()


def _wanted() -> bool:
    return os.environ.get("OPENR2V_NATIVE_LOGS", "").lower() in ("1", "true", "yes")


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    if _wanted():
        yield
        return
    with _lock:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
