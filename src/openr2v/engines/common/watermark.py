"""The "AI Generated" mark: rendered once as an RGBA layer, blended onto every frame."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from openr2v.engines.common.cards import Layer

__all__ = ["WATERMARK_TEXT", "watermark_layer"]

WATERMARK_TEXT = "AI Generated"


def watermark_layer(width: int, height: int) -> tuple[Layer, int, int]:
    """The mark as a layer and its top-left position in the lower-right corner of a width x height frame."""
    size = max(12, round(height * 0.04))
    font = ImageFont.load_default(size=size)
    stroke = max(1, size // 14)
    left, top, right, bottom = (int(v) for v in font.getbbox(WATERMARK_TEXT, stroke_width=stroke))
    pad = max(3, size // 5)  # room for the shadow's blur and offset
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    w, h = w + w % 2, h + h % 2  # even: layers are 4:2:0
    origin = (pad - left, pad - top)

    # A soft dark shadow under a dark outline keeps white text legible on bright plates.
    shadow = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    offset = max(1, size // 16)
    ImageDraw.Draw(shadow).text((origin[0] + offset, origin[1] + offset), WATERMARK_TEXT, font=font,
                                fill=(0, 0, 0, 140), stroke_width=stroke, stroke_fill=(0, 0, 0, 140))
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(1, size // 12)))
    text = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(text).text(origin, WATERMARK_TEXT, font=font, fill=(255, 255, 255, 255),
                              stroke_width=stroke, stroke_fill=(20, 20, 20, 255))
    # Semi-opaque: the mark should be seen, not hide the picture.
    text.putalpha(text.getchannel("A").point(lambda a: a * 200 // 255))
    mark = Image.alpha_composite(shadow, text)

    rgba = np.asarray(mark)
    layer = Layer(frames=[np.ascontiguousarray(rgba[:, :, :3])], alpha=np.ascontiguousarray(rgba[:, :, 3]))
    margin = max(8, round(height * 0.03))
    return layer, width - w - margin, height - h - margin
