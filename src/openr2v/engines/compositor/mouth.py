"""The inside of an open mouth, painted from the photo's own colours into the frame.

When the rig parts the lips, the warp stretches the thin line between them; this paints the gap:
a shadow that deepens from the lips' own colour toward the middle, a hint of upper teeth (the
photo's own when it shows them, else a dim off-white drawn from the lips and skin), and grain
matched to the photo's texture around the mouth, so the gap is never a flat fill.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from openr2v.engines.compositor import face_mesh as fm
from openr2v.engines.compositor.blend import Picture, Planes

__all__ = ["MouthLook", "mouth_look", "paint_interior"]

MIN_GAP = 1.0  # output pixels between the inner lips before anything is painted
NOISE_SIDE = 256
GRAIN_RANGE = (1.2, 6.0)  # luma levels: the painted grain's standard deviation


@dataclass
class MouthLook:
    lip: tuple[float, float, float]  # mean Y'CbCr of the lips in the neutral photo
    skin: tuple[float, float, float]  # of the skin between nose and lip
    teeth: tuple[float, float, float]
    teeth_hint: float  # how strongly teeth show at full opening (the photo's own: more)
    noise: np.ndarray  # a seeded unit-variance tile, anchored to the mouth


def _mean(pic: Picture, mask: np.ndarray) -> tuple[float, float, float]:
    half = cv2.resize(mask.astype(np.uint8), (pic.u.shape[1], pic.u.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    if not mask.any() or not half.any():
        return 128.0, 128.0, 128.0
    return float(pic.y[mask].mean()), float(pic.u[half].mean()), float(pic.v[half].mean())


def _poly_mask(shape: tuple[int, int], *polys: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(p).astype(np.int32) for p in polys], 1)
    return mask.astype(bool)


def mouth_look(pic: Picture, marks: np.ndarray, seed: int) -> MouthLook:
    """Colours of the neutral photo's lips, skin and teeth (if it shows any)."""
    shape = pic.y.shape
    outer = np.concatenate([marks[list(fm.UPPER_OUTER)], marks[list(fm.LOWER_OUTER)][::-1]])
    inner = np.concatenate([marks[list(fm.UPPER_INNER)], marks[list(fm.LOWER_INNER)][::-1]])
    inside_outer = _poly_mask(shape, outer)
    gap = _poly_mask(shape, inner)
    lips = inside_outer & ~gap
    lip = _mean(pic, lips)
    nose, top = marks[fm.NOSE_TIP], marks[fm.UPPER_OUTER[5]]
    face_h = float(np.linalg.norm(marks[fm.FOREHEAD] - marks[fm.CHIN]))
    r = max(2, round(0.02 * face_h))
    skin_box = np.zeros(shape, bool)
    cx, cy = round(float(nose[0])), round(float((nose[1] + top[1]) / 2))
    skin_box[max(0, cy - r):cy + r, max(0, cx - 2 * r):cx + 2 * r] = True
    skin = _mean(pic, skin_box & ~inside_outer)
    teeth, hint = None, 0.55
    opened = float(np.linalg.norm(marks[fm.UPPER_INNER[5]] - marks[fm.LOWER_INNER[5]])) / max(1.0, face_h)
    if opened > 0.015 and gap.sum() > 20:
        ys = pic.y[gap]
        bright = ys >= np.percentile(ys, 80)
        if float(ys[bright].mean()) > lip[0] + 25:  # the photo shows its teeth: use them
            teeth_mask = np.zeros(shape, bool)
            teeth_mask[gap] = bright
            teeth, hint = _mean(pic, teeth_mask), 0.9
    if teeth is None:
        ty = min(200.0, lip[0] + 0.6 * max(0.0, skin[0] - lip[0]) + 25)
        teeth = (ty, 128 + 0.25 * (lip[1] - 128), 128 + 0.25 * (lip[2] - 128))
    noise = np.random.default_rng([seed, 61]).standard_normal((NOISE_SIDE, NOISE_SIDE)).astype(np.float32)
    return MouthLook(lip=lip, skin=skin, teeth=teeth, teeth_hint=hint, noise=noise)


def _grain(y: np.ndarray, where: np.ndarray) -> float:
    """The luma's fine texture (high-pass standard deviation) over ``where``, clamped to GRAIN_RANGE."""
    if np.count_nonzero(where) < 16:
        return GRAIN_RANGE[0]
    f = y.astype(np.float32)
    hp = (f - cv2.blur(f, (3, 3)))[where]
    return float(np.clip(hp.std() * 1.1, *GRAIN_RANGE))


def paint_interior(frame: Planes, upper: np.ndarray, lower: np.ndarray, look: MouthLook, opacity: float) -> None:
    """Paint the gap between the inner lips ``upper`` and ``lower`` (corner to corner, output pixels)."""
    fy, fu, fv = frame
    gap = float(np.max(np.linalg.norm(upper - lower, axis=1)))
    if gap < MIN_GAP or opacity <= 0:
        return
    poly = np.concatenate([upper, lower[::-1]])
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 4
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 4
    x0, y0 = max(0, x0) & ~1, max(0, y0) & ~1
    x1, y1 = min(fy.shape[1], x1 + 1) & ~1, min(fy.shape[0], y1 + 1) & ~1
    w, h = x1 - x0, y1 - y0
    if w < 4 or h < 4:
        return
    shift = 3
    scale = 1 << shift
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - (x0, y0)) * scale).astype(np.int32)], 255, cv2.LINE_AA, shift)
    if not mask.any():
        return
    region = fy[y0:y1, x0:x1]
    grain = _grain(region, mask == 0)
    # Depth: how far inside the gap, relative to its height; the middle is darkest.
    dist = cv2.distanceTransform((mask > 127).astype(np.uint8), cv2.DIST_L2, 3)
    depth = np.clip(dist / max(1.0, 0.45 * gap), 0.0, 1.0) ** 0.7
    lip_y = look.lip[0]
    dark_y = max(24.0, 0.28 * lip_y)
    inner_y = (0.65 * lip_y) * (1 - depth) + dark_y * depth
    # Upper teeth: a band under the upper lip's middle, dimmer toward the corners.
    n = upper.shape[0]
    mid = upper[n // 5: n - n // 5]
    band = min(0.4 * gap, 0.14 * float(np.linalg.norm(upper[-1] - upper[0])))
    teeth_poly = np.concatenate([mid, (mid + (0, band))[::-1]])
    teeth = np.zeros((h, w), np.uint8)
    cv2.fillPoly(teeth, [np.round((teeth_poly - (x0, y0)) * scale).astype(np.int32)], 255, cv2.LINE_AA, shift)
    teeth = cv2.GaussianBlur(teeth, (0, 0), max(0.6, 0.08 * gap)).astype(np.float32) / 255
    cx = float((upper[0, 0] + upper[-1, 0]) / 2)
    half_w = max(1.0, float(abs(upper[-1, 0] - upper[0, 0])) / 2)
    xs = (np.arange(w, dtype=np.float32) + x0 - cx) / half_w
    fade = np.clip(1 - np.abs(xs) ** 2, 0, 1)[None, :]
    strength = look.teeth_hint * float(np.clip((gap - 2.0) / 6.0, 0.0, 1.0))
    t = teeth * fade * strength
    inner_y = inner_y * (1 - t) + look.teeth[0] * (0.75 + 0.25 * (1 - depth)) * t
    noise = look.noise[:h, :w] if h <= NOISE_SIDE and w <= NOISE_SIDE else np.resize(look.noise, (h, w))
    inner_y = inner_y + noise * grain
    a = mask.astype(np.float32) * (opacity / 255)
    region[:] = np.clip(region * (1 - a) + inner_y * a + 0.5, 0, 255).astype(np.uint8)
    # Chroma at half size: the lips' hue, deeper and less saturated inside; teeth toward neutral.
    hw, hh = w // 2, h // 2
    ac = cv2.resize(a, (hw, hh), interpolation=cv2.INTER_AREA)
    dc = cv2.resize(depth, (hw, hh), interpolation=cv2.INTER_AREA)
    tc = cv2.resize(t, (hw, hh), interpolation=cv2.INTER_AREA)
    nc = noise[: hh * 2: 2, : hw * 2: 2] * (0.3 * grain)
    for plane, lip_c, teeth_c in ((fu, look.lip[1], look.teeth[1]), (fv, look.lip[2], look.teeth[2])):
        sub = plane[y0 // 2: y0 // 2 + hh, x0 // 2: x0 // 2 + hw]
        inner = 128 + (lip_c - 128) * (0.9 - 0.3 * dc)
        inner = inner * (1 - tc) + teeth_c * tc + nc
        sub[:] = np.clip(sub * (1 - ac) + inner * ac + 0.5, 0, 255).astype(np.uint8)
