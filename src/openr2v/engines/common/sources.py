"""Pictures from references: stills fitted to a box, video frames resampled to the output rate."""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageOps

from openr2v.errors import UnsupportedFileFormat
from openr2v.media.probe import open_container

__all__ = ["cover_box", "file_digest", "fit_still", "load_still", "video_frames"]


_DIGESTS: dict[tuple[str, int, int], str] = {}
_DIGESTS_LOCK = threading.Lock()


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), kept per (path, mtime, size): a reference's caches (its look, its
    cut-out) are keyed by what it holds, and a render asks for it more than once."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    with _DIGESTS_LOCK:
        if key in _DIGESTS:
            return _DIGESTS[key]
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    with _DIGESTS_LOCK:
        if len(_DIGESTS) >= 256:
            _DIGESTS.clear()
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def load_still(path: Path) -> Image.Image:
    """An image upright (EXIF orientation applied), as RGBA if it has transparency, else RGB."""
    # Only the decoders the contract accepts (the file was probed, this is defence in depth).
    with Image.open(path, formats=["JPEG", "PNG", "BMP", "WEBP"]) as opened:
        img = ImageOps.exif_transpose(opened)
        has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
        return img.convert("RGBA" if has_alpha else "RGB")


def cover_box(src_w: int, src_h: int, w: int, h: int) -> tuple[float, float, float, float]:
    """The centred crop of a src_w x src_h picture that has the aspect of w x h (for cover-fit)."""
    scale = max(w / src_w, h / src_h)
    cw, ch = w / scale, h / scale
    left, top = (src_w - cw) / 2, (src_h - ch) / 2
    return left, top, left + cw, top + ch


def fit_still(img: Image.Image, w: int, h: int, *, contain: bool = False) -> Image.Image:
    """Resize to exactly w x h: cover (crop the overflow) or, with ``contain``, pad with transparency."""
    if not contain:
        return img.resize((w, h), Image.Resampling.LANCZOS, box=cover_box(img.width, img.height, w, h))
    scale = min(w / img.width, h / img.height)
    inner = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                       Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    canvas.paste(inner, ((w - inner.width) // 2, (h - inner.height) // 2))
    return canvas


def video_frames(path: Path, w: int, h: int, fps: int, max_frames: int, *, label: str,
                 convert: Callable[[av.VideoFrame], Any] | None = None) -> Iterator[Any]:
    """Up to ``max_frames`` RGB frames cover-fitted to w x h, one per output frame time (k / fps).

    Each output time shows the latest source frame at or before it, so any source rate maps
    onto the output rate without changing the motion's speed; a held frame is yielded again
    as the same object. Yields at least one frame or raises ``UnsupportedFileFormat``.
    ``convert`` replaces the RGB conversion (it gets each decoded frame that will be shown).
    """
    to_picture = convert or (lambda frame: _cover(frame, w, h))
    count = 0
    last: Any = None
    pending: av.VideoFrame | None = None  # decoded, converted only once a slot shows it
    t = 0.0
    try:
        with open_container(path, field=label) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = float(stream.average_rate or stream.guessed_rate or fps)
            for i, frame in enumerate(container.decode(stream)):
                t = frame.time if frame.time is not None else i / rate
                # Slots whose time is before this frame keep the previous frame.
                while (pending is not None or last is not None) and count < max_frames and count / fps < t - 1e-6:
                    if pending is not None:
                        last, pending = to_picture(pending), None
                    yield last
                    count += 1
                if count >= max_frames:
                    return
                pending = frame
            if pending is not None:
                last = to_picture(pending)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise UnsupportedFileFormat(f"{label}: the video cannot be decoded ({exc}).", param=label) from None
    if last is None:
        raise UnsupportedFileFormat(f"{label}: the video has no decodable frames.", param=label)
    # The last frame holds for its own duration (one source frame period), and at least once.
    end = t + 1 / rate
    while count < max_frames and (count == 0 or count / fps < end - 1e-6):
        yield last
        count += 1


def _cover(frame: av.VideoFrame, w: int, h: int) -> np.ndarray:
    """Scale with swscale so the frame covers w x h, then crop the centre."""
    scale = max(w / frame.width, h / frame.height)
    sw, sh = max(w, math.ceil(frame.width * scale)), max(h, math.ceil(frame.height * scale))
    rgb = frame.reformat(width=sw, height=sh, format="rgb24", interpolation="AREA").to_ndarray()
    x, y = (sw - w) // 2, (sh - h) // 2
    return np.ascontiguousarray(rgb[y:y + h, x:x + w])
