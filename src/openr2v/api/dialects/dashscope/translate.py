"""DashScope wire <-> canonical: parse a submit body, format a task."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from openr2v.api.digits import parse_size
from openr2v.domain.models import TIERS, ModelSpec, dialect_model
from openr2v.domain.request import FieldNames, GenerationRequest, Reference, check_inputs, guess_kind
from openr2v.domain.task import Status, Task
from openr2v.errors import EmptyInput, EmptyModel, EmptyParameters, InvalidParameter, InvalidURL

from .protocol import SubmitBody, SubmitParameters

__all__ = ["check_callback_url", "format_task", "format_time", "parse_submit"]

MEDIA_TYPES = {"reference_image": "image", "reference_video": "video", "first_frame": "first_frame"}

NAMES = {
    "prompt": "input.prompt",
    "negative_prompt": "input.negative_prompt",
    "references": "input.reference_urls",
    "audio_url": "input.audio_url",
}


def _loc(err: dict[str, Any]) -> str:
    out = ""
    for part in err["loc"]:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_submit(raw: bytes, region: str) -> tuple[GenerationRequest, ModelSpec]:
    """Body bytes -> a validated canonical request. Raises InvalidParameter and friends."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as e:  # bad UTF-8 or JSON, ints over 4300 digits, deep nesting
        raise InvalidParameter(f"The request body is not valid JSON: {e}.") from None
    if not isinstance(body, dict):
        raise InvalidParameter("The request body must be a JSON object with model, input and parameters.")
    if body.get("model") in (None, ""):
        raise EmptyModel("Required parameter 'model' missing from request.", param="model")
    if body.get("input") is None or body.get("input") == {}:
        raise EmptyInput("Required parameter 'input' missing from request.", param="input")
    if "parameters" in body and not isinstance(body["parameters"], dict):
        raise EmptyParameters("Parameter 'parameters' must be a JSON object.", param="parameters")
    if body.get("parameters") is None:
        body.pop("parameters", None)
    try:
        wire = SubmitBody.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        field = _loc(err)
        raise InvalidParameter(f"{field}: {err['msg']}.", param=field) from None

    spec = dialect_model("dashscope", wire.model)
    if spec is None:
        raise InvalidParameter(f"Model not exist: {wire.model!r}. Supported models: wan2.6-r2v, "
                               f"wan2.6-r2v-flash, wan2.7-r2v.", param="model")
    inp, par = wire.input, wire.parameters
    refs: list[Reference] = []
    first_frame = None
    names = dict(NAMES)
    if spec.input_style == "reference_urls":
        if inp.media is not None:
            raise InvalidParameter(f"input.media is not supported by {spec.name}; use input.reference_urls.",
                                   param="input.media")
        if not inp.reference_urls:
            raise InvalidParameter(f"input.reference_urls is required for {spec.name}: 1 to {spec.max_total} "
                                   f"image or video URLs.", param="input.reference_urls")
        for i, url in enumerate(inp.reference_urls):
            refs.append(Reference(kind=guess_kind(url), source=url, label=f"character{i + 1}",
                                  field=f"input.reference_urls[{i}]"))
    else:
        if inp.reference_urls is not None:
            raise InvalidParameter(f"input.reference_urls is not supported by {spec.name}; use input.media.",
                                   param="input.reference_urls")
        if not inp.media:
            raise InvalidParameter(f"input.media is required for {spec.name}: at least one reference_image "
                                   f"or reference_video.", param="input.media")
        counts = {"image": 0, "video": 0}
        first_frames = 0
        for i, item in enumerate(inp.media):
            kind = MEDIA_TYPES.get(item.type)
            field = f"input.media[{i}]"
            if kind is None:
                raise InvalidParameter(f"{field}.type {item.type!r} is not supported; use reference_image, "
                                       f"reference_video or first_frame.", param=f"{field}.type")
            if kind == "first_frame":
                first_frames += 1
                if first_frames > spec.max_first_frames:
                    raise InvalidParameter(f"{field}: at most {spec.max_first_frames} first_frame is allowed.",
                                           param=f"{field}.type")
                if item.reference_voice is not None:
                    raise InvalidParameter(f"{field}.reference_voice can only be used with reference_image "
                                           f"or reference_video.", param=f"{field}.reference_voice")
                first_frame = item.url
                names["first_frame"] = f"{field}.url"
                continue
            counts[kind] += 1
            refs.append(Reference(kind=kind, source=item.url, voice=item.reference_voice,
                                  label=f"{'Image' if kind == 'image' else 'Video'} {counts[kind]}",
                                  field=f"{field}.url"))
        names["references"] = "input.media"
        if len(refs) == 1:
            refs[0].label = f"reference {refs[0].kind}"

    # wan2.6 speaks size (W*H), wan2.7 resolution + ratio. Clients mix them up (the SDK's own
    # examples pass resolution to wan2.6), so each family also accepts the other's spelling
    # when it names a size of the tables; the family's own parameter wins when both are given.
    size = _parse_size(par.size) if par.size is not None else None
    resolution, ratio = par.resolution, par.ratio
    if spec.sizes and size is None and resolution is not None:
        if resolution not in TIERS:
            raise InvalidParameter(f"parameters.resolution {resolution!r} is not supported; use 720P or 1080P "
                                   f"(or parameters.size, e.g. 1280*720).", param="parameters.resolution")
        if (ratio or "16:9") not in TIERS[resolution]:
            raise InvalidParameter(f"parameters.ratio {ratio!r} is not supported; use one of "
                                   f"{', '.join(TIERS[resolution])}.", param="parameters.ratio")
        size = TIERS[resolution][ratio or "16:9"]
    elif not spec.sizes and size is not None:
        found = [(tier, r) for tier, table in TIERS.items() for r, wh in table.items() if wh == size]
        if not found:
            raise InvalidParameter(f"parameters.size {par.size!r} is not supported by {spec.name}; use "
                                   f"parameters.resolution (720P, 1080P) and parameters.ratio.",
                                   param="parameters.size")
        if resolution is None and ratio is None:
            resolution, ratio = found[0]
        size = None

    req = GenerationRequest(
        model=spec.name,
        prompt=inp.prompt or "",
        negative_prompt=inp.negative_prompt,
        references=refs,
        first_frame=first_frame,
        size=size,
        resolution=resolution,
        ratio=ratio,
        duration=par.duration if par.duration is not None else spec.default_duration,
        audio=par.audio if par.audio is not None else spec.default_audio,
        shot_type=par.shot_type if par.shot_type is not None else spec.default_shot_type,
        watermark=par.watermark if par.watermark is not None else spec.default_watermark,
        seed=par.seed,
        prompt_extend=par.prompt_extend if par.prompt_extend is not None else spec.default_prompt_extend,
        extensions=_extensions(par),
    )
    return check_inputs(req, spec, region, FieldNames(names)), spec


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


def _parse_size(size: str) -> tuple[int, int]:
    """The documents' ``W*H``, and only that (``1280x720`` is refused, as the cloud does)."""
    dims = parse_size(size, "*")
    if dims is None:
        raise InvalidParameter(f"parameters.size {size!r} must be WIDTH*HEIGHT with an asterisk, e.g. 1280*720.",
                               param="parameters.size")
    return dims


def format_time(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def format_task(task: Task, video_url: str | None) -> dict[str, Any]:
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
        out["video_url"] = video_url
    if task.status in (Status.FAILED, Status.CANCELED) and task.code:
        out["code"] = task.code
        out["message"] = task.message or ""
    body: dict[str, Any] = {"output": out}
    if task.status == Status.SUCCEEDED and task.usage:
        body["usage"] = {k: v for k, v in task.usage.items() if k not in ("seed", "cost_usd", "audio")}
    return body
