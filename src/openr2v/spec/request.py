"""The dialect-neutral generation request and its validation against the registry.

Dialects build a ``GenerationRequest`` from their wire JSON, then call ``check_inputs``,
which fails fast with an ``InvalidParameter`` naming the field (in the dialect's own
spelling, through ``FieldNames``) and the limit.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from openr2v.errors import AccessDenied, InvalidParameter, InvalidURL
from openr2v.spec.models import ModelSpec, ratio_size

__all__ = [
    "FieldNames",
    "GenerationRequest",
    "Reference",
    "check_inputs",
    "guess_kind",
    "source_scheme",
]

Kind = Literal["image", "video"]

IMAGE_EXTS = {"jpg", "jpeg", "png", "bmp", "webp"}
VIDEO_EXTS = {"mp4", "mov"}
AUDIO_EXTS = {"wav", "mp3"}
# Media formats the contract does not take; a URL ending in one is refused at submit. Other
# extensions (or none, e.g. image.php?id=1) are judged by the content once fetched.
UNSUPPORTED_MEDIA_EXTS = {"gif", "tif", "tiff", "heic", "heif", "avif", "svg", "ico", "psd", "raw", "avi", "mkv",
                          "webm", "flv", "wmv", "m4v", "mpg", "mpeg", "3gp", "ts", "ogg", "ogv", "flac", "aac",
                          "m4a", "opus", "wma"}
DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?P<params>(;[\w-]+=[^;,]*)*)(?P<b64>;base64)?,", re.I)
IMAGE_MIMES = {"image/jpeg": "jpeg", "image/jpg": "jpeg", "image/png": "png", "image/bmp": "bmp",
               "image/webp": "webp"}


class Reference(BaseModel):
    """One reference, in prompt order. ``label`` is what the prompt calls it."""

    kind: Kind | None = None  # None: not known until the file is probed
    source: str
    voice: str | None = None
    label: str
    field: str = ""  # the wire path, for messages: input.reference_urls[1], input.media[0].url


class GenerationRequest(BaseModel):
    """What a client asked for, whatever dialect it spoke."""

    model: str
    prompt: str = ""
    negative_prompt: str | None = None
    references: list[Reference] = Field(default_factory=list)
    first_frame: str | None = None
    audio_url: str | None = None
    size: tuple[int, int] | None = None  # None only while a first frame decides the aspect
    resolution: str | None = None
    ratio: str | None = None
    duration: int = 5
    audio: bool = True
    shot_type: str = "single"
    watermark: bool = False
    seed: int | None = None
    prompt_extend: bool = True
    # openr2v extensions (documented in the README): captions, callback_url, ...
    extensions: dict[str, Any] = Field(default_factory=dict)

    def size_str(self) -> str | None:
        return f"{self.size[0]}*{self.size[1]}" if self.size else None


class FieldNames:
    """Maps canonical field names to the dialect's wire spelling for error messages."""

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self._names = dict(names or {})

    def __call__(self, canonical: str) -> str:
        return self._names.get(canonical, f"parameters.{canonical}")


def source_scheme(source: str) -> str:
    if source.startswith("data:"):
        return "data"
    return urlsplit(source).scheme.lower()


def guess_kind(source: str) -> Kind | None:
    """image / video from a data URI's MIME type or the URL path's extension; None if unsure."""
    if source.startswith("data:"):
        m = DATA_URI.match(source)
        if m and m.group("mime").lower().startswith("image/"):
            return "image"
        if m and m.group("mime").lower().startswith("video/"):
            return "video"
        return None
    ext = extension(source)
    if ext in IMAGE_EXTS:
        return "image"
    if ext in VIDEO_EXTS:
        return "video"
    return None


def extension(source: str) -> str:
    path = urlsplit(source).path
    return path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""


def _check_source(source: Any, field: str, *, data_ok: bool, allowed_exts: set[str] | None = None) -> str:
    if not isinstance(source, str) or not source.strip():
        raise InvalidParameter(f"{field} must be a non-empty URL string.", param=field)
    scheme = source_scheme(source)
    if scheme == "data":
        if not data_ok:
            raise InvalidURL(f"{field}: base64 data URIs are not accepted here; use an HTTP or HTTPS URL.",
                             param=field)
        m = DATA_URI.match(source)
        if not m or not m.group("b64"):
            raise InvalidURL(f"{field}: a data URI must have the form data:{{MIME_type}};base64,{{data}}.",
                             param=field)
        mime = m.group("mime").lower()
        if mime not in IMAGE_MIMES:
            raise InvalidParameter(
                f"{field}: data URI MIME type {mime!r} is not supported; use one of "
                f"{', '.join(sorted(set(IMAGE_MIMES)))}.", param=field)
        payload = source[m.end():]
        try:
            base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidURL(f"{field}: the base64 data is not valid base64.", param=field) from None
        return source
    if scheme not in ("http", "https", "oss"):
        raise InvalidURL(f"{field}: URL scheme {scheme or '(none)'!r} is not supported; use HTTP or HTTPS.",
                         param=field)
    parts = urlsplit(source)
    if not parts.netloc:
        raise InvalidURL(f"{field}: {source[:200]!r} is not a valid URL.", param=field)
    ext = extension(source)
    if allowed_exts is not None or ext in UNSUPPORTED_MEDIA_EXTS:
        allowed_exts = allowed_exts or IMAGE_EXTS | VIDEO_EXTS
        if ext and ext not in allowed_exts:
            raise InvalidParameter(
                f"{field}: file format {ext!r} is not supported; use one of {', '.join(sorted(allowed_exts))}.",
                param=field)
    return source


def check_inputs(req: GenerationRequest, spec: ModelSpec, region: str, names: FieldNames | None = None,
                 *, size_explicit: bool = True) -> GenerationRequest:
    """Validate a request against the registry; return it with defaults filled in.

    Raises ``InvalidParameter`` (or a subclass) naming the offending field and its limit,
    or ``AccessDenied`` when the model is not offered in ``region``.
    """
    n = names or FieldNames()
    if region not in spec.regions:
        raise AccessDenied(f"Model {spec.name!r} is not offered in region {region!r}; it is available in "
                           f"{', '.join(spec.regions)}.", param="model")

    # 1. Prompt.
    if not isinstance(req.prompt, str) or not req.prompt.strip():
        raise InvalidParameter(f"{n('prompt')} is required and must be a non-empty string.", param=n("prompt"))
    if len(req.prompt) > spec.max_prompt_chars:
        raise InvalidParameter(f"{n('prompt')} is {len(req.prompt)} characters; the limit for {spec.name} is "
                               f"{spec.max_prompt_chars}.", param=n("prompt"))
    if req.negative_prompt is not None and len(req.negative_prompt) > spec.max_negative_prompt_chars:
        raise InvalidParameter(f"{n('negative_prompt')} is {len(req.negative_prompt)} characters; the limit is "
                               f"{spec.max_negative_prompt_chars}.", param=n("negative_prompt"))

    # 2. References: sources, counts, voices.
    refs = req.references
    if len(refs) < spec.min_total:
        raise InvalidParameter(f"{n('references')} must hold at least {spec.min_total} reference image or "
                               f"video.", param=n("references"))
    if len(refs) > spec.max_total:
        raise InvalidParameter(f"{n('references')} holds {len(refs)} references; {spec.name} accepts at most "
                               f"{spec.max_total} images and videos in total.", param=n("references"))
    for ref in refs:
        allowed = IMAGE_EXTS if ref.kind == "image" else VIDEO_EXTS if ref.kind == "video" else None
        _check_source(ref.source, ref.field, data_ok=ref.kind != "video", allowed_exts=allowed)
        if ref.kind is None and ref.source.startswith("data:"):
            ref.kind = guess_kind(ref.source)
        if ref.voice is not None:
            if not spec.voice_allowed:
                raise InvalidParameter(f"{ref.field}: reference_voice is not supported by {spec.name}.",
                                       param=ref.field)
            _check_source(ref.voice, f"{ref.field.rsplit('.', 1)[0]}.reference_voice", data_ok=False,
                          allowed_exts=set(spec.voice.formats))
    images = sum(1 for r in refs if r.kind == "image")
    videos = sum(1 for r in refs if r.kind == "video")
    if images > spec.max_images:
        raise InvalidParameter(f"{n('references')} holds {images} images; {spec.name} accepts at most "
                               f"{spec.max_images}.", param=n("references"))
    if videos > spec.max_videos:
        raise InvalidParameter(f"{n('references')} holds {videos} videos; {spec.name} accepts at most "
                               f"{spec.max_videos}.", param=n("references"))
    if req.first_frame is not None:
        if spec.max_first_frames < 1:
            raise InvalidParameter(f"{n('first_frame')} is not supported by {spec.name}.", param=n("first_frame"))
        _check_source(req.first_frame, n("first_frame"), data_ok=True, allowed_exts=IMAGE_EXTS)
    if req.audio_url is not None:
        if not spec.soundtrack_allowed:
            raise InvalidParameter(f"{n('audio_url')} is not supported by {spec.name}.", param=n("audio_url"))
        _check_source(req.audio_url, n("audio_url"), data_ok=False, allowed_exts=set(spec.soundtrack.formats))

    # 3. Size: explicit W*H (wan2.6) or resolution + ratio (wan2.7).
    if spec.sizes:
        if req.size is None:
            w, h = (int(x) for x in (spec.default_size or "1920*1080").split("*"))
            req.size = (w, h)
        if f"{req.size[0]}*{req.size[1]}" not in spec.sizes:
            raise InvalidParameter(f"{n('size')} {req.size[0]}*{req.size[1]} is not supported; use one of "
                                   f"{', '.join(spec.sizes)}.", param=n("size"))
    else:
        req.resolution = req.resolution or spec.default_resolution
        if req.resolution not in spec.resolutions:
            raise InvalidParameter(f"{n('resolution')} {req.resolution!r} is not supported; use one of "
                                   f"{', '.join(spec.resolutions)}.", param=n("resolution"))
        req.ratio = req.ratio or spec.default_ratio
        if req.ratio not in spec.ratios:
            raise InvalidParameter(f"{n('ratio')} {req.ratio!r} is not supported; use one of "
                                   f"{', '.join(spec.ratios)}.", param=n("ratio"))
        # With a first frame the ratio is ignored: the worker sizes the output after the frame.
        req.size = None if req.first_frame is not None else ratio_size(req.resolution, req.ratio)

    # 4. Duration, audio, shot type, seed.
    allowed = spec.durations_for(region)
    if req.duration not in allowed:
        lo, hi = min(allowed), max(allowed)
        span = (f"an integer from {lo} to {hi}" if list(allowed) == list(range(lo, hi + 1))
                else " or ".join(str(d) for d in allowed))
        raise InvalidParameter(f"{n('duration')} {req.duration} is not supported by {spec.name} in this region; "
                               f"use {span}.", param=n("duration"))
    if not req.audio and not spec.silent_allowed:
        raise InvalidParameter(f"{n('audio')}=false is not supported by {spec.name}: it always generates audio "
                               f"(silent video: wan2.6-r2v-flash).", param=n("audio"))
    if req.shot_type not in spec.shot_types:
        raise InvalidParameter(f"{n('shot_type')} {req.shot_type!r} is not supported; use "
                               f"{' or '.join(spec.shot_types)}.", param=n("shot_type"))
    if req.seed is not None and not spec.min_seed <= req.seed <= spec.max_seed:
        raise InvalidParameter(f"{n('seed')} {req.seed} is out of range [{spec.min_seed}, {spec.max_seed}].",
                               param=n("seed"))
    return req
