"""Blinks: when a face's eyes close, seeded so every render of a task blinks alike.

A blink comes every 2-6 s and lasts 100-200 ms: the lid drops fast (40% of the blink) and lifts
slower, as real lids do. The first one comes within 2.5 s, so even a short clip shows one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["blink_track"]

GAP = (2.0, 6.0)  # seconds between blinks
LENGTH = (0.10, 0.20)  # seconds a blink lasts
FIRST = (0.4, 2.5)  # seconds to the first blink


def blink_track(frames: int, fps: int, seed: int, index: int) -> np.ndarray:
    """Lid closure per frame, 0 open .. 1 shut, for the ``index``-th character of a task seeded ``seed``."""
    rng = np.random.default_rng([seed, index, 47])
    track = np.zeros(frames, np.float32)
    t = np.arange(frames) / fps
    start = float(rng.uniform(*FIRST))
    while start < frames / fps:
        length = float(rng.uniform(*LENGTH))
        close = 0.4 * length
        p = t - start
        down = (p >= 0) & (p < close)
        up = (p >= close) & (p < length)
        # Smooth ramps: sin^2 down, cos^2 up; the frame nearest the turn is fully shut.
        track[down] = np.maximum(track[down], np.sin(0.5 * np.pi * p[down] / close) ** 2)
        track[up] = np.maximum(track[up], np.cos(0.5 * np.pi * (p[up] - close) / (length - close)) ** 2)
        turn = min(frames - 1, round((start + close) * fps))
        if turn >= 0:
            track[turn] = 1.0
        start += length + float(rng.uniform(*GAP))
    return track
