"""A rigged face's head pose per frame: tilt, nod, turn and gaze.

- Idle: a slow seeded drift of tilt and nod, so a still photo never freezes.
- Speech: a nod (and a little tilt) on each stressed syllable: the envelope's peaks, at most one
  every 0.3 s, each a smooth bump, alternating in direction.
- Conversation: the listener turns its head and eyes toward the speaker, the speaker a little toward
  the listener; eased in and out over ~0.3 s.
Every track is smooth (low-pass), so the head never jumps between frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["HeadPose", "Turn", "head_pose"]

MAX_TILT = 3.0  # degrees
MAX_NOD = 0.025  # of the face's height
PEAK_GAP = 0.3  # seconds between stressed syllables at least
EASE = 0.3  # seconds a turn takes


@dataclass
class Turn:
    first: int  # frames [first, last)
    last: int
    direction: float  # +1 toward the picture's right, -1 left
    strength: float  # 1 for a listener, less for a speaker


@dataclass
class HeadPose:
    tilt: np.ndarray  # degrees, positive clockwise on screen
    nod: np.ndarray  # of the face height, positive down
    turn: np.ndarray  # -1 .. 1: the face turns toward the picture's left .. right
    gaze: np.ndarray  # -1 .. 1: the irises likewise

    def at(self, k: int) -> tuple[float, float, float, float]:
        k = min(k, self.tilt.size - 1)
        return float(self.tilt[k]), float(self.nod[k]), float(self.turn[k]), float(self.gaze[k])


def _bump(frames: int, centre: float, width: float) -> np.ndarray:
    k = np.arange(frames, dtype=np.float64)
    x = np.clip((k - centre) / width, -1.0, 1.0)
    return 0.5 * (1 + np.cos(np.pi * x))


def _ease(track: np.ndarray, frames: int) -> np.ndarray:
    """A box-filter pass twice (a triangle of ``frames``): steps become smooth ramps."""
    if frames <= 1:
        return track
    kernel = np.ones(frames) / frames
    padded = np.pad(track, frames, mode="edge")
    for _ in range(2):
        padded = np.convolve(padded, kernel, mode="same")
    return padded[frames:-frames]


def head_pose(frames: int, fps: int, seed: int, index: int, envelope: np.ndarray | None,
              turns: list[Turn]) -> HeadPose:
    rng = np.random.default_rng([seed, index, 53])
    t = np.arange(frames) / fps
    rates, phases = rng.uniform(0.07, 0.17, 3), rng.uniform(0, 2 * math.pi, 3)
    tilt = 0.8 * np.sin(2 * math.pi * rates[0] * t + phases[0])
    nod = 0.004 * np.sin(2 * math.pi * rates[1] * t + phases[1])
    drift = 0.08 * np.sin(2 * math.pi * rates[2] * t + phases[2])
    if envelope is not None and envelope.size:
        env = np.zeros(frames)
        env[:min(frames, envelope.size)] = envelope[:frames]
        gap = max(1, round(PEAK_GAP * fps))
        last = -gap
        sign = 1.0
        for k in range(1, frames - 1):
            if env[k] >= 0.45 and env[k] >= env[k - 1] and env[k] > env[k + 1] and k - last >= gap:
                width = 0.22 * fps
                nod += 0.012 * env[k] * _bump(frames, k + 0.05 * fps, width)
                tilt += 0.9 * sign * env[k] * _bump(frames, k + 0.05 * fps, 1.6 * width)
                sign, last = -sign, k
    turn = np.zeros(frames)
    for tr in turns:
        turn[max(0, tr.first):max(0, tr.last)] += tr.direction * tr.strength
    turn = _ease(np.clip(turn, -1, 1), max(1, round(EASE * fps))) + drift
    return HeadPose(tilt=np.clip(tilt, -MAX_TILT, MAX_TILT), nod=np.clip(nod, -MAX_NOD, MAX_NOD),
                    turn=np.clip(turn, -1, 1), gaze=np.clip(1.3 * turn, -1, 1))
