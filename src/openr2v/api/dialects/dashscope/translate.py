"""DashScope wire <-> canonical: parse a submit body, format a task."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import Response
from fastapi.responses import JSONResponse

from openr2v.api.common import format_time
from openr2v.api.dialects.base import Submission, View, media_references, or_defaults, tier_of_size, validate, wire_size
from openr2v.domain.models import TIERS, ModelSpec, dialect_model
from openr2v.domain.request import FieldNames, GenerationRequest, Kind, Reference, check_inputs, guess_kind
from openr2v.domain.task import Status, Task
from openr2v.errors import EmptyInput, EmptyModel, EmptyParameters, InvalidParameter, InvalidURL, OpenR2VError

from .protocol import SubmitBody, SubmitInput, SubmitParameters

__all__ = ["DIALECT", "check_callback_url", "format_error", "format_task", "parse_submit",
           "webhook_body"]

DIALECT = "dashscope"

MEDIA_TYPES: dict[str, Kind | Literal["first_frame"]] = {
    "reference_image": "image", "reference_video": "video", "first_frame": "first_frame"}

NAMES = {
    "prompt": "input.prompt",
    "negative_prompt": "input.negative_prompt",
    "references": "input.reference_urls",
    "audio_url": "input.audio_url",
    "callback_url": "parameters.callback_url",
}


def format_error(e: OpenR2VError, request_id: str) -> Response:
    headers = {"x-request-id": request_id}
    if e.http_status >= 500:
        # A retried submit after a 5xx could create a second task: the v2 SDK honours this header.
        headers["x-should-retry"] = "false"
    return JSONResponse({"request_id": request_id, "code": e.code, "message": e.message},
                        status_code=e.http_status, headers=headers)


def parse_submit(body: dict[str, Any], region: str) -> Submission:
    """A JSON object -> a validated canonical request. Raises InvalidParameter and friends."""
    _check_envelope(body)
    wire: SubmitBody = validate(SubmitBody, body)
    spec = dialect_model(DIALECT, wire.model)
    if spec is None:
        raise InvalidParameter(f"Model not exist: {wire.model!r}. Supported models: wan2.6-r2v, "
                               f"wan2.6-r2v-flash, wan2.7-r2v.", param="model")
    inp, par = wire.input, wire.parameters
    names = dict(NAMES)
    if spec.input_style == "reference_urls":
        refs, first_frame = _reference_urls(inp, spec), None
    else:
        refs, first_frame = _media(inp, spec, names)
    size, resolution, ratio = _size(par, spec)
    req = GenerationRequest(
        model=spec.name,
        prompt=inp.prompt or "",
        negative_prompt=inp.negative_prompt,
        references=refs,
        first_frame=first_frame,
        size=size,
        resolution=resolution,
        ratio=ratio,
        seed=par.seed,
        extensions=_extensions(par),
        **or_defaults(spec, duration=par.duration, audio=par.audio, shot_type=par.shot_type,
                      watermark=par.watermark, prompt_extend=par.prompt_extend),
    )
    return Submission(check_inputs(req, spec, region, FieldNames(names)), names=names)


def _check_envelope(body: dict[str, Any]) -> None:
    """DashScope's own codes for a missing model, input or parameters object."""
    if body.get("model") in (None, ""):
        raise EmptyModel("Required parameter 'model' missing from request.", param="model")
    if body.get("input") is None or body.get("input") == {}:
        raise EmptyInput("Required parameter 'input' missing from request.", param="input")
    if "parameters" in body and not isinstance(body["parameters"], dict):
        raise EmptyParameters("Parameter 'parameters' must be a JSON object.", param="parameters")
    if body.get("parameters") is None:
        body.pop("parameters", None)


def _reference_urls(inp: SubmitInput, spec: ModelSpec) -> list[Reference]:
    """wan2.6: ``input.reference_urls``, each ``characterN``."""
    if inp.media is not None:
        raise InvalidParameter(f"input.media is not supported by {spec.name}; use input.reference_urls.",
                               param="input.media")
    if not inp.reference_urls:
        raise InvalidParameter(f"input.reference_urls is required for {spec.name}: 1 to {spec.max_total} "
                               f"image or video URLs.", param="input.reference_urls")
    return media_references([(url, guess_kind(url), None, f"input.reference_urls[{i}]")
                             for i, url in enumerate(inp.reference_urls)], spec)


def _media(inp: SubmitInput, spec: ModelSpec, names: dict[str, str]) -> tuple[list[Reference], str | None]:
    """wan2.7: ``input.media`` items -> (references, first frame); records the first frame's wire name."""
    if inp.reference_urls is not None:
        raise InvalidParameter(f"input.reference_urls is not supported by {spec.name}; use input.media.",
                               param="input.reference_urls")
    if not inp.media:
        raise InvalidParameter(f"input.media is required for {spec.name}: at least one reference_image "
                               f"or reference_video.", param="input.media")
    items: list[tuple[str, Kind | None, str | None, str]] = []
    first_frame = None
    first_frames = 0
    for i, item in enumerate(inp.media):
        kind = MEDIA_TYPES.get(item.type)
        field = f"input.media[{i}]"
        if kind is None:
            raise InvalidParameter(f"{field}.type {item.type!r} is not supported; use reference_image, "
                                   f"reference_video or first_frame.", param=f"{field}.type")
        if kind != "first_frame":
            items.append((item.url, kind, item.reference_voice, f"{field}.url"))
            continue
        first_frames += 1
        if first_frames > spec.max_first_frames:
            raise InvalidParameter(f"{field}: at most {spec.max_first_frames} first_frame is allowed.",
                                   param=f"{field}.type")
        if item.reference_voice is not None:
            raise InvalidParameter(f"{field}.reference_voice can only be used with reference_image "
                                   f"or reference_video.", param=f"{field}.reference_voice")
        first_frame = item.url
        names["first_frame"] = f"{field}.url"
    names["references"] = "input.media"
    return media_references(items, spec), first_frame


def _size(par: SubmitParameters, spec: ModelSpec) -> tuple[tuple[int, int] | None, str | None, str | None]:
    """(size, resolution, ratio) for the model's family.

    wan2.6 speaks size (W*H), wan2.7 resolution + ratio. Clients mix them up (the SDK's own
    examples pass resolution to wan2.6), so each family also accepts the other's spelling
    when it names a size of the tables; the family's own parameter wins when both are given."""
    # The documents' W*H only: 1280x720 is refused, as the cloud does (docs/parity.md).
    size = (wire_size(par.size, "parameters.size", "*", "must be WIDTH*HEIGHT with an asterisk, e.g. 1280*720")
            if par.size is not None else None)
    resolution, ratio = par.resolution, par.ratio
    if spec.sizes and size is None and resolution is not None:
        if resolution not in TIERS:
            raise InvalidParameter(f"parameters.resolution {resolution!r} is not supported; use 720P or 1080P "
                                   f"(or parameters.size, e.g. 1280*720).", param="parameters.resolution")
        if (ratio or "16:9") not in TIERS[resolution]:
            raise InvalidParameter(f"parameters.ratio {ratio!r} is not supported; use one of "
                                   f"{', '.join(TIERS[resolution])}.", param="parameters.ratio")
        return TIERS[resolution][ratio or "16:9"], resolution, ratio
    if not spec.sizes and size is not None:
        found = tier_of_size(size, "parameters.size", str(par.size), spec,
                             "parameters.resolution (720P, 1080P) and parameters.ratio")
        if resolution is None and ratio is None:
            resolution, ratio = found
        return None, resolution, ratio
    return size, resolution, ratio


def _extensions(par: SubmitParameters) -> dict[str, Any]:
    """openr2v's own parameters, carried on the request for the engine and the task service."""
    ext: dict[str, Any] = {}
    if par.captions:
        ext["captions"] = True
    if par.callback_url is not None:
        ext["callback_url"] = check_callback_url(par.callback_url, "parameters.callback_url")
    return ext


def check_callback_url(url: str, field: str) -> str:
    """A webhook target must be an absolute http(s) URL; where it points is the SSRF guard's job."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        host = None
    if host is None or parts.scheme.lower() not in ("http", "https"):
        raise InvalidURL(f"{field} must be an absolute http or https URL.", param=field)
    if len(url) > 2048:
        raise InvalidParameter(f"{field} is {len(url)} characters; the limit is 2048.", param=field)
    return url.strip()


def format_task(task: Task, view: View) -> dict[str, Any]:
    """The ``output`` object (and ``usage``) of a task, as DashScope shows it at each status."""
    out: dict[str, Any] = {"task_id": task.id, "task_status": task.status.value}
    if task.status == Status.UNKNOWN:
        return {"output": out}
    out["submit_time"] = format_time(task.submit_time)
    if task.scheduled_time is not None:
        out["scheduled_time"] = format_time(task.scheduled_time)
    if task.end_time is not None:
        out["end_time"] = format_time(task.end_time)
    if task.status == Status.SUCCEEDED:
        out["orig_prompt"] = task.orig_prompt or task.request.prompt
        if task.actual_prompt:
            out["actual_prompt"] = task.actual_prompt
        out["video_url"] = view.video_url
    if task.status in (Status.FAILED, Status.CANCELED) and task.code:
        out["code"] = task.code
        out["message"] = task.message or ""
    body: dict[str, Any] = {"output": out}
    if task.status == Status.SUCCEEDED and task.usage:
        body["usage"] = {k: v for k, v in task.usage.items() if k not in ("seed", "cost_usd", "audio")}
    return body


def webhook_body(task: Task, video_url: str | None) -> dict[str, Any]:
    """What a webhook carries: the task as GET /api/v1/tasks/{id} shows it (DashScope's body)."""
    return {"request_id": task.request_id, **format_task(task, View(video_url))}
