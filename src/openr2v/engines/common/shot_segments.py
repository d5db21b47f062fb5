"""Shots rendered side by side into segments, then joined with hard cuts (``media.segments``).

Each shot is rendered and encoded in isolation into its own video-only segment (one encoder setup,
a keyframe at each cut), ``workers`` shots at a time on a thread pool; the segments are joined
without re-encoding, the task's audio (made once, before) muxed in the join. The bytes therefore do
not depend on how many workers rendered the shots or in which order they finished.

One shot failing stops the others at their next check (``halted``), and the task fails with that
shot's error (a cancel only when nothing else went wrong); the segments are deleted either way.
Both the compositor (``OPENR2V_PARALLEL_SHOTS``) and the vace engine (one worker per device) use it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from openr2v.errors import Canceled
from openr2v.media.segments import join_segments

__all__ = ["HaltedFn", "ShotFn", "render_shot_segments"]

HaltedFn = Callable[[], bool]
# (shot index, its segment's path, halted) -> (frames written, the shot's notes)
ShotFn = Callable[[int, Path, HaltedFn], tuple[int, dict[str, Any]]]


def render_shot_segments(count: int, workers: int, render: ShotFn, out: Path, fps: int, *,
                         audio: np.ndarray | None, cancelled: Callable[[], bool]) -> list[dict[str, Any]]:
    """Shots ``0..count-1`` through ``render``, ``workers`` at a time, joined into ``out``; their notes, in
    order, each with ``seconds``: its [start, end] in seconds since the first shot could start."""
    stop = threading.Event()
    began = time.perf_counter()
    paths = [out.parent / f".shot-{index}.mp4" for index in range(count)]

    def halted() -> bool:
        return stop.is_set() or cancelled()

    def one(index: int) -> tuple[int, dict[str, Any]]:
        try:
            if halted():
                raise Canceled("The task was canceled.")
            start = time.perf_counter() - began
            frames, note = render(index, paths[index], halted)
            return frames, {**note, "seconds": [round(start, 3), round(time.perf_counter() - began, 3)]}
        except BaseException:
            stop.set()
            raise

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="openr2v-shot") as pool:
            futures = [pool.submit(one, index) for index in range(count)]
        failures = [e for f in futures if (e := f.exception()) is not None]
        if failures:
            raise next((e for e in failures if not isinstance(e, Canceled)), failures[0])
        done = [f.result() for f in futures]
        join_segments([(path, frames) for path, (frames, _) in zip(paths, done, strict=True)], out, fps, audio=audio)
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
    return [note for _, note in done]
