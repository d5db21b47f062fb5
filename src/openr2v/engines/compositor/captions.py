"""Burned-in captions (the openr2v ``captions`` parameter): each dialogue line as a subtitle.

A caption reads "speaker: text", bottom centre, inside the line's window (where the soundtrack
actually placed it). Each is drawn once with Pillow as an RGBA overlay (white text, dark outline,
on a translucent box) and blended per frame like any other layer.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from openr2v.engines.common.cards import Layer

__all__ = ["Caption", "caption_layers", "captions_wanted"]

FONT = 0.045  # of the frame height
BOTTOM = 0.07  # gap under the caption, of the frame height
MAX_WIDTH = 0.84  # of the frame width


@dataclass
class Caption:
    layer: Layer
    x: int
    y: int
    first: int  # frames [first, last)
    last: int
    text: str


def captions_wanted(extensions: dict[str, object]) -> bool:
    """The ``captions`` extension: true/"on"/1 turn captions on; the default is off."""
    value = extensions.get("captions", False)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes")
    return bool(value)


def _render(text: str, width: int, height: int) -> Image.Image:
    size = max(14, round(height * FONT))
    font = ImageFont.load_default(size=size)
    stroke = max(1, size // 12)
    chars = max(12, int(MAX_WIDTH * width / (0.55 * size)))
    lines = textwrap.wrap(text, chars)[:3] or [""]
    boxes = [font.getbbox(ln, stroke_width=stroke) for ln in lines]
    line_h = round(size * 1.25)
    text_w = int(max(b[2] - b[0] for b in boxes))
    pad = size // 2
    w, h = text_w + 2 * pad, line_h * len(lines) + pad
    w, h = w + w % 2, h + h % 2  # even: layers are 4:2:0
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=pad // 2, fill=(0, 0, 0, 120))
    for i, (ln, box) in enumerate(zip(lines, boxes, strict=True)):
        x = (w - (box[2] - box[0])) // 2 - box[0]
        draw.text((x, pad // 2 + i * line_h), ln, font=font, fill=(255, 255, 255, 255), stroke_width=stroke,
                  stroke_fill=(10, 10, 10, 255))
    return img


def caption_layers(lines: list[tuple[str | None, float, float, str]], width: int, height: int,
                   fps: int) -> list[Caption]:
    """One overlay per (speaker, start, end, text), placed bottom centre and timed to its window."""
    out = []
    for speaker, start, end, text in lines:
        label = f"{speaker}: {text}" if speaker and speaker != "narrator" else text
        img = np.asarray(_render(label, width, height))
        layer = Layer([np.ascontiguousarray(img[:, :, :3])], np.ascontiguousarray(img[:, :, 3]))
        w, h = layer.size
        x = max(0, (width - w) // 2)
        y = max(0, height - h - round(BOTTOM * height))
        out.append(Caption(layer, x, y, round(start * fps), max(round(start * fps) + 1, round(end * fps)), label))
    return out
