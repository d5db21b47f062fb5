"""Plates: the picture behind the actors, and the canvas each shot's camera moves over.

The world is the output frame at a wide view: W x H world units. A plate is a source picture
cover-fitted to that world (a crop box in its own pixels). Each shot renders the part of the world
its camera will see (its region) at the scale its tightest view needs, once, as 4:2:0 planes; the
per-frame camera is then one resample of that canvas. Close-ups blur the canvas a little: a
shallow depth of field that also hides the upscaling of a small background.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageFilter

from openr2v.engines.common.sources import cover_box
from openr2v.engines.compositor.blend import Planes
from openr2v.engines.compositor.camera import View
from openr2v.media.encode import rgb_to_yuv420, yuv420_planes

__all__ = ["Plate", "derived_plate", "plate_from", "render_canvas"]

DERIVED_BLUR = 0.03  # of the frame width: a derived plate is a soft colour field, not a place
DERIVED_DIM = 0.55


@dataclass
class Plate:
    name: str  # what it came from, for the notes: a label, "first frame", "derived from X", "X panel 3"
    image: Image.Image  # RGB
    box: tuple[float, float, float, float]  # the crop of ``image`` that covers the world
    width: int  # world size
    height: int

    def window_x(self) -> float | None:
        """World x of a window: the brightest wide column band in the upper part, if one stands out."""
        small = np.asarray(self.image.resize((160, 90), Image.Resampling.BOX, box=self.box), dtype=np.float32)
        luma = small[:60].mean(axis=2)  # upper two thirds: windows, not floors
        profile = luma.mean(axis=0)
        band = 24  # 15% of the width
        smooth = np.convolve(profile, np.ones(band) / band, mode="valid")
        best = int(np.argmax(smooth))
        if smooth[best] < profile.mean() + 12:
            return None
        return (best + band / 2) / 160 * self.width


def plate_from(img: Image.Image, width: int, height: int, name: str) -> Plate:
    rgb = img.convert("RGB")
    x0, y0, x1, y1 = cover_box(rgb.width, rgb.height, width, height)
    # Clamped: float rounding can put the crop a hair outside the picture, which Pillow refuses.
    box = (max(0.0, x0), max(0.0, y0), min(float(rgb.width), x1), min(float(rgb.height), y1))
    return Plate(name=name, image=rgb, box=box, width=width, height=height)


def derived_plate(img: Image.Image, width: int, height: int, name: str) -> Plate:
    """A plate from a character's own picture: enlarged, blurred and dimmed, so its colours set the mood."""
    rgb = img.convert("RGB")
    fitted = rgb.resize((width // 4, height // 4), Image.Resampling.BOX,
                        box=cover_box(rgb.width, rgb.height, width, height))
    soft = fitted.filter(ImageFilter.GaussianBlur(DERIVED_BLUR * width / 4))
    dim = Image.eval(soft, lambda v: int(v * DERIVED_DIM + 12))
    return Plate(name=name, image=dim, box=(0.0, 0.0, float(dim.width), float(dim.height)), width=width,
                 height=height)


def render_canvas(plate: Plate, region: View, scale: float, blur: float = 0.0) -> tuple[Planes, tuple[int, int]]:
    """The world ``region`` of ``plate`` at ``scale`` canvas pixels per world unit, as 4:2:0 planes.

    Returns the planes and the canvas size; a canvas pixel (cx, cy) is the world point
    region.origin + (cx, cy) / scale.
    """
    cw = max(2, 2 * round(region.w * scale / 2))
    ch = max(2, 2 * round(region.h * scale / 2))
    bx0, by0, bx1, by1 = plate.box
    sx, sy = (bx1 - bx0) / plate.width, (by1 - by0) / plate.height
    # The region's own corners in the source, from the canvas size actually used (rounding kept exact).
    iw, ih = plate.image.size
    src = (max(0.0, bx0 + region.x * sx), max(0.0, by0 + region.y * sy),
           min(float(iw), bx0 + (region.x + cw / scale) * sx), min(float(ih), by0 + (region.y + ch / scale) * sy))
    # Lanczos both ways: a first frame's plate must match the first frame itself (PSNR > 30 dB at frame 0).
    canvas = np.asarray(plate.image.resize((cw, ch), Image.Resampling.LANCZOS, box=src))
    if blur > 0:
        canvas = cv2.GaussianBlur(canvas, (0, 0), blur * cw)
    y, u, v = yuv420_planes(rgb_to_yuv420(np.ascontiguousarray(canvas)))
    return (y.copy(), u.copy(), v.copy()), (cw, ch)
