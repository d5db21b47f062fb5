"""Painting a polygon's worth of synthesised skin into the frame's Y'CbCr planes, with the photo's grain.

Shared by the mouth's inside and the blinking lids: the even-aligned box around a polygon, its
anti-aliased mask, the local grain (the luma's fine texture around it), and a blend of luma and
half-size chroma patches. Nothing here is a flat fill: callers add ``noise`` scaled by ``grain``.
"""

from __future__ import annotations

import cv2
import numpy as np

from openr2v.engines.compositor.blend import Planes

__all__ = ["GRAIN_RANGE", "blend_patch", "grain", "noise_patch", "noise_tile", "poly_box", "poly_mask"]

GRAIN_RANGE = (1.2, 6.0)  # luma levels: the painted grain's standard deviation
NOISE_SIDE = 256
_SHIFT = 3  # sub-pixel bits of polygon corners


def noise_tile(seed: int) -> np.ndarray:
    """A seeded unit-variance noise tile (anchored to what is painted, so it moves with it)."""
    return np.random.default_rng([seed, 61]).standard_normal((NOISE_SIDE, NOISE_SIDE)).astype(np.float32)


def noise_patch(noise: np.ndarray, w: int, h: int) -> np.ndarray:
    return noise[:h, :w] if h <= noise.shape[0] and w <= noise.shape[1] else np.resize(noise, (h, w))


def poly_box(poly: np.ndarray, frame: Planes, margin: int = 4) -> tuple[int, int, int, int] | None:
    """The even-aligned box around ``poly`` (output pixels) plus ``margin``, clipped to the frame; None if tiny."""
    fy = frame[0]
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + margin
    x0, y0 = max(0, int(x0)) & ~1, max(0, int(y0)) & ~1
    x1, y1 = min(fy.shape[1], int(x1) + 1) & ~1, min(fy.shape[0], int(y1) + 1) & ~1
    return (x0, y0, x1, y1) if x1 - x0 >= 4 and y1 - y0 >= 4 else None


def poly_mask(poly: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``poly`` filled anti-aliased into a uint8 mask (0..255) of ``box``."""
    x0, y0, x1, y1 = box
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - (x0, y0)) * (1 << _SHIFT)).astype(np.int32)], (255,), cv2.LINE_AA, _SHIFT)
    return mask


def grain(y: np.ndarray, where: np.ndarray) -> float:
    """The luma's fine texture (high-pass standard deviation) over ``where``, clamped to GRAIN_RANGE."""
    if np.count_nonzero(where) < 16:
        return GRAIN_RANGE[0]
    f = y.astype(np.float32)
    hp = (f - cv2.blur(f, (3, 3)))[where]
    return float(np.clip(hp.std() * 1.1, *GRAIN_RANGE))


def blend_patch(frame: Planes, box: tuple[int, int, int, int], y: np.ndarray, u: np.ndarray, v: np.ndarray,
                alpha: np.ndarray, alpha_c: np.ndarray) -> None:
    """Blend luma ``y`` (box size) by ``alpha`` and chroma ``u``, ``v`` (half size) by ``alpha_c`` (floats 0..1)."""
    x0, y0, x1, y1 = box
    fy, fu, fv = frame
    region = fy[y0:y1, x0:x1]
    region[:] = np.clip(region * (1 - alpha) + y * alpha + 0.5, 0, 255).astype(np.uint8)
    hh, hw = alpha_c.shape
    for plane, value in ((fu, u), (fv, v)):
        sub = plane[y0 // 2: y0 // 2 + hh, x0 // 2: x0 // 2 + hw]
        sub[:] = np.clip(sub * (1 - alpha_c) + value * alpha_c + 0.5, 0, 255).astype(np.uint8)
