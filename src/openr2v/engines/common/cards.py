"""Layers drawn onto a frame: pictures with an alpha mask, blended with integer numpy math.

Frames are composited in the encoder's own YUV 4:2:0 form (see ``media.encode.rgb_to_yuv420``):
half the bytes of RGB and no colour conversion per frame. Blending is linear, so blending in
Y'CbCr equals blending in R'G'B'. Each plane of a layer splits itself once into an opaque core
(a plain slice copy) and feathered border strips (the only pixels that need real blending).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from openr2v.media.encode import rgb_to_yuv420, yuv420_planes

__all__ = ["Layer", "feather_mask"]


def feather_mask(w: int, h: int, *, feather: int, radius: int) -> np.ndarray:
    """A w x h uint8 mask: a rounded rectangle, opaque inside, fading to 0 over ``feather`` px at the edge."""
    mask = Image.new("L", (w, h), 0)
    inset = feather // 2
    ImageDraw.Draw(mask).rounded_rectangle((inset, inset, w - 1 - inset, h - 1 - inset), radius=radius,
                                           fill=255)
    if feather > 1:
        mask = mask.filter(ImageFilter.GaussianBlur(feather / 3))
    return np.asarray(mask, dtype=np.uint8)


def _blend(dst: np.ndarray, src: np.ndarray, alpha: np.ndarray) -> None:
    """dst = src*a + dst*(1-a) in place; ``alpha`` is uint16 0..255; exact /255 rounding."""
    acc = src.astype(np.uint16) * alpha
    acc += dst.astype(np.uint16) * (255 - alpha)
    acc += 128
    dst[:] = (acc + (acc >> 8)) >> 8


def _opaque_core(alpha: np.ndarray) -> int:
    """The smallest inset m such that alpha[m:-m, m:-m] is fully opaque (0 when no core is)."""
    h, w = alpha.shape
    opaque = alpha == 255
    # A larger inset only removes pixels, so "the core is opaque" is monotonic in m: bisect.
    lo, hi = 0, min(h, w) // 2
    if hi == 0 or not opaque[hi:h - hi, hi:w - hi].all():
        return 0
    while lo < hi:
        mid = (lo + hi) // 2
        if opaque[mid:h - mid, mid:w - mid].all():
            hi = mid
        else:
            lo = mid + 1
    return lo


class _Plane:
    """One plane (Y, U or V) of a layer: its pictures and alpha, split into core and strips."""

    def __init__(self, pictures: list[np.ndarray], alpha: np.ndarray) -> None:
        self.pictures = pictures
        self.alpha = alpha.astype(np.uint16)
        h, w = alpha.shape
        m = _opaque_core(alpha)
        self.core = m if 0 < m < min(h, w) // 2 else 0
        self.strips: list[tuple[slice, slice, np.ndarray]] = []
        if self.core:
            for ys, xs in ((slice(0, m), slice(0, w)), (slice(h - m, h), slice(0, w)),
                           (slice(m, h - m), slice(0, m)), (slice(m, h - m), slice(w - m, w))):
                self.strips.append((ys, xs, self.alpha[ys, xs]))

    def draw(self, dst: np.ndarray, x: int, y: int, index: int, opacity: float) -> None:
        src = self.pictures[index % len(self.pictures)]
        h, w = self.alpha.shape
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, dst.shape[1]), min(y + h, dst.shape[0])
        if x0 >= x1 or y0 >= y1:
            return
        if (x0, y0, x1, y1) == (x, y, x + w, y + h) and opacity >= 1 and self.core:
            m = self.core
            dst[y + m:y + h - m, x + m:x + w - m] = src[m:h - m, m:w - m]
            for ys, xs, a in self.strips:
                _blend(dst[y + ys.start:y + ys.stop, x + xs.start:x + xs.stop], src[ys, xs], a)
            return
        sy, sx = slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)
        alpha: np.ndarray = self.alpha[sy, sx]
        if opacity < 1:
            alpha = alpha * np.uint16(round(opacity * 256)) >> 8
        _blend(dst[y0:y1, x0:x1], src[sy, sx], alpha)


class Layer:
    """A picture, or a loop of pictures of one size (even sides), with a fixed alpha mask."""

    def __init__(self, frames: Iterable[np.ndarray], alpha: np.ndarray) -> None:
        """``frames`` are RGB (h, w, 3); each is converted as it arrives, so a generator keeps memory low.

        A frame passed again as the same object (a held frame) shares the converted planes.
        """
        h, w = alpha.shape
        if h % 2 or w % 2:
            raise ValueError(f"a layer needs even sides for 4:2:0, got {w}x{h}")
        pictures: list[list[np.ndarray]] = [[], [], []]
        previous: np.ndarray | None = None
        for rgb in frames:
            if rgb is not previous:
                if rgb.shape != (h, w, 3):
                    raise ValueError(f"a layer frame is {rgb.shape}, its mask {alpha.shape}")
                converted = [p.copy() for p in yuv420_planes(rgb_to_yuv420(rgb))]
                previous = rgb
            for i in range(3):
                pictures[i].append(converted[i])
        if not pictures[0]:
            raise ValueError("a layer needs at least one frame")
        # Chroma is half size both ways: its alpha is the mean of each 2x2 block.
        alpha_c = ((alpha.reshape(h // 2, 2, w // 2, 2).astype(np.uint16).sum(axis=(1, 3)) + 2) // 4)
        self.size = (w, h)
        self._planes = [_Plane(pictures[0], alpha), _Plane(pictures[1], alpha_c.astype(np.uint8)),
                        _Plane(pictures[2], alpha_c.astype(np.uint8))]

    @property
    def frame_count(self) -> int:
        return len(self._planes[0].pictures)

    def draw(self, dst: np.ndarray, x: int, y: int, index: int = 0, opacity: float = 1.0) -> None:
        """Blend picture ``index`` (looped) onto the YUV 4:2:0 buffer ``dst`` with its top-left at (x, y).

        Chroma lands at (x // 2, y // 2): an odd position shifts colour by half a chroma sample,
        which is invisible, while luma keeps whole-pixel motion.
        """
        if opacity <= 0:
            return
        luma, u, v = yuv420_planes(dst)
        self._planes[0].draw(luma, x, y, index, opacity)
        self._planes[1].draw(u, x // 2, y // 2, index, opacity)
        self._planes[2].draw(v, x // 2, y // 2, index, opacity)
