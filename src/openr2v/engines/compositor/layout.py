"""Staging: which reference is the set, where the others stand, how they sway."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from openr2v.engines.base import ResolvedReference

__all__ = ["BACKGROUND_ASPECT", "Placement", "choose_background", "gradient_plate", "place_cards"]

# A reference at least this much wider than tall reads as a place, not a character.
BACKGROUND_ASPECT = 1.3
CARD_HEIGHT = 0.6  # of the frame height, before shrinking to fit the width
MARGIN = 0.05  # of the frame width, each side
GAP = 0.03  # of the frame width, between cards
FLOOR = 0.92  # cards stand with their bottom edge at this fraction of the frame height
ASPECT_RANGE = (0.5, 1.25)  # a card's aspect is the reference's, clamped to this


@dataclass(frozen=True)
class Placement:
    """A card's box and its seeded sway (pixels; seconds)."""

    x: int
    y: int
    w: int
    h: int
    amp_x: float
    amp_y: float
    freq_x: float
    freq_y: float
    phase_x: float
    phase_y: float

    def at(self, t: float) -> tuple[int, int]:
        """Top-left corner at time ``t``: a slow sway sideways and a gentle bob."""
        dx = self.amp_x * math.sin(2 * math.pi * self.freq_x * t + self.phase_x)
        dy = self.amp_y * math.sin(2 * math.pi * self.freq_y * t + self.phase_y)
        return self.x + round(dx), self.y + round(dy)


def _aspect(ref: ResolvedReference) -> float:
    w, h = ref.info.width or 1, ref.info.height or 1
    return w / h


def choose_background(refs: list[ResolvedReference]) -> ResolvedReference | None:
    """The last image reference wide enough to be a set; None if there is none."""
    wide = [r for r in refs if r.kind == "image" and _aspect(r) >= BACKGROUND_ASPECT]
    return wide[-1] if wide else None


def place_cards(refs: list[ResolvedReference], width: int, height: int, seed: int) -> list[Placement]:
    """Side-by-side boxes for ``refs`` in order, ~60% of the frame tall, shrunk to fit the width."""
    if not refs:
        return []
    rng = np.random.default_rng([seed, 1])
    lo, hi = ASPECT_RANGE
    aspects = [min(hi, max(lo, _aspect(r))) for r in refs]
    card_h = CARD_HEIGHT * height
    gap = GAP * width
    usable = width * (1 - 2 * MARGIN) - gap * (len(refs) - 1)
    widths = [card_h * a for a in aspects]
    scale = min(1.0, usable / sum(widths))
    card_h *= scale
    widths = [w * scale for w in widths]
    amp_x, amp_y = 0.004 * width, 0.006 * height
    x = (width - sum(widths) - gap * (len(refs) - 1)) / 2
    out: list[Placement] = []
    for w in widths:
        w_i, h_i = max(8, 2 * round(w / 2)), max(8, 2 * round(card_h / 2))  # even: 4:2:0 layers
        dx = rng.uniform(-0.25, 0.25) * gap
        dy = rng.uniform(-0.02, 0.02) * height
        # Keep the card and its sway inside the frame.
        left = int(min(max(x + dx, amp_x + 1), width - w_i - amp_x - 1))
        top = int(min(max(FLOOR * height - h_i + dy, amp_y + 1), height - h_i - amp_y - 1))
        out.append(Placement(x=left, y=top, w=w_i, h=h_i, amp_x=amp_x, amp_y=amp_y,
                             freq_x=float(rng.uniform(0.12, 0.25)), freq_y=float(rng.uniform(0.2, 0.4)),
                             phase_x=float(rng.uniform(0, 2 * math.pi)), phase_y=float(rng.uniform(0, 2 * math.pi))))
        x += w + gap
    return out


def gradient_plate(width: int, height: int, seed: int) -> np.ndarray:
    """A seeded backdrop when no reference is a set: a soft wall-to-floor gradient with a vignette."""
    rng = np.random.default_rng([seed, 2])
    wall_top, wall, floor = (rng.uniform(40, 200, 3) for _ in range(3))
    y = np.linspace(0.0, 1.0, height)[:, None]
    horizon = FLOOR - 0.05
    t_wall = np.clip(y / horizon, 0, 1)
    colour = wall_top * (1 - t_wall) + wall * t_wall
    colour = np.where(y > horizon, floor * 0.8 + colour * 0.2, colour)  # (height, 3)
    xx = np.linspace(-1.0, 1.0, width)[None, :]
    yy = np.linspace(-1.0, 1.0, height)[:, None]
    vignette = 1.0 - 0.25 * (xx**2 + yy**2) / 2
    plate = colour[:, None, :] * vignette[:, :, None]
    return np.clip(plate, 0, 255).astype(np.uint8)
