"""Probe a local media file: what it is, how big, how long, whether it has sound.

The format comes from the content (magic bytes), never from a name or a MIME type: a URL's
extension is a claim by the client, the bytes are the fact. Decoders are the attack surface,
so probing is bounded: image dimensions are read from the header before any pixel is
decoded, and FFmpeg is forced onto the demuxer the magic bytes chose (never auto-detection,
which could pick playlist or concat demuxers that open other files) with capped probe work.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

from openr2v.domain.models import REGISTRY, FileLimits
from openr2v.errors import InputDownloadFailed, InvalidParameter, UnsupportedFileFormat

__all__ = ["MAX_PIXELS", "MediaInfo", "check_limits", "open_container", "probe", "sniff_format"]

# Decompression-bomb guard: 40 MP is well above any accepted reference (2000x2000 = 4 MP).
MAX_PIXELS = 40_000_000
# An image is fully decoded (the truncation test) only if some model could accept its size: a
# 6000x6000 RGBA PNG under MAX_PIXELS would otherwise cost 144 MB to be refused for its sides.
DECODE_MAX_SIDE = max([s.image.max_side or 0 for s in REGISTRY.values()] + [2000])
# Bounds on FFmpeg's stream analysis (bytes / microseconds) so a crafted file can't stall the probe.
_PROBE_OPTIONS = {"probesize": "5000000", "analyzeduration": "5000000"}
# Accepted durations are compared with this slack: containers round, AAC adds a few ms.
DURATION_SLACK = 0.05

IMAGE_FORMATS = ("jpeg", "png", "bmp", "webp")
VIDEO_FORMATS = ("mp4", "mov")
AUDIO_FORMATS = ("wav", "mp3")
# Pillow's name for each image format we accept.
_PIL_NAMES = {"jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "webp": "WEBP"}
# The FFmpeg demuxer for each container we accept.
_DEMUXERS = {"mp4": "mov", "mov": "mov", "wav": "wav", "mp3": "mp3"}
# Spellings in FileLimits.formats that name the same content format.
_ALIASES = {"jpg": "jpeg"}


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # image | video | audio
    format: str  # jpeg, png, bmp, webp, mp4, mov, wav, mp3
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration: float | None = None  # seconds, video and audio
    fps: float | None = None
    has_audio: bool = False
    video_codec: str | None = None
    audio_codec: str | None = None
    sample_rate: int | None = None


def sniff_format(head: bytes) -> str | None:
    """The content format named by a file's first bytes (>= 16 of them), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"BM") and len(head) >= 14:
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp":
        # QuickTime files declare the 'qt  ' major brand; everything else ISO-BMFF is MP4 to us.
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mov"  # old QuickTime files start straight with an atom, no ftyp
    if head.startswith(b"ID3"):
        return "mp3"
    # A bare MPEG audio frame: 11 sync bits, layer III, a valid bitrate and sample-rate index.
    if len(head) >= 4 and head[0] == 0xFF and (head[1] & 0xE6) == 0xE2:
        if (head[2] >> 4) not in (0, 15) and ((head[2] >> 2) & 3) != 3:
            return "mp3"
    return None


def probe(path: Path, *, field: str = "file") -> MediaInfo:
    """Identify and measure ``path`` by content; ``UnsupportedFileFormat`` if it isn't usable."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(32)
    except OSError as exc:
        raise UnsupportedFileFormat(f"{field}: the file cannot be read ({exc.strerror}).", param=field) from None
    fmt = sniff_format(head)
    if fmt is None:
        raise UnsupportedFileFormat(
            f"{field}: the content is not a supported image, video or audio file "
            f"(accepted: {', '.join(IMAGE_FORMATS + VIDEO_FORMATS + AUDIO_FORMATS)}).", param=field)
    if fmt in IMAGE_FORMATS:
        return _probe_image(path, fmt, size, field)
    return _probe_av(path, fmt, size, field)


def _probe_image(path: Path, fmt: str, size: int, field: str) -> MediaInfo:
    try:
        # Pillow's own bomb check warns/raises at other thresholds; ours runs first, from the header.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=[_PIL_NAMES[fmt]]) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise UnsupportedFileFormat(
                        f"{field}: the image is {width}x{height} ({width * height / 1e6:.0f} megapixels); "
                        f"images over {MAX_PIXELS // 1_000_000} megapixels are refused.", param=field)
                if max(width, height) <= DECODE_MAX_SIDE:
                    img.load()  # a full decode is the only reliable test for truncated or corrupt data
    except UnsupportedFileFormat:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own header check, past twice its limit
        raise UnsupportedFileFormat(f"{field}: {exc} Images over {MAX_PIXELS // 1_000_000} megapixels are "
                                    f"refused.", param=field) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnsupportedFileFormat(f"{field}: the {fmt} image is corrupt or truncated ({exc}).",
                                    param=field) from None
    if width < 1 or height < 1:
        raise UnsupportedFileFormat(f"{field}: the image has no pixels.", param=field)
    return MediaInfo(kind="image", format=fmt, size_bytes=size, width=width, height=height)


def open_container(path: Path, *, field: str = "file") -> av.container.InputContainer:
    """Open an audio/video file with the demuxer its magic bytes name, never FFmpeg's guess."""
    with path.open("rb") as fh:
        fmt = sniff_format(fh.read(32))
    if fmt not in _DEMUXERS:
        raise UnsupportedFileFormat(f"{field}: the content is not a supported video or audio file "
                                    f"(accepted: {', '.join(VIDEO_FORMATS + AUDIO_FORMATS)}).", param=field)
    return av.open(str(path), format=_DEMUXERS[fmt], options=_PROBE_OPTIONS)


def _probe_av(path: Path, fmt: str, size: int, field: str) -> MediaInfo:
    try:
        with av.open(str(path), format=_DEMUXERS[fmt], options=_PROBE_OPTIONS) as container:
            return _describe(container, path, fmt, size, field)
    except UnsupportedFileFormat:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise UnsupportedFileFormat(f"{field}: the {fmt} file is corrupt or truncated ({exc}).",
                                    param=field) from None


def _describe(container: av.container.InputContainer, path: Path, fmt: str, size: int,
              field: str) -> MediaInfo:
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    stream = video or audio
    if stream is None:
        raise UnsupportedFileFormat(f"{field}: the {fmt} file holds no video or audio stream.", param=field)
    duration = _duration(container, stream)
    if video is not None:
        width, height = video.codec_context.width, video.codec_context.height
        if width * height > MAX_PIXELS or width < 1 or height < 1:
            raise UnsupportedFileFormat(f"{field}: the video frame size {width}x{height} is not usable.",
                                        param=field)
        rate = video.average_rate or video.guessed_rate
        if duration is not None:
            _check_complete(container, video, duration, fmt, field)
            container.seek(0)
        # Decoding the first frame proves the stream is real, at the cost of one frame.
        next(container.decode(video=0))
        return MediaInfo(kind="video", format=fmt, size_bytes=size, width=width, height=height,
                         duration=duration, fps=float(rate) if rate else None, has_audio=audio is not None,
                         video_codec=video.codec_context.name,
                         audio_codec=audio.codec_context.name if audio else None,
                         sample_rate=audio.codec_context.sample_rate if audio else None)
    assert audio is not None
    next(container.decode(audio=0))
    return MediaInfo(kind="audio", format=fmt, size_bytes=size, duration=duration, has_audio=True,
                     audio_codec=audio.codec_context.name, sample_rate=audio.codec_context.sample_rate)


def _check_complete(container: av.container.InputContainer, video: av.stream.Stream, duration: float, fmt: str,
                    field: str) -> None:
    """Refuse a video whose data stops short of what its index promises (a cut-off download).

    The index (moov) may sit before the data, so a truncated file still opens and even decodes
    its first frame; reading every packet's place and time without decoding (milliseconds for a
    30 s clip) shows how much picture is really there.
    """
    start: float | None = None
    end = 0.0
    for packet in container.demux(video):
        if packet.size == 0 or packet.pts is None or packet.time_base is None:
            continue
        if packet.is_corrupt:
            raise UnsupportedFileFormat(f"{field}: the {fmt} file is corrupt or truncated (a damaged video packet at "
                                        f"{float(packet.pts * packet.time_base):.2f} s).", param=field)
        t = float(packet.pts * packet.time_base)
        start = t if start is None else min(start, t)
        end = max(end, t + float((packet.duration or 0) * packet.time_base))
    covered = end - (start or 0.0)
    if duration - covered > max(0.25, 0.02 * duration):
        raise UnsupportedFileFormat(f"{field}: the {fmt} file is truncated: it declares {duration:.2f} s of video "
                                    f"but holds {covered:.2f} s.", param=field)


def _duration(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _accepted(limits: FileLimits) -> list[str]:
    """The limit's formats in its own order (the documents' order), aliases folded."""
    return list(dict.fromkeys(_ALIASES.get(f.lower(), f.lower()) for f in limits.formats))


def check_limits(info: MediaInfo, limits: FileLimits, field: str, expected_kind: str | None) -> None:
    """Raise the domain error for the first limit ``info`` breaks; return None if it fits."""
    accepted = _accepted(limits)
    if expected_kind is not None and info.kind != expected_kind:
        raise UnsupportedFileFormat(
            f"{field}: expected {'an' if expected_kind[0] in 'aeiou' else 'a'} {expected_kind} file but the "
            f"content is {info.format} {info.kind}; accepted formats: {', '.join(accepted)}.", param=field)
    if info.format not in accepted:
        raise UnsupportedFileFormat(f"{field}: file format {info.format} is not supported; accepted formats: "
                                    f"{', '.join(accepted)}.", param=field)
    if info.size_bytes > limits.max_bytes:
        raise InputDownloadFailed(f"{field}: the file is {_mb(info.size_bytes)}; the limit is "
                                  f"{_mb(limits.max_bytes)}.", param=field)
    if info.width is not None and info.height is not None:
        small, large = min(info.width, info.height), max(info.width, info.height)
        if limits.min_side is not None and small < limits.min_side:
            raise InvalidParameter(f"{field}: the {info.kind} is {info.width}x{info.height}; width and height "
                                   f"must each be at least {limits.min_side} pixels.", param=field)
        if limits.max_side is not None and large > limits.max_side:
            raise InvalidParameter(f"{field}: the {info.kind} is {info.width}x{info.height}; width and height "
                                   f"must each be at most {limits.max_side} pixels.", param=field)
    if info.kind in ("video", "audio"):
        if info.duration is None:
            raise UnsupportedFileFormat(f"{field}: the {info.kind}'s duration cannot be determined.", param=field)
        if limits.min_seconds is not None and info.duration < limits.min_seconds - DURATION_SLACK:
            raise InvalidParameter(f"{field}: the {info.kind} lasts {info.duration:.2f} s; the minimum is "
                                   f"{limits.min_seconds:g} s.", param=field)
        if limits.max_seconds is not None and info.duration > limits.max_seconds + DURATION_SLACK:
            raise InvalidParameter(f"{field}: the {info.kind} lasts {info.duration:.2f} s; the maximum is "
                                   f"{limits.max_seconds:g} s.", param=field)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"
