"""Stage 1 of a render: turn the references into a background plate and placed layers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from openr2v.engines.base import RenderJob, ResolvedReference
from openr2v.engines.compositor.cards import Layer, feather_mask
from openr2v.engines.compositor.layout import Placement, choose_background, gradient_plate, place_cards
from openr2v.engines.compositor.sources import fit_still, load_still, video_frames
from openr2v.media.encode import rgb_to_yuv420

__all__ = ["Scene", "build_scene"]

# Decoded video-reference frames are held in memory at card size; past this budget a loop is shortened.
FRAME_BUDGET_BYTES = 256 * 1024 * 1024
# With a first frame, cards fade in over this long, so frame 0 is the first frame itself.
FADE_SECONDS = 0.5
_BACKDROP = (128, 128, 128, 255)  # what a transparent background image is flattened onto


@dataclass
class Card:
    label: str
    layer: Layer
    place: Placement


@dataclass
class Scene:
    plate: np.ndarray  # YUV 4:2:0 buffer (H * 3 // 2, W), see media.encode.rgb_to_yuv420
    cards: list[Card]
    fade_frames: int
    loop_seconds: dict[str, float] = field(default_factory=dict)  # video label -> picture loop length
    notes: dict[str, object] = field(default_factory=dict)


def build_scene(job: RenderJob, frame_budget: int = FRAME_BUDGET_BYTES) -> Scene:
    width, height, frames = job.width, job.height, job.duration * job.fps
    refs = list(job.references)
    background: str
    if job.first_frame is not None:
        plate = _plate_from(job.first_frame, width, height)
        background = "first_frame"
    elif (bg := choose_background(refs)) is not None:
        plate = _plate_from(bg, width, height)
        refs.remove(bg)
        background = bg.label
    else:
        plate = gradient_plate(width, height, job.seed)
        background = "gradient"
    plate = rgb_to_yuv420(plate)

    places = place_cards(refs, width, height, job.seed)
    videos = sum(r.kind == "video" for r in refs)
    cards: list[Card] = []
    loops: dict[str, float] = {}
    for ref, place in zip(refs, places, strict=True):
        mask = feather_mask(place.w, place.h, feather=max(4, round(0.05 * min(place.w, place.h))),
                            radius=max(4, round(0.06 * min(place.w, place.h))))
        if ref.kind == "video":
            # Frames are held as YUV 4:2:0, 1.5 bytes a pixel.
            cap = max(1, min(frames, frame_budget // max(1, videos * place.w * place.h * 3 // 2)))
            layer = Layer(video_frames(ref.path, place.w, place.h, job.fps, cap, label=ref.label), mask)
            loops[ref.label] = layer.frame_count / job.fps
            cards.append(Card(ref.label, layer, place))
        else:
            cards.append(Card(ref.label, _still_layer(ref, place, mask), place))

    fade = round(FADE_SECONDS * job.fps) if job.first_frame is not None else 0
    notes: dict[str, object] = {"background": background, "cards": [c.label for c in cards]}
    if loops:
        notes["video_loops_seconds"] = {k: round(v, 3) for k, v in loops.items()}
    return Scene(plate=plate, cards=cards, fade_frames=fade, loop_seconds=loops, notes=notes)


def _plate_from(ref: ResolvedReference, width: int, height: int) -> np.ndarray:
    img = load_still(ref.path)
    if img.mode == "RGBA":
        img = Image.alpha_composite(Image.new("RGBA", img.size, _BACKDROP), img)
    return np.asarray(fit_still(img.convert("RGB"), width, height), dtype=np.uint8).copy()


def _still_layer(ref: ResolvedReference, place: Placement, mask: np.ndarray) -> Layer:
    img = load_still(ref.path)
    cutout = img.mode == "RGBA" and img.getchannel("A").getextrema()[0] < 250
    if cutout:
        # An object on a transparent background is shown whole, cut out by its own alpha.
        fitted = fit_still(img, place.w, place.h, contain=True)
        alpha = np.asarray(fitted.getchannel("A"), dtype=np.uint16) * mask // 255
        rgb = np.asarray(fitted.convert("RGB"))
        return Layer([np.ascontiguousarray(rgb)], alpha.astype(np.uint8))
    rgb = np.asarray(fit_still(img.convert("RGB"), place.w, place.h))
    return Layer([np.ascontiguousarray(rgb)], mask)
