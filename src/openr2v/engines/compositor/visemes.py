"""The mouth's shape per frame: how open, how wide, how round, and whether the lips are pressed shut.

``Visemes`` is what the face rig reads. Two sources fill it:
- ``from_track``: the soundtrack's per-frame viseme track (``media.visemes.VisemeTrack``, from the
  TTS's phoneme timeline of what was actually said): the phonemes give the shape (rounded "oo",
  spread "ee", lips pressed on m/b/p, the lower lip tucked under the upper teeth on f/v) and the
  loudness envelope scales how far the jaw drops;
- ``from_envelope``: loudness alone (a soundtrack without timelines): the jaw follows the loudness,
  the lips widen a little as they open and round between syllables.
Either way the lips close in silence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from openr2v.media.visemes import VisemeTrack

__all__ = ["MouthShape", "Visemes", "from_envelope", "from_track"]

SILENCE = 0.04  # envelope below this: the lips are closed
VOWEL = 0.45  # a mid vowel's opening in the phoneme track (media.visemes): full articulation
SMOOTH = 0.45  # one-pole smoothing of the opening (per frame at 30 fps): a jaw has mass


class MouthShape(NamedTuple):
    open: float
    width: float
    round: float
    closed: bool
    tuck: float


@dataclass
class Visemes:
    """Per-frame mouth parameters, each an array over the video's frames."""

    open: np.ndarray  # 0 closed .. 1 wide open (jaw drop and lip parting)
    width: np.ndarray  # -1 puckered .. 0 rest .. 1 spread
    round: np.ndarray  # 0 .. 1 rounded (an "oo"): narrower corners, a taller middle
    closed: np.ndarray  # bool: lips pressed together (m, b, p; silence)
    tuck: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # 0 .. 1: lower lip under the
    # upper teeth (f, v)

    def at(self, k: int) -> MouthShape:
        if k >= self.open.size:
            return MouthShape(0.0, 0.0, 0.0, True, 0.0)
        tuck = float(self.tuck[k]) if k < self.tuck.size else 0.0
        return MouthShape(float(self.open[k]), float(self.width[k]), float(self.round[k]), bool(self.closed[k]), tuck)

    @property
    def speaking(self) -> bool:
        return bool(self.open.any())


def _smooth(x: np.ndarray, fps: int) -> np.ndarray:
    a = SMOOTH ** (30 / max(1, fps))
    out = np.empty_like(x)
    prev = 0.0
    for k, v in enumerate(x):
        prev = a * prev + (1 - a) * float(v)
        out[k] = prev
    return out


def from_envelope(envelope: np.ndarray | None, frames: int, fps: int) -> Visemes:
    """Visemes that follow a loudness envelope (None: a silent face, lips closed throughout)."""
    env = np.zeros(frames, np.float32)
    if envelope is not None:
        n = min(frames, envelope.size)
        env[:n] = envelope[:n]
    closed = env < SILENCE
    # Loud frames open the jaw most; sqrt lifts the quiet consonants so the lips part on them too.
    target = np.where(closed, 0.0, np.sqrt(np.clip(env, 0.0, 1.0)) * 0.95)
    opening = np.clip(_smooth(target.astype(np.float32), fps), 0.0, 1.0)
    opening[closed & (opening < 0.08)] = 0.0
    # The envelope's fall between syllables reads as a rounded, narrower mouth; its rise as a spread one.
    slope = np.diff(env, prepend=env[:1])
    width = np.clip(0.25 * opening + 2.0 * slope, -0.6, 0.6) * (opening > 0)
    rounding = np.clip(-3.0 * slope, 0.0, 0.7) * (opening > 0)
    return Visemes(open=opening.astype(np.float32), width=width.astype(np.float32),
                   round=rounding.astype(np.float32), closed=closed & (opening == 0))


def from_track(track: VisemeTrack, envelope: np.ndarray | None, frames: int, fps: int) -> Visemes:
    """Visemes from a phoneme-driven track, the jaw's drop scaled by the loudness (None: the track's own)."""
    def fit(x: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(frames, fill, np.float32)
        n = min(frames, x.size)
        out[:n] = x[:n]
        return out

    shape = fit(track.open, 0.0)
    loud = fit(envelope, 0.0) if envelope is not None else (shape > 0).astype(np.float32)
    pressed = fit(track.closed.astype(np.float32), 0.0) > 0
    silent = loud < SILENCE
    # The phoneme sets the shape, the loudness how far the jaw goes: stressed syllables open wider. Vowels
    # (shape ~0.45) open about twice as far as the consonants between them (~0.25): a mouth that only
    # followed the volume would hang half open through a whole phrase.
    articulated = 0.1 + 0.8 * np.minimum(1.1, shape / VOWEL)
    target = np.where(silent | pressed, 0.0, articulated * np.sqrt(np.clip(loud, 0.0, 1.0)))
    opening = np.clip(_smooth(target.astype(np.float32), fps), 0.0, 1.0)
    opening[pressed] = 0.0  # a closure is crisp, however short
    opening[silent & (opening < 0.08)] = 0.0
    width = np.clip((fit(track.width, 0.5) - 0.5) * 2.0, -1.0, 1.0) * (opening > 0)
    rounding = np.clip(fit(track.round, 0.0), 0.0, 1.0) * (opening > 0)
    # f, v: the lower lip rises to the upper teeth; eased in and out over a frame or two, as lips move.
    tucked = (fit(track.teeth.astype(np.float32), 0.0) > 0) & ~silent & ~pressed
    tuck = np.clip(_smooth(tucked.astype(np.float32), fps) * 1.6, 0.0, 1.0) * (opening > 0)
    return Visemes(open=opening.astype(np.float32), width=width.astype(np.float32),
                   round=rounding.astype(np.float32), closed=pressed | (silent & (opening == 0)),
                   tuck=tuck.astype(np.float32))
