"""Phoneme timelines and the mouth shapes (visemes) they imply, per video frame.

A ``Phoneme`` is an IPA symbol (stress marks removed; ``""`` for a pause) with its start and end in
seconds. ``viseme_of`` sorts it into one of ``VISEMES``: lips ``closed`` (m, b, p), ``teeth`` on
the lower lip (f, v), ``round`` (o, u, w), ``wide`` (i, e), ``open`` (a), ``mid`` (schwa-like
vowels), ``consonant`` (tongue and throat sounds: the lips stay loose) and ``rest`` (silence).
Each viseme has a target pose (``Pose``: open, width, round in 0..1, 0.5 width being neutral).

``viseme_track`` turns a timeline into per-frame values a face rig reads (``VisemeTrack``): each
frame's pose is the mean of the targets of what sounds during that frame, weighted by how long it
sounds. A lip closure or a lip bite is short (often under one frame) and a mouth that never closes
on "b" reads wrong, so ``closed``/``teeth`` flag every frame a closure overlaps by half of
its length or half of the frame, and a closed frame's ``open`` is 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["POSES", "VISEMES", "Phoneme", "Pose", "VisemeTrack", "plain_symbol", "retime", "silent_track", "viseme_of",
           "viseme_track"]


@dataclass(frozen=True)
class Pose:
    open: float  # jaw/lip opening, 0 shut .. 1 wide open
    width: float  # lip corners, 0 pursed .. 0.5 neutral .. 1 spread
    round: float  # lip protrusion, 0 .. 1


POSES: dict[str, Pose] = {
    "rest": Pose(0.0, 0.5, 0.0),
    "closed": Pose(0.0, 0.5, 0.0),
    "teeth": Pose(0.1, 0.55, 0.0),
    "round": Pose(0.45, 0.15, 1.0),
    "wide": Pose(0.35, 1.0, 0.0),
    "open": Pose(1.0, 0.6, 0.0),
    "mid": Pose(0.5, 0.5, 0.0),
    "consonant": Pose(0.25, 0.55, 0.0),
}
VISEMES = tuple(POSES)

# First matching rule wins; a vowel's class is its first vowel letter (a diphthong starts there).
_CLOSED = set("mbpɱ")
_TEETH = set("fv")
_ROUND = set("ouʊɔɒwʍyøœɵʉ")
_WIDE = set("iɪeɛj")
_OPEN = set("aɑæʌɐɶ")
_MID = set("əɜɚɝɘ")
_STRESS = str.maketrans("", "", "ˈˌ")


@dataclass(frozen=True)
class Phoneme:
    start: float  # seconds
    end: float
    symbol: str  # IPA, no stress marks; "" for a pause

    @property
    def viseme(self) -> str:
        return viseme_of(self.symbol)

    def as_list(self) -> list:
        """``[start, end, symbol, viseme]`` with millisecond times: the form render notes keep."""
        return [round(self.start, 3), round(self.end, 3), self.symbol, self.viseme]


def plain_symbol(symbol: str) -> str:
    """An IPA phoneme without stress marks."""
    return symbol.translate(_STRESS)


def viseme_of(symbol: str) -> str:
    """The viseme class of an IPA phoneme symbol (see the module docstring)."""
    s = plain_symbol(symbol)
    if not s or s in ("_", "||", "|"):
        return "rest"
    head = s[0]
    if head in _CLOSED:
        return "closed"
    if head in _TEETH:
        return "teeth"
    for ch in s:  # consonant clusters like "tʃ" fall through to the first vowel, if any
        if ch in _ROUND:
            return "round"
        if ch in _OPEN:
            return "open"
        if ch in _WIDE:
            return "wide"
        if ch in _MID:
            return "mid"
    return "consonant"


def retime(phonemes: Iterable[Phoneme], *, offset: float = 0.0, scale: float = 1.0, origin: float = 0.0,
           limit: float | None = None) -> list[Phoneme]:
    """Each time ``t`` becomes ``(t - origin) * scale + offset``, clipped to ``[offset, limit]``.

    A phoneme left with no duration (it fell before ``origin`` or past ``limit``) is dropped.
    """
    out = []
    for p in phonemes:
        a, b = (p.start - origin) * scale + offset, (p.end - origin) * scale + offset
        a, b = max(a, offset), max(b, offset)
        if limit is not None:
            a, b = min(a, limit), min(b, limit)
        if b > a:
            out.append(Phoneme(a, b, p.symbol))
    return out


@dataclass
class VisemeTrack:
    """Per-frame mouth values at the video's frame rate (arrays of one length, one entry a frame)."""

    fps: int
    open: np.ndarray  # float32 0..1
    width: np.ndarray  # float32 0..1, 0.5 neutral
    round: np.ndarray  # float32 0..1
    closed: np.ndarray  # bool: lips pressed together (m, b, p)
    teeth: np.ndarray  # bool: lower lip under the upper teeth (f, v)
    viseme: list[str]  # the class that sounds longest in each frame ("rest" when silent)

    def __len__(self) -> int:
        return int(self.open.size)


def silent_track(frames: int, fps: int) -> VisemeTrack:
    rest = POSES["rest"]
    return VisemeTrack(fps=fps, open=np.full(frames, rest.open, np.float32),
                       width=np.full(frames, rest.width, np.float32), round=np.full(frames, rest.round, np.float32),
                       closed=np.zeros(frames, bool), teeth=np.zeros(frames, bool), viseme=["rest"] * frames)


def viseme_track(phonemes: Iterable[Phoneme], frames: int, fps: int) -> VisemeTrack:
    """The per-frame mouth of a timeline (absolute seconds) over ``frames`` frames at ``fps``."""
    track = silent_track(frames, fps)
    weight = np.zeros(frames)
    acc = np.zeros((frames, 3))
    longest = np.zeros(frames)
    frame_s = 1.0 / fps
    for p in phonemes:
        kind = p.viseme
        pose = POSES[kind]
        first, last = max(0, int(p.start * fps)), min(frames - 1, int(np.ceil(p.end * fps)) - 1)
        for k in range(first, last + 1):
            overlap = min(p.end, (k + 1) * frame_s) - max(p.start, k * frame_s)
            if overlap <= 0:
                continue
            weight[k] += overlap
            acc[k] += overlap * np.array([pose.open, pose.width, pose.round])
            if overlap > longest[k]:
                longest[k], track.viseme[k] = overlap, kind
            if kind in ("closed", "teeth") and overlap >= 0.5 * min(p.end - p.start, frame_s):
                (track.closed if kind == "closed" else track.teeth)[k] = True
    # The rest of a partly silent frame is rest pose.
    rest = POSES["rest"]
    gap = np.clip(frame_s - weight, 0.0, None)
    acc += gap[:, None] * np.array([rest.open, rest.width, rest.round])
    pose = acc / np.maximum(weight + gap, 1e-9)[:, None]
    track.open[:] = np.where(track.closed, 0.0, pose[:, 0])
    track.width[:] = pose[:, 1]
    track.round[:] = pose[:, 2]
    return track
