"""Drawing and encoding side by side: the encoder runs in its own thread, fed finished frames.

x264 at the contract's settings keeps about 1.4 of the 2 cores busy (1.65 with the audio encoded
beside it); drawing the next frames (numpy and OpenCV, which release the GIL) takes the rest.
Frames go through a small pool of buffers and are submitted in frame order, so the bytes are the
same as a serial loop's (x264's own threading is fixed, see ``media.encode``).
"""

from __future__ import annotations

import queue
import threading
from types import TracebackType

import numpy as np

from openr2v.media.encode import Mp4Writer

__all__ = ["EncoderThread"]

POOL = 6  # frames in flight: two being drawn, the rest queued for x264 (1.4 MB each at 720p)


class EncoderThread:
    """``acquire()`` a buffer, draw into it, ``submit()`` it; ``close()`` waits for the last frame."""

    def __init__(self, writer: Mp4Writer, shape: tuple[int, int]) -> None:
        self._writer = writer
        self._free: queue.Queue[np.ndarray] = queue.Queue()
        for _ in range(POOL):
            self._free.put(np.empty(shape, np.uint8))
        self._full: queue.Queue[np.ndarray | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="openr2v-encoder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            buf = self._full.get()
            if buf is None:
                return
            if self._error is None:
                try:
                    self._writer.write_yuv420(buf)
                except BaseException as exc:  # handed to the drawing thread, which raises it
                    self._error = exc
            self._free.put(buf)

    def acquire(self) -> np.ndarray:
        self._raise()
        return self._free.get()

    def submit(self, buf: np.ndarray) -> None:
        self._full.put(buf)

    def close(self) -> None:
        """Wait until every submitted frame is written; raise what the encoder raised."""
        if self._thread.is_alive():
            self._full.put(None)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> EncoderThread:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        elif self._thread.is_alive():
            # Drawing failed (or was canceled): let the encoder finish what it has, then stop.
            self._full.put(None)
            self._thread.join()
