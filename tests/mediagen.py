"""Synthesize small test media on the fly: images, videos (with or without sound), audio clips.

Everything is seeded and fast (ultrafast x264, tiny sizes), so fixtures can build what they
need instead of shipping binary files. The container follows the path's suffix
(.mp4/.mov for video, .wav/.mp3 for audio); the content is real, so probes see real files.
"""

from __future__ import annotations

import io
import struct
import wave
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

__all__ = ["corrupt_container", "jpeg_bomb", "make_audio", "make_image", "make_video", "png_bomb", "tone",
           "webp_bomb"]

RATE = 48_000
_PIL_FORMATS = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "bmp": "BMP", "webp": "WEBP"}


def _picture(w: int, h: int, seed: int) -> Image.Image:
    """A seeded gradient with a few shapes: enough structure for codecs and PSNR checks."""
    rng = np.random.default_rng(seed)
    c0, c1 = rng.integers(30, 225, 3), rng.integers(30, 225, 3)
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    grad = (c0 * (1 - t) + c1 * t).astype(np.uint8)
    img = Image.fromarray(np.broadcast_to(grad, (h, w, 3)).copy())
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, w * 3 // 4)), int(rng.integers(0, h * 3 // 4))
        x1, y1 = x0 + int(rng.integers(w // 10, w // 3)), y0 + int(rng.integers(h // 10, h // 3))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse((x0, y0, x1, y1), fill=colour) if rng.random() < 0.5 else draw.rectangle(
            (x0, y0, x1, y1), fill=colour)
    return img


def make_image(path: Path, w: int, h: int, fmt: str = "png", seed: int = 0) -> Path:
    """Write a w x h image in ``fmt`` (jpeg, png, bmp, webp) regardless of the path's suffix."""
    _picture(w, h, seed).save(path, format=_PIL_FORMATS[fmt.lower()])
    return path


def tone(seconds: float, pitch_hz: float, *, seed: int = 0, rate: int = RATE) -> np.ndarray:
    """A voice-ish buzz: a harmonic tone under a syllable-rate envelope, float32 mono (1, n)."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    phase = 2 * np.pi * pitch_hz * t
    buzz = sum(np.sin(k * phase) / k for k in range(1, 6))
    rng = np.random.default_rng(seed)
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * (3.0 + rng.random()) * t) ** 2
    return (0.25 * buzz * syllables).astype(np.float32)[None, :]


def make_audio(path: Path, seconds: float, fmt: str = "wav", pitch_hz: float = 200.0, seed: int = 0) -> Path:
    """Write a mono tone clip as 16-bit WAV or as MP3."""
    samples = tone(seconds, pitch_hz, seed=seed)
    if fmt == "wav":
        pcm = (np.clip(samples[0], -1, 1) * 32767).astype("<i2")
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(pcm.tobytes())
        return path
    if fmt != "mp3":
        raise ValueError(f"unknown audio format {fmt!r}")
    with av.open(str(path), "w", format="mp3") as c:
        s = c.add_stream("libmp3lame", rate=RATE, layout="mono")
        _encode_audio(c, s, samples, "mono")
    return path


def make_video(path: Path, w: int, h: int, seconds: float, fps: int = 30, audio: bool = True, seed: int = 0,
               pitch_hz: float = 180.0, faststart: bool = False) -> Path:
    """Write an H.264 video (MP4 or MOV by suffix): a sliding seeded picture, AAC tone if ``audio``;
    ``faststart`` puts the index (moov) before the data, so a truncated copy still opens."""
    fmt = "mov" if path.suffix.lower() == ".mov" else "mp4"
    base = np.asarray(_picture(w * 2, h, seed))
    n = int(round(seconds * fps))
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format=fmt, options=options) as c:
        v = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "28", "threads": "1"})
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = c.add_stream("aac", rate=RATE, layout="mono") if audio else None
        for i in range(n):
            x = (i * 4) % w  # the picture slides, so consecutive frames differ
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, x:x + w]), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
        if a is not None:
            _encode_audio(c, a, tone(seconds, pitch_hz, seed=seed), "mono")
    return path


def _encode_audio(c: av.container.OutputContainer, stream: av.stream.Stream, samples: np.ndarray,
                  layout: str) -> None:
    size = 1152
    for start in range(0, samples.shape[1], size):
        chunk = np.ascontiguousarray(samples[:, start:start + size])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
        c.mux(stream.encode(frame))
    c.mux(stream.encode(None))


# -- hostile files: small on disk, huge or broken once decoded ----------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(w: int, h: int, *, bit_depth: int = 1, color_type: int = 0) -> bytes:
    """A complete, valid PNG of w x h zero pixels: ~200 KB for 40000x40000 (1.6 gigapixels)."""
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    row = bytes((w * channels * bit_depth + 7) // 8 + 1)  # filter byte 0, then zero samples
    deflate = zlib.compressobj(9)
    idat = b"".join(deflate.compress(row) for _ in range(h)) + deflate.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def webp_bomb(side: int = 16383) -> bytes:
    """A lossless WEBP whose header declares side x side (the VP8L maximum, 268 megapixels): a real
    64x64 file with the dimensions patched, as an attacker would."""
    buf = io.BytesIO()
    _picture(64, 64, 0).save(buf, format="WEBP", lossless=True)
    data = bytearray(buf.getvalue())
    at = data.find(b"VP8L") + 8  # chunk payload: signature 0x2f, then 14+14 bits of width-1, height-1
    assert data[at] == 0x2F, "not a VP8L bitstream"
    flags = struct.unpack("<I", data[at + 1:at + 5])[0] & ~((1 << 28) - 1)  # alpha and version bits
    data[at + 1:at + 5] = struct.pack("<I", flags | (side - 1) | (side - 1) << 14)
    return bytes(data)


def jpeg_bomb(w: int = 65000, h: int = 65000) -> bytes:
    """A JPEG whose frame header (SOF0) declares w x h: a real 64x64 file, patched."""
    buf = io.BytesIO()
    _picture(64, 64, 0).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    at = data.find(b"\xff\xc0")  # SOF0: marker, length (2), precision (1), height (2), width (2)
    data[at + 5:at + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def corrupt_container(fmt: str, size: int = 64 * 1024, seed: int = 0) -> bytes:
    """An ``ftyp`` box of an MP4 (``isom``) or MOV (``qt  ``) followed by random bytes."""
    brand = b"qt  " if fmt == "mov" else b"isom"
    ftyp = struct.pack(">I", 20) + b"ftyp" + brand + struct.pack(">I", 0x200) + brand
    return ftyp + np.random.default_rng(seed).bytes(size)
