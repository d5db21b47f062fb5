"""Aggregator wire <-> canonical: parse a ``wan26_r2v`` submit, format a task, map error codes.

The aggregator docs' numeric codes: 001028001-001028004 for the references, 001028095-001028099 for the
rest. Submit-time refusals other than the references' are "Task creation error" (001028099);
a failed task is "Internal generation error" (001028095) unless a reference could not be
fetched (001028097, "HTTP error response") or its URL was refused (001028004). Protocol errors
keep the family's plain codes ("401", "403", "429", "500"); an unknown task is 001028098.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from openr2v.api.common import epoch
from openr2v.api.dialects.base import Submission, View, or_defaults, validate, wire_size
from openr2v.domain.models import ModelSpec, dialect_model
from openr2v.domain.request import FieldNames, GenerationRequest, Reference, check_inputs, check_text, guess_kind
from openr2v.domain.task import Status, Task
from openr2v.errors import InvalidParameter, OpenR2VError

from .protocol import SubmitBody

__all__ = ["CODES", "DIALECT", "NAMES", "error_code", "format_error", "format_task", "parse_submit",
           "task_error_code"]

DIALECT = "aggregator"

REFERENCE_COUNT = "001028001"
TOO_MANY_IMAGES = "001028002"
TOO_MANY_VIDEOS = "001028003"
BAD_REFERENCE_URL = "001028004"
GENERATION_ERROR = "001028095"
RESULT_PARSING = "001028096"
HTTP_ERROR = "001028097"
STATUS_CHECK = "001028098"
CREATION_ERROR = "001028099"

CODES: dict[str, str] = {
    REFERENCE_COUNT: "reference_urls must be an array with 1-5 items",
    TOO_MANY_IMAGES: "reference_urls can contain maximum 5 images",
    TOO_MANY_VIDEOS: "reference_urls can contain maximum 3 videos",
    BAD_REFERENCE_URL: "Invalid reference URL format",
    GENERATION_ERROR: "Internal generation error",
    RESULT_PARSING: "Result parsing error",
    HTTP_ERROR: "HTTP error response",
    STATUS_CHECK: "Status check error",
    CREATION_ERROR: "Task creation error",
}
# A failed task's canonical code -> the document's code (others: GENERATION_ERROR).
TASK_CODES: dict[str, str] = {"BadRequest.InputDownloadFailed": HTTP_ERROR, "InvalidURL": BAD_REFERENCE_URL}
STATUSES: dict[Status, str] = {Status.PENDING: "pending", Status.RUNNING: "processing",
                               Status.SUCCEEDED: "completed", Status.FAILED: "failed", Status.CANCELED: "failed"}
NAMES: dict[str, str] = {"prompt": "input.prompt", "negative_prompt": "input.negative_prompt",
                         "references": "input.reference_urls", "audio_url": "input.audio_url",
                         "first_frame": "input.first_frame"}
REFS = NAMES["references"]


def error_code(e: OpenR2VError) -> str:
    """The seed-002 code of any error the dialect reports over HTTP."""
    if e.code.isdigit():
        return e.code
    if e.http_status == 400:
        param = e.param or ""
        if param == REFS:
            return REFERENCE_COUNT
        if param.startswith(REFS + "["):
            return BAD_REFERENCE_URL
        return CREATION_ERROR
    return str(e.http_status)


def format_error(e: OpenR2VError, request_id: str) -> Response:
    return JSONResponse({"error": {"code": error_code(e), "message": e.message},
                         "metadata": {"request_id": request_id}},
                        status_code=e.http_status, headers={"x-request-id": request_id})


def task_error_code(task: Task) -> str:
    return TASK_CODES.get(task.code or "", GENERATION_ERROR)


def _check_references(raw: Any, spec: ModelSpec) -> list[str]:
    """The aggregator docs' reference rules, each with its own code, in an order that makes each reachable."""
    if not isinstance(raw, list) or not raw:
        raise InvalidParameter(f"{REFS} must be an array with {spec.min_total}-{spec.max_total} items.",
                               param=REFS, code=REFERENCE_COUNT)
    for i, url in enumerate(raw):
        if not isinstance(url, str) or not url.strip():
            raise InvalidParameter(f"{REFS}[{i}] must be an HTTP(S) URL or a data:{{MIME}};base64 URI string.",
                                   param=f"{REFS}[{i}]", code=BAD_REFERENCE_URL)
    kinds = [guess_kind(u) for u in raw]
    videos, images = kinds.count("video"), kinds.count("image")
    if videos > spec.max_videos:
        raise InvalidParameter(f"{REFS} holds {videos} videos; reference_urls can contain maximum "
                               f"{spec.max_videos} videos.", param=REFS, code=TOO_MANY_VIDEOS)
    if images > spec.max_images:
        raise InvalidParameter(f"{REFS} holds {images} images; reference_urls can contain maximum "
                               f"{spec.max_images} images.", param=REFS, code=TOO_MANY_IMAGES)
    if len(raw) > spec.max_total:
        raise InvalidParameter(f"{REFS} holds {len(raw)} items; it must be an array with {spec.min_total}-"
                               f"{spec.max_total} items.", param=REFS, code=REFERENCE_COUNT)
    return raw


def parse_submit(body: dict[str, Any], region: str) -> Submission:
    """A JSON object -> the validated canonical request, and the prompt as sent. Raises OpenR2VError."""
    spec = _check_envelope(body)
    wire: SubmitBody = validate(SubmitBody, body)
    inp, par = wire.input, wire.parameters
    sent = inp.prompt or ""
    check_text(sent, "input.prompt")  # the whole prompt is kept (orig_prompt), not only what check_inputs sees
    # The aggregator's docs: "excess content will be automatically truncated" (orig_prompt keeps what was sent).
    prompt = sent[:spec.max_prompt_chars] if spec.prompt_overflow == "truncate" else sent
    params = or_defaults(spec, duration=par.duration, audio=par.audio, shot_type=par.shot_type,
                         watermark=par.watermark, prompt_extend=par.prompt_extend)
    extensions: dict[str, Any] = {}
    if spec.shot_type_needs_prompt_extend and not params["prompt_extend"] \
            and params["shot_type"] != spec.default_shot_type:
        # The aggregator's docs: shot_type "only takes effect when prompt_extend: true"; the prompt decides instead.
        if params["shot_type"] not in spec.shot_types:
            raise InvalidParameter(f"parameters.shot_type {params['shot_type']!r} is not supported; use "
                                   f"{' or '.join(spec.shot_types)}.", param="parameters.shot_type")
        extensions["ignored"] = {"parameters.shot_type": params["shot_type"], "reason": "prompt_extend is false"}
        params["shot_type"] = spec.default_shot_type
    if inp.audio_url is not None and not params["audio"]:
        raise InvalidParameter("input.audio_url drives the soundtrack; it cannot be combined with "
                               "parameters.audio=false.", param="input.audio_url")
    refs = [Reference(kind=guess_kind(url), source=url, label=f"character{i + 1}", field=f"{REFS}[{i}]")
            for i, url in enumerate(inp.reference_urls or [])]
    size = None if par.size is None else wire_size(par.size, "parameters.size", hint=(
        "must be a specific WIDTH*HEIGHT such as 1280*720 (not a ratio or a tier name)"))
    req = GenerationRequest(model=spec.name, prompt=prompt, negative_prompt=inp.negative_prompt, references=refs,
                            audio_url=inp.audio_url, size=size, seed=par.seed, extensions=extensions, **params)
    return Submission(check_inputs(req, spec, region, FieldNames(NAMES)), orig_prompt=sent, names=NAMES)


def _check_envelope(body: dict[str, Any]) -> ModelSpec:
    """The model (its spec), the input and parameters objects, and the aggregator docs' reference rules."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidParameter("model is required: wan26_r2v.", param="model")
    spec = dialect_model(DIALECT, model)
    if spec is None:
        raise InvalidParameter(f"Model {model!r} is not supported here; use wan26_r2v.", param="model")
    if not isinstance(body.get("input"), dict):
        raise InvalidParameter("input is required and must be an object with prompt and reference_urls.",
                               param="input")
    if body.get("parameters") is None:
        body.pop("parameters", None)
    elif not isinstance(body["parameters"], dict):
        raise InvalidParameter("parameters must be an object.", param="parameters")
    _check_references(body["input"].get("reference_urls"), spec)
    return spec


def format_task(task: Task, view: View) -> dict[str, Any]:
    """The task as the aggregator shows it: output and usage when completed, error when failed."""
    status = STATUSES.get(task.status, "failed")
    body: dict[str, Any] = {"id": task.id, "task_id": task.id, "model": task.model, "status": status,
                            "created_at": epoch(task.submit_time)}
    if status in ("pending", "processing"):
        body["progress"] = round(task.progress / 100, 2)
    if status == "completed":
        seconds = int((task.usage or {}).get("output_video_duration") or task.request.duration)
        body["output"] = [{"content": [{"type": "video", "url": view.video_url, "duration": seconds}],
                           "jobId": task.id}]
        amount, discount = view.cost or (0.0, 0.0)
        body["usage"] = {"cost": f"{amount:.4f}", "discount": discount}
    if status == "failed":
        code = task_error_code(task)
        body["error"] = {"code": code, "message": f"{CODES[code]}: {task.code or 'Failed'}: {task.message or ''}"}
    body["metadata"] = {
        "request_id": view.request_id,
        "submit_request_id": task.request_id,
        "created_at": epoch(task.submit_time),
        "started_at": epoch(task.scheduled_time),
        "completed_at": epoch(task.end_time),
        "elapsed_seconds": (round(task.end_time - task.submit_time, 3) if task.end_time is not None else None),
        "orig_prompt": task.orig_prompt,
        "actual_prompt": task.actual_prompt,
    }
    return body
