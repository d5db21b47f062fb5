"""Space and time between the model and the contract: sizes, shot frames, 16 fps to 30 fps.

Wan2.1 renders at 16 fps, 4k+1 frames per call, with sides that are multiples of 16 (VAE stride 8
times patch 2). The contract wants an exact size at 30 fps and exactly ``duration * 30`` frames.
So each shot is rendered at the model's rate, long enough to cover its output frames, and
resampled in time; each frame is then scaled and centre-cropped to the contract size. numpy and
PyAV only: no torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import av
import numpy as np

from openr2v.domain.prompt import Shot
from openr2v.engines.common.sources import cover_box

__all__ = ["NATIVE_FPS", "Segment", "ShotFrames", "internal_size", "native_count", "resample", "segments",
           "shot_frames", "to_contract"]

NATIVE_FPS = 16  # Wan2.1's training and sampling rate (its configs' sample_fps)
MULTIPLE = 16  # sides: VAE spatial stride (8) x transformer patch (2)


def internal_size(width: int, height: int, max_area: int) -> tuple[int, int]:
    """The contract's aspect at about ``max_area`` pixels, each side the nearest multiple of 16.

    Never larger than the contract itself (upscaling inside the model costs time and adds nothing).
    """
    area = min(max_area, width * height)
    h = math.sqrt(area * height / width)
    w = h * width / height
    return max(MULTIPLE, round(w / MULTIPLE) * MULTIPLE), max(MULTIPLE, round(h / MULTIPLE) * MULTIPLE)


@dataclass(frozen=True)
class ShotFrames:
    shot: Shot
    first: int  # output frame range [first, last) at the contract's rate
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first


def shot_frames(shots: list[Shot], fps: int, frames: int) -> list[ShotFrames]:
    """Output frame ranges of the plan's shots: contiguous, covering [0, frames), hard cuts between."""
    starts = [min(frames, round(s.start * fps)) for s in shots] + [frames]
    if starts:
        starts[0] = 0
    out = [ShotFrames(s, a, b) for s, a, b in zip(shots, starts, starts[1:], strict=False) if b > a]
    if out and out[-1].last != frames:  # a plan that ends early: its last shot runs on
        out[-1] = ShotFrames(out[-1].shot, out[-1].first, frames)
    return out


def native_count(output_frames: int, fps: int) -> int:
    """Model frames (4k+1, at 16 fps) that cover ``output_frames`` frames at ``fps``."""
    # Output frame k sits at model position k * 16 / fps; blending needs the frame on each side of it.
    needed = math.ceil((output_frames - 1) * NATIVE_FPS / fps - 1e-9) + 1
    return 4 * math.ceil((needed - 1) / 4) + 1


@dataclass(frozen=True)
class Segment:
    start: int  # first model frame of the shot this call renders
    frames: int  # 4k+1
    continues: bool  # frame 0 is the previous segment's last frame (conditioning)


def segments(total: int, max_frames: int) -> list[Segment]:
    """Split ``total`` model frames into calls of at most ``max_frames`` (4k+1) frames.

    Each call after the first starts on the last frame of the one before (given to the model as a
    conditioning frame, so motion and looks carry over), so calls overlap by one frame.
    """
    out = [Segment(0, min(total, max_frames), False)]
    while out[-1].start + out[-1].frames < total:
        start = out[-1].start + out[-1].frames - 1
        left = total - start
        out.append(Segment(start, min(max_frames, 4 * math.ceil((left - 1) / 4) + 1), True))
    return out


def resample(native: np.ndarray, count: int, fps: int, *, blend: bool) -> list[np.ndarray]:
    """``count`` frames at ``fps`` from model frames at 16 fps (uint8, F x H x W x 3).

    ``blend`` mixes the two model frames around each output time by distance; otherwise the nearest
    one is repeated.
    """
    out = []
    last = native.shape[0] - 1
    for k in range(count):
        p = min(k * NATIVE_FPS / fps, last)
        if not blend:
            out.append(native[min(last, round(p))])
            continue
        i = int(p)
        f = p - i
        if f < 1e-6 or i >= last:
            out.append(native[i])
        else:
            mixed = native[i].astype(np.float32) * (1 - f) + native[i + 1].astype(np.float32) * f
            out.append(np.clip(mixed + 0.5, 0, 255).astype(np.uint8))
    return out


def to_contract(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """A model frame (RGB uint8) centre-cropped to the contract's aspect and scaled to exactly width x
    height, as the encoder's YUV 4:2:0 buffer (see ``media.encode.rgb_to_yuv420``).

    One swscale pass crops, scales and converts (~3 ms at 720p, against ~16 ms for PIL then a colour
    conversion): the model is slow enough without the frame loop adding to it.
    """
    h, w = frame.shape[:2]
    left, top, right, bottom = cover_box(w, h, width, height)
    x0, y0, x1, y1 = round(left), round(top), round(right), round(bottom)
    cropped = np.ascontiguousarray(frame[y0:y1, x0:x1])
    picture = av.VideoFrame.from_ndarray(cropped, format="rgb24")
    return picture.reformat(width=width, height=height, format="yuv420p", dst_colorspace="ITU709",
                            dst_color_range="MPEG", interpolation="BICUBIC").to_ndarray()
