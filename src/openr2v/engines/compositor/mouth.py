"""The inside of an open mouth, painted from the photo's own colours into the frame.

When the rig parts the lips, the warp stretches the thin line between them; this paints the gap:
a shadow that deepens from the lips' own colour toward the middle, upper teeth (the photo's own,
hung from the upper lip, when it shows them; else a hint of them, a dim off-white drawn from the
lips and skin), and grain matched to the photo's texture around the mouth, so the gap is never a
flat fill.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from openr2v.engines.compositor import face_mesh as fm
from openr2v.engines.compositor.blend import Picture, Planes
from openr2v.engines.compositor.paint import blend_patch, grain, noise_patch, noise_tile, poly_box, poly_mask

__all__ = ["MouthLook", "TeethPatch", "mouth_look", "paint_interior"]

MIN_GAP = 1.0  # output pixels between the inner lips before anything is painted


@dataclass
class TeethPatch:
    """The photo's own teeth: the picture between its parted inner lips (Y'CbCr, chroma at half size), how much
    of each pixel is between the lips (0..1), and where the upper inner lip's corners and middle are (patch
    pixels)."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    mask: np.ndarray
    corners: np.ndarray  # (2, 2)
    middle: np.ndarray  # (2,)


@dataclass
class MouthLook:
    lip: tuple[float, float, float]  # mean Y'CbCr of the lips in the neutral photo
    skin: tuple[float, float, float]  # of the skin between nose and lip
    teeth: tuple[float, float, float]
    teeth_hint: float  # how strongly teeth show at full opening (the photo's own: more)
    noise: np.ndarray  # a seeded unit-variance tile, anchored to the mouth
    patch: TeethPatch | None = None  # a photo that shows its teeth: they are shown, moving with the upper lip


def _mean(pic: Picture, mask: np.ndarray) -> tuple[float, float, float]:
    half = cv2.resize(mask.astype(np.uint8), (pic.u.shape[1], pic.u.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    if not mask.any() or not half.any():
        return 128.0, 128.0, 128.0
    return float(pic.y[mask].mean()), float(pic.u[half].mean()), float(pic.v[half].mean())


def _poly_mask(shape: tuple[int, int], *polys: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(p).astype(np.int32) for p in polys], (1,))
    return mask.astype(bool)


def mouth_look(pic: Picture, marks: np.ndarray, seed: int) -> MouthLook:
    """Colours of the neutral photo's lips, skin and teeth (if it shows any)."""
    shape = (pic.y.shape[0], pic.y.shape[1])
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
    patch = _teeth_patch(pic, marks, inner) if hint > 0.6 else None
    return MouthLook(lip=lip, skin=skin, teeth=teeth, teeth_hint=hint, noise=noise_tile(seed), patch=patch)


def _teeth_patch(pic: Picture, marks: np.ndarray, inner: np.ndarray) -> TeethPatch | None:
    h, w = pic.y.shape
    x0, y0 = (np.floor(inner.min(axis=0)).astype(int) - 2) & ~1
    x1, y1 = (np.ceil(inner.max(axis=0)).astype(int) + 3) & ~1
    x0, y0, x1, y1 = max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    mask = poly_mask(inner, (x0, y0, x1, y1)).astype(np.float32) / 255
    ends = [fm.UPPER_INNER[0], fm.UPPER_INNER[-1], fm.UPPER_INNER[len(fm.UPPER_INNER) // 2]]
    anchors = marks[ends].astype(np.float64) - (x0, y0)
    return TeethPatch(pic.y[y0:y1, x0:x1].copy(), pic.u[y0 // 2:y1 // 2, x0 // 2:x1 // 2].copy(),
                      pic.v[y0 // 2:y1 // 2, x0 // 2:x1 // 2].copy(), mask, anchors[:2], anchors[2])


def _placed_teeth(patch: TeethPatch, upper: np.ndarray, box: tuple[int, int, int, int]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The photo's teeth hung from the upper lip as it is now (turned and scaled as the inner lip's corners are,
    its middle where the lip's middle is: the teeth stay under the lip as it lifts): luma, its coverage, chroma
    and the chroma's coverage, in ``box``."""
    x0, y0, x1, y1 = box
    (a0, a1), (b0, b1) = patch.corners, (upper[0], upper[-1])
    k = complex(*(b1 - b0)) / complex(*(a1 - a0)) if np.any(a1 != a0) else 1.0
    t = complex(*(upper[len(upper) // 2] - (x0, y0))) - k * complex(*patch.middle)
    m = np.array([[k.real, -k.imag, t.real], [k.imag, k.real, t.imag]])
    mc = m.copy()
    mc[:, 2] *= 0.5
    size, half = (x1 - x0, y1 - y0), ((x1 - x0) // 2, (y1 - y0) // 2)
    warp = cv2.INTER_LINEAR
    y = cv2.warpAffine(patch.y.astype(np.float32), m, size, flags=warp, borderMode=cv2.BORDER_REPLICATE)
    cover = cv2.warpAffine(patch.mask, m, size, flags=warp, borderMode=cv2.BORDER_CONSTANT, borderValue=(0,))
    u, v = (cv2.warpAffine(c.astype(np.float32), mc, half, flags=warp, borderMode=cv2.BORDER_REPLICATE)
            for c in (patch.u, patch.v))
    return y, cover, u, v, cv2.resize(cover, half, interpolation=cv2.INTER_AREA)


def paint_interior(frame: Planes, upper: np.ndarray, lower: np.ndarray, look: MouthLook, opacity: float,
                   tuck: float = 0.0) -> None:
    """Paint the gap between the inner lips ``upper`` and ``lower`` (corner to corner, output pixels); ``tuck``
    (f, v): the upper teeth rest on the lower lip, filling most of the gap."""
    gap = float(np.max(np.linalg.norm(upper - lower, axis=1)))
    if gap < MIN_GAP or opacity <= 0:
        return
    poly = np.concatenate([upper, lower[::-1]])
    box = poly_box(poly, frame)
    if box is None:
        return
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    mask = poly_mask(poly, box)
    if not mask.any():
        return
    g = grain(frame[0][y0:y1, x0:x1], mask == 0)
    # Depth: how far inside the gap, relative to its height; the middle is darkest.
    dist = cv2.distanceTransform((mask > 127).astype(np.uint8), cv2.DIST_L2, 3)
    depth = np.clip(dist / max(1.0, 0.45 * gap), 0.0, 1.0) ** 0.7
    lip_y = look.lip[0]
    dark_y = max(24.0, 0.28 * lip_y)
    inner_y = (0.65 * lip_y) * (1 - depth) + dark_y * depth
    noise = noise_patch(look.noise, w, h)
    # Upper teeth: the photo's own where it shows them, else a painted hint of them.
    own = _placed_teeth(look.patch, upper, box) if look.patch is not None else None
    t = _teeth_hint(upper, gap, tuck, box, look.teeth_hint) if own is None else None
    if t is not None:
        inner_y = inner_y * (1 - t) + look.teeth[0] * (0.75 + 0.25 * (1 - depth)) * t
    inner_y = inner_y + noise * g
    if own is not None:  # the photo's own teeth (and their grain) where they are, the shadow below them
        inner_y = inner_y * (1 - own[1]) + own[0] * own[1]
    a = mask.astype(np.float32) * (opacity / 255)
    # Chroma at half size: the lips' hue, deeper and less saturated inside; teeth toward neutral.
    hw, hh = w // 2, h // 2
    ac = cv2.resize(a, (hw, hh), interpolation=cv2.INTER_AREA)
    dc = cv2.resize(depth, (hw, hh), interpolation=cv2.INTER_AREA)
    nc = noise[: hh * 2: 2, : hw * 2: 2] * (0.3 * g)
    u, v = (128 + (c - 128) * (0.9 - 0.3 * dc) for c in look.lip[1:])
    if t is not None:
        tc = cv2.resize(t, (hw, hh), interpolation=cv2.INTER_AREA)
        u, v = u * (1 - tc) + look.teeth[1] * tc, v * (1 - tc) + look.teeth[2] * tc
    u, v = u + nc, v + nc
    if own is not None:
        u, v = u * (1 - own[4]) + own[2] * own[4], v * (1 - own[4]) + own[3] * own[4]
    blend_patch(frame, box, inner_y, u, v, a, ac)


def _teeth_hint(upper: np.ndarray, gap: float, tuck: float, box: tuple[int, int, int, int],
                hint: float) -> np.ndarray:
    """How much of each pixel of ``box`` a painted band of upper teeth covers: under the upper lip's middle,
    dimmer toward the corners; "under" and "along" are the mouth's own (a tilted head's teeth hang toward its
    chin)."""
    x0, y0, x1, y1 = box
    n = upper.shape[0]
    mid = upper[n // 5: n - n // 5]
    span = upper[-1] - upper[0]
    width = max(2.0, float(np.linalg.norm(span)))
    along = span / width
    band = min((0.4 + 0.5 * tuck) * gap, (0.14 + 0.1 * tuck) * width)
    teeth_poly = np.concatenate([mid, (mid + band * np.array([-along[1], along[0]]))[::-1]])
    teeth = cv2.GaussianBlur(poly_mask(teeth_poly, box), (0, 0), max(0.6, 0.08 * gap)).astype(np.float32) / 255
    centre = (upper[0] + upper[-1]) / 2
    xs = ((np.arange(x1 - x0, dtype=np.float32) + x0 - centre[0])[None, :] * along[0]
          + (np.arange(y1 - y0, dtype=np.float32) + y0 - centre[1])[:, None] * along[1]) / (width / 2)
    fade = np.clip(1 - xs ** 2, 0, 1)
    strength = max(hint * float(np.clip((gap - 2.0) / 6.0, 0.0, 1.0)), 0.85 * tuck)
    return teeth * fade * strength
