"""Motion: how an actor moves about its resting place, frame by frame.

- Video references replay their own cut-out frames (motion replication), so they get no idle motion.
- Image references breathe (a slow vertical stretch from the feet) and sway (a slow sideways
  shift), with seeded rates and phases so two characters never move in lockstep.
- Entrances and exits the prompt names ("walks in from the left") walk the actor in from outside
  the view, with a step bob, eased to a stop.
- Speech: the speaker lifts and bobs with the speech envelope (one value 0..1 per frame, from the
  soundtrack), and its mouth opens with it (drawn by the shot renderer).
Everything is a 3x3 world-space matrix about the actor's anchor, composed with the staging and
the camera into the single resample each sprite gets. The matrices stay axis-aligned (scale and
shift, no rotation) so that resample is a plain resize, four times cheaper than a warp.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from openr2v.domain.prompt import Line

__all__ = ["Motion", "exit_side", "fallback_envelopes", "make_motion"]

BREATH = 0.008  # vertical stretch amplitude
SWAY = 0.006  # of the actor's height, sideways
WALK = 1.4  # seconds an entrance or exit takes at most
STEP_BOB = 0.015  # of the actor's height
SPEECH_LIFT = 0.008  # of the actor's height, at full loudness
SPEECH_BOB = 0.004  # of the actor's height, a 1.5 Hz nod on top of the lift
SYLLABLES_HZ = 4.0  # the fallback envelope's syllable rate


@dataclass
class Motion:
    idle: bool
    breath: tuple[float, float]  # rate (Hz), phase
    sway: tuple[float, float]
    fps: int
    height: float  # the actor's height in world units (bob and lift scale with it)
    entrance: tuple[float, int, int] | None = None  # direction (+1 from the left, -1 from the right), frames
    exit: tuple[float, int, int] | None = None
    travel: float = 0.0  # world units an entrance or exit covers
    envelope: np.ndarray | None = None

    def speech(self, k: int) -> float:
        if self.envelope is None or k >= self.envelope.size:
            return 0.0
        return float(self.envelope[k])

    def matrix(self, k: int, anchor: tuple[float, float]) -> np.ndarray:
        """3x3 world transform at frame ``k``: a vertical stretch about ``anchor`` (the feet), then a shift."""
        t = k / self.fps
        dx = dy = 0.0
        sy = 1.0
        if self.idle:
            sy += BREATH * math.sin(2 * math.pi * self.breath[0] * t + self.breath[1])
            dx += SWAY * self.height * math.sin(2 * math.pi * self.sway[0] * t + self.sway[1])
        for walk, arriving in ((self.entrance, True), (self.exit, False)):
            if walk is None:
                continue
            direction, f0, f1 = walk
            p = min(1.0, max(0.0, (k - f0) / max(1, f1 - f0)))
            if arriving:
                dx -= direction * self.travel * (1 - p) ** 2  # eased to a stop
            else:
                dx += direction * self.travel * p * p  # eased from a standstill
            if 0.0 < p < 1.0:
                dy -= abs(math.sin(math.pi * 2.2 * (k - f0) / self.fps)) * STEP_BOB * self.height
        loud = self.speech(k)
        if loud:
            dy -= self.height * loud * (SPEECH_LIFT + SPEECH_BOB * math.sin(2 * math.pi * 1.5 * t))
        if not (dx or dy or sy != 1.0):
            return np.eye(3)
        return np.array([[1.0, 0.0, dx], [0.0, sy, anchor[1] + dy - sy * anchor[1]], [0.0, 0.0, 1.0]],
                        dtype=np.float64)


def make_motion(label: str, index: int, seed: int, fps: int, height: float, *, video: bool) -> Motion:
    rng = np.random.default_rng([seed, index, 23])
    return Motion(idle=not video, breath=(float(rng.uniform(0.2, 0.3)), float(rng.uniform(0, 2 * math.pi))),
                  sway=(float(rng.uniform(0.08, 0.16)), float(rng.uniform(0, 2 * math.pi))), fps=fps,
                  height=height)


def exit_side(text: str) -> float | None:
    """+1 when the text walks someone out to the right, -1 to the left, None if nobody leaves."""
    m = re.search(r"\b(?:walks|runs|steps|goes|moves|heads)\s+(?:out|off|away)\b[^.]*?\b(left|right)\b|"
                  r"\b(?:exits|leaves)\b[^.]*?\b(left|right)\b", text, re.I)
    if not m:
        return None
    side = (m.group(1) or m.group(2)).lower()
    return 1.0 if side == "right" else -1.0


def fallback_envelopes(lines: list[Line], frames: int, fps: int) -> dict[str, np.ndarray]:
    """Speech envelopes from the plan's line windows when the soundtrack gives none.

    Inside a window the loudness follows a syllable rhythm (a flat 1 would hold a mouth open
    without moving it); outside it is 0.
    """
    out: dict[str, np.ndarray] = {}
    t = np.arange(frames) / fps
    for ln in lines:
        if not ln.speaker:
            continue
        env = out.setdefault(ln.speaker, np.zeros(frames, np.float32))
        inside = (t >= ln.start) & (t < ln.end)
        syllables = 0.35 + 0.65 * np.abs(np.sin(np.pi * SYLLABLES_HZ * (t - ln.start)))
        env[inside] = np.maximum(env[inside], syllables[inside].astype(np.float32))
    return out
