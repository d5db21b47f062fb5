"""OpenAI-style wire <-> canonical: parse ``videos.create``, format the Video object, map errors.

Mapping (docs/dialects/openai.md): ``model`` one of wan2.6-r2v, wan2.6-r2v-flash
(default), wan2.7-r2v; ``seconds`` ("5", or 5) -> duration; ``size`` "1280x720" -> the W*H of
the tables (wan2.7: the tier and ratio it names); ``input_reference`` (an uploaded file or
``{"image_url": ...}``) -> the first reference image; ``references`` -> further references in
order; ``parameters`` -> audio, shot_type, watermark, seed, prompt_extend, resolution, ratio.
Omitted seconds and size take the model's defaults (5 s; 1920x1080 or 1080P 16:9).

vLLM-Omni's fields (docs/dialects/openai-videos-extensions.md): ``image_reference`` /
``video_reference`` -> a reference after ``input_reference``; ``audio_reference`` -> the voice of the
first image (wan2.7; it is the default model of a request that sends one) or the soundtrack;
``width`` x ``height`` -> the table size nearest in shape; ``num_frames`` / ``fps`` -> the duration;
``seed``; ``generate_sound`` -> audio; the sampling fields -> ``extensions["sampling"]``, which
engines that sample (and the ``videos`` upstream engine) read.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from fastapi import Response
from fastapi.responses import JSONResponse

from openr2v.api.common import epoch
from openr2v.api.dialects.base import Submission, View, media_references, or_defaults, tier_of_size, validate, wire_size
from openr2v.api.digits import small_int
from openr2v.domain.models import DIALECT_MODELS, TIERS, ModelSpec, dialect_model, ratio_size
from openr2v.domain.request import FieldNames, GenerationRequest, Kind, Reference, check_inputs, guess_kind
from openr2v.domain.task import Status, Task
from openr2v.errors import InvalidParameter, OpenR2VError, QuotaExceeded

from .protocol import CreateBody, MediaReference, ReferenceItem

__all__ = ["DEFAULT_MODEL", "DIALECT", "Upload", "VideoFailed", "error_fields", "format_error", "format_task",
           "nearest_size", "parse_submit", "task_error"]

DIALECT = "openai"
DEFAULT_MODEL = "wan2.6-r2v-flash"
VOICE_MODEL = "wan2.7-r2v"  # the model of a request with an audio_reference that names none
OUTPUT_FPS = 30  # openr2v renders every video at 30 fps; ``fps`` only counts ``num_frames`` into seconds
JSON_FIELDS = ("image_reference", "video_reference", "audio_reference", "lora", "extra_params")
SAMPLING = ("num_inference_steps", "guidance_scale", "guidance_scale_2", "true_cfg_scale", "boundary_ratio",
            "flow_shift", "lora", "extra_params")
STATUSES: dict[Status, str] = {Status.PENDING: "queued", Status.RUNNING: "in_progress",
                               Status.SUCCEEDED: "completed", Status.FAILED: "failed", Status.CANCELED: "failed"}
KINDS: dict[str, Kind | Literal["first_frame"]] = {
    "image": "image", "reference_image": "image", "video": "video", "reference_video": "video",
         "first_frame": "first_frame"}
NAMES = {"prompt": "prompt", "negative_prompt": "negative_prompt", "references": "references",
         "duration": "seconds", "size": "size", "first_frame": "references"}
# Canonical code -> (OpenAI error type, OpenAI-style code); codes the dialect raises itself pass through.
ERROR_CODES: dict[str, str] = {
    "InvalidParameter": "invalid_value", "InvalidURL": "invalid_url", "UnsupportedOperation": "invalid_state",
    "BadRequest.EmptyInput": "missing_required_parameter", "BadRequest.EmptyModel": "missing_required_parameter",
    "BadRequest.EmptyParameters": "invalid_type", "InvalidApiKey": "invalid_api_key",
    "AccessDenied": "model_not_available", "NotFound": "not_found", "Throttling.RateQuota": "rate_limit_exceeded",
    "InternalError": "internal_error",
}
ERROR_TYPES: dict[int, str] = {429: "requests", 500: "server_error"}

# An uploaded input_reference: (oss:// source of the stored upload, kind from its content type or None).
Upload = tuple[str, str | None]


# OpenAI's answer to an account over its quota (docs/parity.md).
QUOTA_MESSAGE = "You exceeded your current quota, please check your plan and billing details."


def error_fields(e: OpenR2VError) -> dict[str, Any]:
    if isinstance(e, QuotaExceeded):
        return {"message": f"{QUOTA_MESSAGE} {e.detail}", "type": "insufficient_quota", "code": "insufficient_quota",
                "param": None}
    code = ERROR_CODES.get(e.code, e.code)
    return {"message": e.message, "type": ERROR_TYPES.get(e.http_status, "invalid_request_error"),
            "code": code, "param": e.param}


def format_error(e: OpenR2VError, request_id: str) -> Response:
    headers = {"x-request-id": request_id}
    quota = isinstance(e, QuotaExceeded)
    if e.http_status >= 500 or quota:
        # A retried create could make a second video; a quota does not refill in seconds (the SDK retries 429s).
        headers["x-should-retry"] = "false"
    return JSONResponse({"error": error_fields(e)}, status_code=429 if quota else e.http_status, headers=headers)


class _Names(FieldNames):
    def __call__(self, canonical: str) -> str:
        return NAMES.get(canonical, f"parameters.{canonical}")


def parse_submit(body: dict[str, Any], region: str, upload: Upload | None = None,
                 files: frozenset[str] = frozenset()) -> Submission:
    """A create body (JSON, or a form already unflattened) -> a validated canonical request."""
    if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
        raise InvalidParameter("prompt is required and must be a non-empty string.", param="prompt",
                               code="missing_required_parameter" if "prompt" not in body else "invalid_value")
    if body.get("parameters") is None:
        body.pop("parameters", None)
    _decode_json_fields(body)
    wire: CreateBody = validate(CreateBody, body, code="invalid_type")
    name = wire.model or (VOICE_MODEL if wire.audio_reference is not None else DEFAULT_MODEL)
    spec = dialect_model(DIALECT, name)
    if spec is None:
        raise InvalidParameter(f"model {name!r} is not supported; use one of "
                               f"{', '.join(DIALECT_MODELS[DIALECT])}.", param="model")
    refs, first_frame = _references(wire, spec, upload)
    par = wire.parameters
    size, resolution, ratio = _size(_wire_size(wire), spec, par.resolution, par.ratio)
    audio_url = _soundtrack(wire, spec, refs)
    req = GenerationRequest(
        model=spec.name,
        prompt=wire.prompt,
        negative_prompt=wire.negative_prompt,
        references=refs,
        first_frame=first_frame,
        size=size,
        resolution=resolution,
        ratio=ratio,
        audio_url=audio_url,
        seed=_seed(wire),
        extensions=_sampling(wire),
        **or_defaults(spec, duration=_duration(wire, spec),
                      audio=par.audio if par.audio is not None else wire.generate_sound, shot_type=par.shot_type,
                      watermark=par.watermark, prompt_extend=par.prompt_extend),
    )
    return Submission(check_inputs(req, spec, region, _Names()), names=NAMES,
                      internal=(frozenset({upload[0]}) if upload else frozenset()) | files)

def _decode_json_fields(body: dict[str, Any]) -> None:
    """vLLM-Omni's JSON-string fields (how a form carries objects) -> objects."""
    for name in JSON_FIELDS:
        value = body.get(name)
        if value is None or not isinstance(value, str):
            continue
        if not value.strip():
            body.pop(name)
            continue
        try:
            decoded = json.loads(value)
        except ValueError:
            raise InvalidParameter(f"{name} must be a JSON object, e.g. {_example(name)}; it is not valid JSON.",
                                   param=name) from None
        if not isinstance(decoded, dict):
            raise InvalidParameter(f"{name} must be a JSON object, e.g. {_example(name)}.", param=name)
        body[name] = decoded


def _example(name: str) -> str:
    kind = name.removesuffix("_reference")
    return f'{{"{kind}_url": "https://..."}}' if name.endswith("_reference") else '{"key": "value"}'


def _parse_wxh(size: str) -> tuple[int, int]:
    """OpenAI's ``WIDTHxHEIGHT`` and only that spelling (docs/parity.md)."""
    return wire_size(size, "size", "x", hint="must be WIDTHxHEIGHT, e.g. 1280x720")


def _wire_size(wire: CreateBody) -> str | None:
    """``size``, or vLLM-Omni's ``width`` x ``height`` (the table size nearest in shape when not in it)."""
    if wire.width is None and wire.height is None:
        return wire.size
    for name in ("width", "height"):
        value = getattr(wire, name)
        if value is None:
            raise InvalidParameter(f"{name} is required with {'height' if name == 'width' else 'width'}.",
                                   param=name)
        if not 1 <= value <= 8192:
            raise InvalidParameter(f"{name} {value} must be from 1 to 8192 pixels.", param=name)
    assert wire.width is not None and wire.height is not None
    if wire.size is not None and _parse_wxh(wire.size) != (wire.width, wire.height):
        raise InvalidParameter(f"width x height {wire.width}x{wire.height} disagrees with size {wire.size!r}; "
                               f"give one of them.", param="width")
    w, h = nearest_size(wire.width, wire.height)
    return f"{w}x{h}"


def nearest_size(width: int, height: int) -> tuple[int, int]:
    """The table size of the aspect nearest ``width``/``height`` (then of the nearest area)."""
    sizes = {dims for table in TIERS.values() for dims in table.values()}
    if (width, height) in sizes:
        return width, height
    want = math.log(width / height)
    return min(sizes, key=lambda d: (round(abs(math.log(d[0] / d[1]) - want), 6),
                                     abs(math.log(d[0] * d[1] / (width * height)))))


def _duration(wire: CreateBody, spec: ModelSpec) -> int | None:
    """``seconds``, or vLLM-Omni's ``num_frames`` at ``fps`` (rounded to whole seconds)."""
    if wire.fps is not None and not 1 <= wire.fps <= 120:
        raise InvalidParameter(f"fps {wire.fps} must be from 1 to 120.", param="fps")
    if wire.num_frames is None:
        return _seconds(wire.seconds)
    if wire.num_frames < 1:
        raise InvalidParameter(f"num_frames {wire.num_frames} must be positive.", param="num_frames")
    seconds = max(1, round(wire.num_frames / (wire.fps or OUTPUT_FPS)))
    if wire.seconds is not None and _seconds(wire.seconds) != seconds:
        raise InvalidParameter(f"num_frames {wire.num_frames} at {wire.fps or OUTPUT_FPS} fps is {seconds} s, "
                               f"but seconds is {wire.seconds!r}; give one of them.", param="num_frames")
    allowed = spec.durations_for("*")
    if seconds not in allowed:
        raise InvalidParameter(f"num_frames {wire.num_frames} at {wire.fps or OUTPUT_FPS} fps is {seconds} s; "
                               f"{spec.name} renders {min(allowed)} to {max(allowed)} s.", param="num_frames")
    return seconds


def _seed(wire: CreateBody) -> int | None:
    if wire.seed is not None and wire.parameters.seed is not None and wire.seed != wire.parameters.seed:
        raise InvalidParameter(f"seed {wire.seed} disagrees with parameters.seed {wire.parameters.seed}.",
                               param="seed")
    seed = wire.seed if wire.seed is not None else wire.parameters.seed
    if wire.seed is not None and not 0 <= wire.seed <= 2**31 - 1:
        raise InvalidParameter(f"seed {wire.seed} is out of range [0, 2147483647].", param="seed")
    return seed


def _sampling(wire: CreateBody) -> dict[str, Any]:
    """The sampling fields, kept for the engines that sample (``extensions["sampling"]``)."""
    found = {name: getattr(wire, name) for name in SAMPLING if getattr(wire, name) is not None}
    for name, value in found.items():
        if isinstance(value, float | int) and not math.isfinite(value):
            raise InvalidParameter(f"{name} must be a finite number.", param=name)
    steps = found.get("num_inference_steps")
    if steps is not None and not 1 <= steps <= 1000:
        raise InvalidParameter(f"num_inference_steps {steps} must be from 1 to 1000.", param="num_inference_steps")
    for name in ("guidance_scale", "guidance_scale_2", "true_cfg_scale"):
        if name in found and found[name] < 0:
            raise InvalidParameter(f"{name} {found[name]} must not be negative.", param=name)
    if "boundary_ratio" in found and not 0 <= found["boundary_ratio"] <= 1:
        raise InvalidParameter(f"boundary_ratio {found['boundary_ratio']} must be from 0 to 1.",
                               param="boundary_ratio")
    return {"sampling": found} if found else {}


def _soundtrack(wire: CreateBody, spec: ModelSpec, refs: list[Reference]) -> str | None:
    """Where ``audio_reference`` goes: the voice of the first image (models with voices), else the soundtrack."""
    ref = wire.audio_reference
    if ref is None:
        return None
    if ref.file_id is not None or not ref.audio_url:
        raise InvalidParameter('audio_reference must be {"audio_url": "https://..."} (file_id is not supported).',
                               param="audio_reference")
    if spec.voice_allowed:
        image = next((r for r in refs if r.kind == "image"), None)
        if image is None:
            raise InvalidParameter("audio_reference: speech-to-video needs an image to speak (image_reference or "
                                   "input_reference).", param="audio_reference")
        if image.voice is None:
            image.voice = ref.audio_url
            return None
    if not spec.soundtrack_allowed:
        raise InvalidParameter(f"audio_reference is not supported by {spec.name}; use model {VOICE_MODEL}.",
                               param="audio_reference")
    return ref.audio_url



def _seconds(value: str | int | None) -> int | None:
    if value is None:
        return None
    seconds = small_int(str(value).strip())
    if seconds is None:
        raise InvalidParameter(f"seconds {value!r} must be a whole number of seconds such as \"5\".",
                               param="seconds")
    return seconds


def _size(size: str | None, spec: ModelSpec, resolution: str | None,
          ratio: str | None) -> tuple[tuple[int, int] | None, str | None, str | None]:
    """(size, resolution, ratio) for the model's family from OpenAI's "WIDTHxHEIGHT"."""
    if size is None:
        return None, resolution, ratio
    wh = _parse_wxh(size)
    if spec.sizes:
        return wh, None, None
    sizes = ", ".join(f"{w}x{h}" for table in TIERS.values() for (w, h) in table.values())
    tier, found = tier_of_size(wh, "size", size, spec, f"one of {sizes}")
    return None, tier, found


def _references(wire: CreateBody, spec: ModelSpec, upload: Upload | None) -> tuple[list[Reference], str | None]:
    """input_reference (an upload or an image URL) then ``references``, in prompt order -> (references, first
    frame)."""
    given: list[tuple[ReferenceItem, str]] = []
    if upload is not None:
        given.append((ReferenceItem(url=upload[0], type=upload[1]), "input_reference"))
    elif wire.input_reference is not None:
        if wire.input_reference.file_id is not None or not wire.input_reference.image_url:
            raise InvalidParameter("input_reference: file_id is not supported; upload the file or give "
                                   "image_url.", param="input_reference")
        given.append((ReferenceItem(url=wire.input_reference.image_url, type="image"), "input_reference.image_url"))
    for name, media_kind in (("image_reference", "image"), ("video_reference", "video")):
        media: MediaReference | None = getattr(wire, name)
        if media is None:
            continue
        url = getattr(media, f"{media_kind}_url")
        if media.file_id is not None or not url:
            raise InvalidParameter(f'{name} must be {{"{media_kind}_url": "https://..."}} (file_id is not '
                                   f'supported).', param=name)
        given.append((ReferenceItem(url=url, type=media_kind), f"{name}.{media_kind}_url"))
    for i, item in enumerate(wire.references or []):
        ref = ReferenceItem(url=item) if isinstance(item, str) else item
        given.append((ref, f"references[{i}]" + ("" if isinstance(item, str) else ".url")))
    items: list[tuple[str, Kind | None, str | None, str]] = []
    first_frame = None
    for item, field in given:
        kind = KINDS.get(item.type) if item.type is not None else guess_kind(item.url)
        if item.type is not None and kind is None:
            raise InvalidParameter(f"{field.removesuffix('.url')}.type {item.type!r} is not supported; use image, "
                                   f"video or first_frame.", param=f"{field.removesuffix('.url')}.type")
        if kind == "first_frame":
            if first_frame is not None:
                raise InvalidParameter(f"{field}: only one first_frame is allowed.", param=field)
            first_frame = item.url
            continue
        if spec.family == "wan2.7" and kind is None:
            raise InvalidParameter(f"{field}: {spec.name} names references Image N / Video N, so their kind "
                                   f"must be known; give type image or video.", param=field)
        items.append((item.url, kind, item.reference_voice, field))
    return media_references(items, spec), first_frame


def _size_str(task: Task) -> str:
    usage = task.usage or {}
    if isinstance(usage.get("size"), str):
        return str(usage["size"]).replace("*", "x")
    req = task.request
    w, h = req.size or ratio_size(req.resolution or "1080P", req.ratio or "16:9")
    return f"{w}x{h}"


def format_task(task: Task, view: View | None = None) -> dict[str, Any]:
    """The OpenAI Video object of a task (its URL is /v1/videos/{id}/content: the view is not needed)."""
    status = STATUSES.get(task.status, "failed")
    body: dict[str, Any] = {
        "id": task.id,
        "object": "video",
        "created_at": epoch(task.submit_time),
        "status": status,
        "model": task.model,
        "progress": 100 if status in ("completed", "failed") else task.progress,
        "seconds": str(task.request.duration),
        "size": _size_str(task),
        "completed_at": epoch(task.end_time),
        "expires_at": epoch(task.expires_at) if status == "completed" else None,
        "error": None,
        "prompt": task.request.prompt,
        "remixed_from_video_id": None,
    }
    if status == "failed":
        body["error"] = {"code": task.code or "InternalError", "message": task.message or ""}
    return body


class VideoFailed(OpenR2VError):
    """A video that ended without content, as ``/v1/videos/sync`` answers it: the task's own code and message."""

    http_status = 500


def task_error(task: Task) -> OpenR2VError:
    if task.status == Status.CANCELED:
        return VideoFailed(f"Video {task.id} was canceled.", code="canceled", param=None)
    err = VideoFailed(task.message or f"Video {task.id} failed.", code=task.code or "InternalError")
    # A refusal of the input (moderation, a reference that cannot be read) is the client's: 400.
    if task.code and task.code not in ("InternalError", "InternalError.Timeout"):
        err.http_status = 400
    return err
