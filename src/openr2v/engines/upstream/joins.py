"""Upstream clips -> one video of the contract: each cut to its frame count, scaled to the size, joined
with hard cuts at the contract's fps (audio likewise, silence where a clip has none)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

from openr2v.media.audio import AUDIO_RATE, decode_audio, fit_length
from openr2v.media.encode import Mp4Writer

__all__ = ["join_clips"]


def _frames(path: Path, count: int, width: int, height: int, fps: int) -> list[np.ndarray]:
    """``count`` frames of ``path`` resampled to ``fps`` from its start: output frame i shows the source
    frame on screen at i / fps (the last one held if the clip is short)."""
    out: list[np.ndarray] = []
    current: np.ndarray | None = None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        for n, frame in enumerate(container.decode(stream)):
            t = float(frame.pts * tb) if frame.pts is not None and tb is not None else n / fps
            while current is not None and len(out) < count and len(out) / fps < t - 0.5 / fps:
                out.append(current)
            if len(out) >= count:
                break
            img = frame.to_image()
            current = np.asarray((_cover(img, width, height) if img.size != (width, height) else img).convert("RGB"))
    if current is None:
        raise ValueError(f"{path.name} has no frames")
    while len(out) < count:
        out.append(current)
    return out


def _cover(img: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover ``width`` x ``height`` and crop the middle (no bars, no distortion)."""
    scale = max(width / img.width, height / img.height)
    w, h = max(width, round(img.width * scale)), max(height, round(img.height * scale))
    img = img.resize((w, h), Image.Resampling.LANCZOS)
    left, top = (w - width) // 2, (h - height) // 2
    return img.crop((left, top, left + width, top + height))


def join_clips(clips: list[Path], frames: list[int], out: Path, width: int, height: int, fps: int, *,
               audio: bool, preset: str = "veryfast") -> Path:
    total = sum(frames)
    track = None
    if audio:
        parts = []
        for clip, n in zip(clips, frames, strict=True):
            samples = n * AUDIO_RATE // fps
            # A clip without sound decodes to nothing: silence for its span.
            parts.append(fit_length(decode_audio(clip, max_seconds=n / fps + 1), samples))
        track = np.concatenate(parts, axis=1)
    with Mp4Writer(out, width, height, total, fps=fps, audio=track, preset=preset) as writer:
        for clip, n in zip(clips, frames, strict=True):
            for rgb in _frames(clip, n, width, height, fps):
                writer.write(rgb)
    return out
