"""The mouth's shape per frame: how open, how wide, how round, and whether the lips are pressed shut.

``Visemes`` is what the face rig reads; anything that knows the speech can fill it. Today it comes
from the speaker's loudness envelope (one value 0..1 per frame, from the soundtrack): the jaw follows
the loudness, the lips widen a little as they open and round between syllables, and they close in
silence. A per-frame phoneme timeline (m/b/p closures, rounded vowels) fills the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Visemes", "from_envelope"]

SILENCE = 0.04  # envelope below this: the lips are closed
SMOOTH = 0.45  # one-pole smoothing of the opening (per frame at 30 fps): a jaw has mass


@dataclass
class Visemes:
    """Per-frame mouth parameters, each an array over the video's frames."""

    open: np.ndarray  # 0 closed .. 1 wide open (jaw drop and lip parting)
    width: np.ndarray  # -1 puckered .. 0 rest .. 1 spread
    round: np.ndarray  # 0 .. 1 rounded (an "oo"): narrower corners, a taller middle
    closed: np.ndarray  # bool: lips pressed together (m, b, p; silence)

    def at(self, k: int) -> tuple[float, float, float, bool]:
        if k >= self.open.size:
            return 0.0, 0.0, 0.0, True
        return float(self.open[k]), float(self.width[k]), float(self.round[k]), bool(self.closed[k])

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
