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
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, Field

from openr2v.domain.models import ModelSpec, ratio_size
from openr2v.errors import AccessDenied, InvalidParameter, InvalidURL

__all__ = [
    "FieldNames",
    "GenerationRequest",
    "Reference",
    "check_inputs",
    "check_text",
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

    @property
    def voice_field(self) -> str:
        """The wire path of this reference's voice: input.media[0].reference_voice."""
        return f"{self.field.rsplit('.', 1)[0]}.reference_voice"


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
    # openr2v extensions (docs/parity.md, "added"): captions, callback_url, ...
    extensions: dict[str, Any] = Field(default_factory=dict)

    def size_str(self) -> str | None:
        return f"{self.size[0]}*{self.size[1]}" if self.size else None


class FieldNames:
    """Maps canonical field names to the dialect's wire spelling for error messages."""

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self._names = dict(names or {})

    def __call__(self, canonical: str) -> str:
        return self._names.get(canonical, f"parameters.{canonical}")


# RFC 3986's scheme, as urlsplit reads it (but without failing on a malformed rest of the URL).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_C0_OR_SPACE = "".join(map(chr, range(33)))  # what urlsplit strips from the front (WHATWG)


def _urlsplit(source: str) -> SplitResult | None:
    """urlsplit, or None for what it refuses (``http://[::1/a``: an unclosed IPv6 bracket)."""
    try:
        return urlsplit(source)
    except ValueError:
        return None


def source_scheme(source: str) -> str:
    if source.startswith("data:"):
        return "data"
    m = _SCHEME.match(source.lstrip(_C0_OR_SPACE))
    return m.group(1).lower() if m else ""


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
    parts = _urlsplit(source)
    path = parts.path if parts is not None else ""
    return path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""


def _check_source(source: Any, field: str, *, data_ok: bool, allowed_exts: set[str] | None = None,
                  max_bytes: int | None = None) -> str:
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
        # The body shows the size, so a data URI over the image limit is refused here, from its
        # length, before a byte of it is decoded (4 base64 characters carry 3 bytes).
        size = len(payload) * 3 // 4 - payload[-2:].count("=")
        if max_bytes is not None and size > max_bytes:
            raise InvalidParameter(f"{field}: the base64 image is {_mb(size)}; images must be at most "
                                   f"{_mb(max_bytes)}.", param=field)
        try:
            base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidURL(f"{field}: the base64 data is not valid base64.", param=field) from None
        return source
    if scheme not in ("http", "https", "oss"):
        raise InvalidURL(f"{field}: URL scheme {scheme or '(none)'!r} is not supported; use HTTP or HTTPS.",
                         param=field)
    parts = _urlsplit(source)
    if parts is None or not parts.netloc:
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

    # Text first: JSON may escape lone surrogates (\ud800) that no UTF-8 store or response can hold.
    _check_unicode(req, n)
    _check_prompt(req, spec, n)
    _check_references(req, spec, n)
    _check_size(req, spec, n)
    _check_parameters(req, spec, region, n)
    return req


def _check_prompt(req: GenerationRequest, spec: ModelSpec, n: FieldNames) -> None:
    if not isinstance(req.prompt, str) or not req.prompt.strip():
        raise InvalidParameter(f"{n('prompt')} is required and must be a non-empty string.", param=n("prompt"))
    if len(req.prompt) > spec.max_prompt_chars:
        raise InvalidParameter(f"{n('prompt')} is {len(req.prompt)} characters; the limit for {spec.name} is "
                               f"{spec.max_prompt_chars}.", param=n("prompt"))
    if req.negative_prompt is not None and len(req.negative_prompt) > spec.max_negative_prompt_chars:
        raise InvalidParameter(f"{n('negative_prompt')} is {len(req.negative_prompt)} characters; the limit is "
                               f"{spec.max_negative_prompt_chars}.", param=n("negative_prompt"))


def _check_references(req: GenerationRequest, spec: ModelSpec, n: FieldNames) -> None:
    """Sources, counts, voices, the first frame and the soundtrack."""
    refs = req.references
    if len(refs) < spec.min_total:
        raise InvalidParameter(f"{n('references')} must hold at least {spec.min_total} reference image or "
                               f"video.", param=n("references"))
    if len(refs) > spec.max_total:
        raise InvalidParameter(f"{n('references')} holds {len(refs)} references; {spec.name} accepts at most "
                               f"{spec.max_total} images and videos in total.", param=n("references"))
    for ref in refs:
        allowed = IMAGE_EXTS if ref.kind == "image" else VIDEO_EXTS if ref.kind == "video" else None
        _check_source(ref.source, ref.field, data_ok=ref.kind != "video", allowed_exts=allowed,
                      max_bytes=spec.image.max_bytes)
        if ref.kind is None and ref.source.startswith("data:"):
            ref.kind = guess_kind(ref.source)
        if ref.voice is not None:
            if not spec.voice_allowed:
                raise InvalidParameter(f"{ref.field}: reference_voice is not supported by {spec.name}.",
                                       param=ref.field)
            _check_source(ref.voice, ref.voice_field, data_ok=False,
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
        _check_source(req.first_frame, n("first_frame"), data_ok=True, allowed_exts=IMAGE_EXTS,
                      max_bytes=spec.image.max_bytes)
    if req.audio_url is not None:
        if not spec.soundtrack_allowed:
            raise InvalidParameter(f"{n('audio_url')} is not supported by {spec.name}.", param=n("audio_url"))
        _check_source(req.audio_url, n("audio_url"), data_ok=False, allowed_exts=set(spec.soundtrack.formats))


def _check_size(req: GenerationRequest, spec: ModelSpec, n: FieldNames) -> None:
    """Explicit W*H (wan2.6) or resolution + ratio (wan2.7), defaults filled in."""
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


def _check_parameters(req: GenerationRequest, spec: ModelSpec, region: str, n: FieldNames) -> None:
    """Duration, audio, shot type, seed."""
    durations = spec.durations_for(region)
    if req.duration not in durations:
        lo, hi = min(durations), max(durations)
        span = (f"an integer from {lo} to {hi}" if list(durations) == list(range(lo, hi + 1))
                else " or ".join(str(d) for d in durations))
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


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_unicode(req: GenerationRequest, n: FieldNames) -> None:
    """Refuse text holding a lone surrogate, naming the field (a search, no copy of big data URIs)."""
    texts: list[tuple[str, Any]] = [(n("prompt"), req.prompt), (n("negative_prompt"), req.negative_prompt),
                                    (n("first_frame"), req.first_frame), (n("audio_url"), req.audio_url)]
    for ref in req.references:
        texts += [(ref.field or n("references"), ref.source), (ref.field or n("references"), ref.voice)]
    stack: list[tuple[str, Any]] = [(f"parameters.{k}", v) for k, v in req.extensions.items()] + texts
    while stack:
        field, value = stack.pop()
        if isinstance(value, dict):
            stack += [(f"{field}.{k}", v) for k, v in value.items()] + [(field, k) for k in value]
        elif isinstance(value, list | tuple):
            stack += [(f"{field}[{i}]", v) for i, v in enumerate(value)]
        elif isinstance(value, str):
            check_text(value, field)


def check_text(value: str, field: str) -> None:
    """``InvalidParameter`` if ``value`` holds a lone surrogate (JSON's \\ud800), which UTF-8 cannot encode."""
    if m := _SURROGATE.search(value):
        raise InvalidParameter(f"{field} is not valid Unicode text: a lone surrogate \\u{ord(m.group()):04x} "
                               f"at character {m.start()}.", param=field)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"
