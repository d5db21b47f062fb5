"""OpenAI-style wire <-> canonical: parse ``videos.create``, format the Video object, map errors.

Mapping (README, "OpenAI-style /v1/videos"): ``model`` one of wan2.6-r2v, wan2.6-r2v-flash
(default), wan2.7-r2v; ``seconds`` ("5", or 5) -> duration; ``size`` "1280x720" -> the W*H of
the tables (wan2.7: the tier and ratio it names); ``input_reference`` (an uploaded file or
``{"image_url": ...}``) -> the first reference image; ``references`` -> further references in
order; ``parameters`` -> audio, shot_type, watermark, seed, prompt_extend, resolution, ratio.
Omitted seconds and size take the model's defaults (5 s; 1920x1080 or 1080P 16:9).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Response
from fastapi.responses import JSONResponse

from openr2v.api.common import epoch
from openr2v.api.dialects.base import Submission, View, media_references, or_defaults, tier_of_size, validate, wire_size
from openr2v.api.digits import small_int
from openr2v.domain.models import DIALECT_MODELS, TIERS, ModelSpec, dialect_model, ratio_size
from openr2v.domain.request import FieldNames, GenerationRequest, Kind, Reference, check_inputs, guess_kind
from openr2v.domain.task import Status, Task
from openr2v.errors import InvalidParameter, OpenR2VError

from .protocol import CreateBody, ReferenceItem

__all__ = ["DEFAULT_MODEL", "DIALECT", "Upload", "error_fields", "format_error", "format_task", "parse_submit"]

DIALECT = "openai"
DEFAULT_MODEL = "wan2.6-r2v-flash"
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


def error_fields(e: OpenR2VError) -> dict[str, Any]:
    code = ERROR_CODES.get(e.code, e.code)
    return {"message": e.message, "type": ERROR_TYPES.get(e.http_status, "invalid_request_error"),
            "code": code, "param": e.param}


def format_error(e: OpenR2VError, request_id: str) -> Response:
    headers = {"x-request-id": request_id}
    if e.http_status >= 500:
        headers["x-should-retry"] = "false"  # a retried create could make a second video
    return JSONResponse({"error": error_fields(e)}, status_code=e.http_status, headers=headers)


class _Names(FieldNames):
    def __call__(self, canonical: str) -> str:
        return NAMES.get(canonical, f"parameters.{canonical}")


def parse_submit(body: dict[str, Any], region: str, upload: Upload | None = None) -> Submission:
    """A create body (JSON, or a form already unflattened) -> a validated canonical request."""
    if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
        raise InvalidParameter("prompt is required and must be a non-empty string.", param="prompt",
                               code="missing_required_parameter" if "prompt" not in body else "invalid_value")
    if body.get("parameters") is None:
        body.pop("parameters", None)
    wire: CreateBody = validate(CreateBody, body, code="invalid_type")
    name = wire.model or DEFAULT_MODEL
    spec = dialect_model(DIALECT, name)
    if spec is None:
        raise InvalidParameter(f"model {name!r} is not supported; use one of "
                               f"{', '.join(DIALECT_MODELS[DIALECT])}.", param="model")
    refs, first_frame = _references(wire, spec, upload)
    par = wire.parameters
    size, resolution, ratio = _size(wire.size, spec, par.resolution, par.ratio)
    req = GenerationRequest(
        model=spec.name,
        prompt=wire.prompt,
        negative_prompt=wire.negative_prompt,
        references=refs,
        first_frame=first_frame,
        size=size,
        resolution=resolution,
        ratio=ratio,
        seed=par.seed,
        **or_defaults(spec, duration=_seconds(wire.seconds), audio=par.audio, shot_type=par.shot_type,
                      watermark=par.watermark, prompt_extend=par.prompt_extend),
    )
    return Submission(check_inputs(req, spec, region, _Names()), names=NAMES,
                      internal=frozenset({upload[0]}) if upload else frozenset())


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
    wh = wire_size(size, "size", "xX*", hint="must be WIDTHxHEIGHT, e.g. 1280x720")
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
