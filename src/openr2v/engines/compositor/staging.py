"""Staging: where each actor stands in the world in a shot, and how big it is.

Characters stand in a row, in a fixed left-to-right order for the whole video (the prompt's
spatial words first: left, centre, right; then prompt order), so screen direction holds across
cuts; each shot spaces the characters it shows by their count. "By the window" puts a character
at the plate's window (its brightest wide column band). A cut-out that runs off its reference's
lower edge (a bust, a cropped body) is anchored below the frame, so the cut never shows; a whole
figure stands on the floor. Held objects sit at the holder's hand and move with it; placed objects
stand on the floor beside whoever they are "next to", else in the freest spot.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from openr2v.engines.common.casting import Role
from openr2v.engines.common.vision import Face
from openr2v.engines.compositor.camera import Subject
from openr2v.engines.compositor.cutouts import Cutout

__all__ = ["Placement", "hand_point", "stage_order", "stage_shot", "subjects_of"]

HEAD_TOP = 0.13  # of the world height: where a character's head starts in a wide view
FLOOR = 0.94  # whole figures stand here
FIGURE = 0.80  # a whole figure's height
BELOW = 1.02  # cropped figures are anchored a little below the frame's bottom edge
BUST_FACE = 0.30  # of the frame height: a bust's face in a wide view (smaller if its head would not fit)
HEADROOM = 0.45  # face heights above the detected face box that belong to the head (hair, a hat)
HEAD_MARGIN = 0.03  # of the frame height: the least room above a head
HELD_SIZE = 0.42  # a held object's longest side, in holder heights
PLACED_SIZE = 0.30  # a placed object's height, in world heights (0.5 when nobody else is in the shot)
_SLOTS = {1: [0.5], 2: [0.32, 0.68], 3: [0.2, 0.5, 0.8]}
_SIDE_RANK = {"left": 0, "centre": 1, None: 1, "window": 1, "right": 2}


@dataclass
class Placement:
    """An actor's resting place: cut-out pixel ``src_anchor`` sits at world ``anchor``, ``scale`` world/px."""

    label: str
    role: str  # character | object
    anchor: tuple[float, float]
    src_anchor: tuple[float, float]
    scale: float
    size: tuple[int, int]  # the cut-out's size in pixels
    holder: str | None = None
    face: Face | None = None  # a character's face, in cut-out pixels

    def matrix(self) -> np.ndarray:
        """3x3: cut-out pixels to world units."""
        s = self.scale
        return np.array([[s, 0, self.anchor[0] - s * self.src_anchor[0]],
                         [0, s, self.anchor[1] - s * self.src_anchor[1]], [0, 0, 1]], dtype=np.float64)

    @property
    def box(self) -> tuple[float, float, float, float]:
        m = self.matrix()
        w, h = self.size
        return m[0, 2], m[1, 2], m[0, 2] + w * self.scale, m[1, 2] + h * self.scale

    @property
    def height(self) -> float:
        return self.size[1] * self.scale

    @property
    def head(self) -> tuple[float, float, float, float] | None:
        """The face's box in world units (x0, y0, x1, y1), grown by HEADROOM above for hair or a hat."""
        if self.face is None:
            return None
        m, f = self.matrix(), self.face
        x0, y0 = m[0, 0] * f.x + m[0, 2], m[1, 1] * (f.y - HEADROOM * f.h) + m[1, 2]
        return x0, y0, x0 + f.w * self.scale, m[1, 1] * (f.y + f.h) + m[1, 2]


def stage_order(roles: dict[str, Role]) -> list[str]:
    """Characters left to right for the whole video."""
    labels = [label for label, r in roles.items() if r.role == "character"]
    return sorted(labels, key=lambda label: (_SIDE_RANK.get(roles[label].side, 1), labels.index(label)))


def _slots(n: int) -> list[float]:
    return _SLOTS.get(n) or list(np.linspace(0.13, 0.87, n))


def _centre_of_mass_x(cut: Cutout) -> float:
    cols = cut.pictures[0].a.sum(axis=0, dtype=np.float64)
    return float((cols * np.arange(cols.size)).sum() / cols.sum()) if cols.sum() else cut.size[0] / 2


def _character(label: str, cut: Cutout, x: float, width: int, height: int, jitter: np.ndarray) -> Placement:
    w, h = cut.size
    if cut.touches_bottom:
        return _bust(label, cut, x, width, height, jitter)
    top = (HEAD_TOP + 0.025 * jitter[1]) * height
    bottom = FLOOR * height
    scale = min(FIGURE * height, bottom - top) / h
    return Placement(label, "character", (x, bottom), (_centre_of_mass_x(cut), float(h)), scale, (w, h),
                     face=cut.faces[0])


def _bust(label: str, cut: Cutout, x: float, width: int, height: int, jitter: np.ndarray) -> Placement:
    """A cut-out that runs off its photo's lower edge rises from the frame's: sized by its face, head in frame.

    A tight portrait (a big face) is shrunk so its face is BUST_FACE of the frame; a waist-up
    photo (a small face) grows until its head is near the top; either way the whole head, with
    HEADROOM for hair or a hat, stays below the top edge.
    """
    w, h = cut.size
    bottom = BELOW * height
    face = cut.faces[0]
    if face is None:
        top = (HEAD_TOP + 0.025 * jitter[1]) * height
        return Placement(label, "character", (x, bottom), (_centre_of_mass_x(cut), float(h)), (bottom - top) / h,
                         (w, h))
    head_top = max(0.0, face.y - HEADROOM * face.h)
    most = (bottom - HEAD_MARGIN * height) / max(1.0, h - head_top)  # head top at the margin
    scale = min(most, (BUST_FACE + 0.01 * jitter[1]) * height / face.h)
    return Placement(label, "character", (x, bottom), (_centre_of_mass_x(cut), float(h)), scale, (w, h), face=face)


def stage_shot(on_screen: list[str], roles: dict[str, Role], order: list[str], cutouts: dict[str, Cutout],
               width: int, height: int, seed: int, window_x: float | None) -> list[Placement]:
    """Placements for one shot, back to front: placed objects, characters, then held objects."""
    chars = [label for label in order if label in on_screen and label in cutouts]
    placements: dict[str, Placement] = {}
    xs = [x * width for x in _slots(len(chars))]
    for i, label in enumerate(chars):
        jitter = np.random.default_rng([seed, order.index(label), 11]).uniform(-1, 1, 2)
        x = xs[i] + 0.03 * width * jitter[0]
        if roles[label].side == "window" and window_x is not None:
            x = min(max(window_x, 0.2 * width), 0.8 * width)
        placements[label] = _character(label, cutouts[label], x, width, height, jitter)
    _spread(placements, chars, width, height)

    objects = [label for label, r in roles.items() if r.role == "object" and label in cutouts]
    held, placed = [], []
    for label in objects:
        holder = roles[label].holder
        if holder in placements:
            held.append(_held(label, cutouts[label], placements[holder], width, height))
        elif label in on_screen:
            placed.append(label)
    alone = not chars
    out_objects = []
    for i, label in enumerate(placed):
        out_objects.append(_placed(label, cutouts[label], roles[label], placements, width, height, alone, i,
                                   len(placed)))
    return out_objects + [placements[c] for c in chars] + held


def _moved(p: Placement, x: float, scale: float | None = None) -> Placement:
    return replace(p, anchor=(x, p.anchor[1]), scale=p.scale if scale is None else scale)


def _spread(placements: dict[str, Placement], chars: list[str], width: int, height: int) -> None:
    """Fit the row to the frame: shrink it if it is much wider, keep order and spacing, keep everyone inside."""
    if not chars:
        return
    total = sum(p.size[0] * p.scale for p in placements.values())
    # Neighbours may overlap a little (people stand close); a tall frame allows more, or they would be tiny.
    room = (1.25 if height > width else 0.95) * width
    if total > room:
        for label in chars:
            p = placements[label]
            placements[label] = _moved(p, p.anchor[0], p.scale * room / total)
    # A character kept at the window may have landed on a neighbour: order by x again, spaced apart.
    ordered = sorted(chars, key=lambda c: placements[c].anchor[0])
    gap = 0.22 * width
    for a, b in zip(ordered, ordered[1:], strict=False):
        pa, pb = placements[a], placements[b]
        if pb.anchor[0] - pa.anchor[0] < gap:
            shift = gap - (pb.anchor[0] - pa.anchor[0])
            placements[a] = _moved(pa, pa.anchor[0] - shift / 2)
            placements[b] = _moved(pb, pb.anchor[0] + shift / 2)
    for label in chars:  # whoever fits in the frame stands wholly in it
        p = placements[label]
        x0, _, x1, _ = p.box
        if x1 - x0 <= width:
            placements[label] = _moved(p, p.anchor[0] + max(0.0, -x0) - max(0.0, x1 - width))


def hand_point(holder: Placement, width: int, height: int) -> tuple[float, float]:
    """Where a holder's hand is, in world units: in front of the body, toward the frame's centre."""
    x0, y0, x1, y1 = holder.box
    toward = 1.0 if holder.anchor[0] < width / 2 else -1.0
    # A bust's hands are low in the picture; a whole figure's are at mid height.
    frac = 0.68 if holder.anchor[1] > FLOOR * height + 1 else 0.55
    return holder.anchor[0] + toward * 0.12 * (x1 - x0), y0 + frac * (y1 - y0)


def _held(label: str, cut: Cutout, holder: Placement, width: int, height: int) -> Placement:
    w, h = cut.size
    scale = HELD_SIZE * holder.height / max(w, h)
    return Placement(label, "object", hand_point(holder, width, height), (w / 2, h / 2), scale, (w, h),
                     holder=holder.label)


def _placed(label: str, cut: Cutout, role: Role, chars: dict[str, Placement], width: int, height: int,
            alone: bool, i: int, n: int) -> Placement:
    w, h = cut.size
    scale = min((0.5 if alone else PLACED_SIZE) * height / h, 0.35 * width / w)
    half = w * scale / 2
    if alone:
        x = _slots(n)[i] * width
    elif role.near in chars:
        other = chars[role.near]
        ox0, _, ox1, _ = other.box
        x = ox1 + half if other.anchor[0] < width / 2 else ox0 - half
    else:
        taken = [p.anchor[0] for p in chars.values()]
        candidates = [0.86 * width, 0.14 * width, 0.5 * width]
        x = max(candidates, key=lambda c: min((abs(c - t) for t in taken), default=width))
    x = min(max(x, half), width - half)
    return Placement(label, "object", (x, FLOOR * height + 0.02 * height), (w / 2, float(h)), scale, (w, h))


def subjects_of(placements: list[Placement]) -> list[Subject]:
    """What the camera frames: boxes, faces and heads in world units."""
    out = []
    for p in placements:
        face = head = None
        if p.role == "character" and p.face is not None:
            f, m = p.face, p.matrix()
            face = (m[0, 0] * f.x + m[0, 2], m[1, 1] * f.y + m[1, 2], f.w * p.scale, f.h * p.scale)
            head = p.head
        out.append(Subject(p.label, p.box, face, p.role == "character", head))
    return out
