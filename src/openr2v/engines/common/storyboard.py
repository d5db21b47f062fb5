"""Storyboard images: find a grid of panels separated by uniform gutters, and split it in reading order.

The wan2.7-r2v guide's wan2.7 example sends one multi-panel image and a numbered storyboard. A gutter is a
full row (or column) of nearly one colour, so projection profiles find them: per row the spread of
its pixels, low runs are gutter candidates. Runs touching the border are margins; the inner runs
must cut the picture into panels of near-equal size with gutters of near-equal width, or the
picture is not a grid (a photo with a flat wall does not pass that test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["Grid", "find_grid"]

ANALYSIS_SIDE = 800
FLAT = 6.0  # max std (0..255 levels) of a gutter line
MIN_PANEL = 0.12  # of the side: panels smaller than this are not a storyboard
MAX_GUTTER = 0.08  # of the side


@dataclass(frozen=True)
class Grid:
    rows: int
    cols: int
    panels: list[tuple[int, int, int, int]]  # (x0, y0, x1, y1) in source pixels, reading order

    @property
    def count(self) -> int:
        return len(self.panels)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    padded = np.concatenate([[False], flags, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _split(profile: np.ndarray, colours: np.ndarray) -> list[tuple[int, int]] | None:
    """Panel spans along one axis from per-line std ``profile``; None if the lines do not form a grid."""
    n = profile.size
    runs = _runs(profile < FLAT)
    inner = [r for r in runs if r[0] > 0 and r[1] < n]
    margins = [r for r in runs if r[0] == 0 or r[1] == n]
    if any(b - a > MAX_GUTTER * n for a, b in inner):
        return None
    start = next((b for a, b in margins if a == 0), 0)
    end = next((a for a, b in margins if b == n), n)
    cuts = [start] + [x for r in inner for x in r] + [end]
    spans = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts), 2)]
    sizes = [b - a for a, b in spans]
    if min(sizes) < MIN_PANEL * n or min(sizes) < 0.8 * max(sizes):
        return None
    if inner:
        widths = [b - a for a, b in inner]
        if max(widths) - min(widths) > 2 + 0.3 * max(widths):
            return None
        # All gutters one colour: the page's, not a coincidence of flat scenery.
        tones = np.array([colours[a:b].mean(axis=0) for a, b in inner])
        if np.abs(tones - tones.mean(axis=0)).max() > 12:
            return None
    return spans


def find_grid(img: Image.Image) -> Grid | None:
    """The panels of a storyboard picture, or None if it is one picture (a 1x1 'grid')."""
    scale = min(1.0, ANALYSIS_SIDE / max(img.size))
    small = img.convert("RGB")
    if scale < 1.0:
        small = small.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                             Image.Resampling.BOX)
    rgb = np.asarray(small, dtype=np.float32)
    grey = rgb.mean(axis=2)
    rows = _split(grey.std(axis=1), rgb.mean(axis=1))
    cols = _split(grey.std(axis=0), rgb.mean(axis=0))
    if rows is None or cols is None or len(rows) * len(cols) < 2:
        return None
    sx, sy = img.width / grey.shape[1], img.height / grey.shape[0]
    panels = []
    for y0, y1 in rows:
        for x0, x1 in cols:
            # One analysis pixel inside each edge: resampling smears the gutter into the border line.
            panels.append((min(img.width, round((x0 + 1) * sx)), min(img.height, round((y0 + 1) * sy)),
                           max(0, round((x1 - 1) * sx)), max(0, round((y1 - 1) * sy))))
    return Grid(rows=len(rows), cols=len(cols), panels=panels)
