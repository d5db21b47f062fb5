"""Gateway wire <-> canonical: parse a ``/v1/video/generations`` submit, format the poll envelope.

The poll answer wraps a DashScope task response (``data.data``) in the gateway's own
``{code, message, data: {task_id, action, status, fail_reason, ...}}``, exactly as the gateway's docs
shows it: the video URL in ``fail_reason`` on success, ``task failed, code: X , message: Y``
on failure.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from openr2v.api.common import epoch, format_time
from openr2v.api.dialects.base import Submission, View, or_defaults, validate, wire_size
from openr2v.domain.models import dialect_model
from openr2v.domain.request import FieldNames, GenerationRequest, Reference, check_inputs
from openr2v.domain.task import Status, Task
from openr2v.errors import InvalidParameter, OpenR2VError, QuotaExceeded

from .protocol import SubmitBody

__all__ = ["CODES", "DIALECT", "NAMES", "error_code", "format_error", "format_submit", "format_task", "parse_submit"]

DIALECT = "gateway"
ACTION = "textGenerate"  # the gateway docs' action for reference-to-video tasks

# HTTP status -> the gateway's error code (its {code, message, data} envelope).
CODES: dict[int, str] = {400: "invalid_request", 401: "invalid_api_key", 403: "access_denied",
                         404: "task_not_exist", 429: "rate_limit_exceeded", 500: "internal_error"}
TASK_NOT_EXIST = "task_not_exist"  # the gateway answers an unknown task with 400 and this code
# The gateway's docs: prohibited content is refused with these DashScope codes, kept as they are.
MODERATION_CODES = frozenset({"DataInspectionFailed", "IPInfringementSuspect"})
STATUSES: dict[Status, str] = {Status.PENDING: "IN_PROGRESS", Status.RUNNING: "IN_PROGRESS",
                               Status.SUCCEEDED: "SUCCESS", Status.FAILED: "FAILURE",
                               Status.CANCELED: "FAILURE"}
NAMES: dict[str, str] = {"prompt": "prompt", "negative_prompt": "metadata.input.negative_prompt",
                         "references": "metadata.input.reference_video_urls"}
REFS = NAMES["references"]
PARAMS = "metadata.parameters"


# A key over its quota: the code and status the gateway's family answers (docs/parity.md).
QUOTA = ("insufficient_user_quota", 403)


def error_code(e: OpenR2VError) -> str:
    if isinstance(e, QuotaExceeded):
        return QUOTA[0]
    if e.code in CODES.values() or e.code in MODERATION_CODES:
        return e.code
    return CODES.get(e.http_status, "internal_error")


def format_error(e: OpenR2VError, request_id: str) -> Response:
    if isinstance(e, QuotaExceeded):
        return JSONResponse({"code": QUOTA[0], "message": f"insufficient user quota: {e.detail}", "data": None},
                            status_code=QUOTA[1], headers={"x-request-id": request_id})
    return JSONResponse({"code": error_code(e), "message": e.message, "data": None},
                        status_code=e.http_status, headers={"x-request-id": request_id})


class _Names(FieldNames):
    def __call__(self, canonical: str) -> str:
        return NAMES.get(canonical, f"{PARAMS}.{canonical}")


def parse_submit(body: dict[str, Any], region: str) -> Submission:
    """A JSON object -> a validated canonical request. Raises OpenR2VError."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidParameter("model is required: wan2.6-r2v.", param="model")
    spec = dialect_model(DIALECT, model)
    if spec is None:
        raise InvalidParameter(f"model {model!r} is not supported; it must be wan2.6-r2v.", param="model")
    if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
        raise InvalidParameter("prompt is required and must be a non-empty string.", param="prompt")
    for path in ("metadata", "metadata.input", "metadata.parameters"):
        parent, _, key = path.rpartition(".")
        node = body.get("metadata") if parent else body
        if isinstance(node, dict) and node.get(key) is None:
            node.pop(key, None)
        elif isinstance(node, dict) and not isinstance(node[key], dict):
            raise InvalidParameter(f"{path} must be an object.", param=path)
    wire: SubmitBody = validate(SubmitBody, body)
    inp, par = wire.metadata.input, wire.metadata.parameters
    if not inp.reference_video_urls:
        raise InvalidParameter(f"{REFS} is required: 1 to {spec.max_total} reference video URLs.", param=REFS)
    refs = [Reference(kind="video", source=url, label=f"character{i + 1}", field=f"{REFS}[{i}]")
            for i, url in enumerate(inp.reference_video_urls)]
    req = GenerationRequest(
        model=spec.name,
        prompt=wire.prompt,
        negative_prompt=inp.negative_prompt,
        references=refs,
        size=wire_size(par.size, f"{PARAMS}.size") if par.size is not None else None,
        seed=par.seed,
        **or_defaults(spec, duration=par.duration, audio=par.audio, shot_type=par.shot_type,
                      watermark=par.watermark, prompt_extend=par.prompt_extend),
    )
    return Submission(check_inputs(req, spec, region, _Names()), names=NAMES)


def format_submit(task: Task) -> dict[str, Any]:
    return {"id": task.id, "object": "video", "model": task.model, "status": "queued", "progress": 0,
            "created_at": epoch(task.submit_time)}


def _dashscope_output(task: Task, video_url: str | None) -> dict[str, Any]:
    """``data.data.output``: the upstream DashScope task output, with the keys the gateway's docs shows."""
    out: dict[str, Any] = {}
    if task.status in (Status.FAILED, Status.CANCELED):
        out["code"] = task.code or "InternalError"
    if task.end_time is not None:
        out["end_time"] = format_time(task.end_time)
    if task.status in (Status.FAILED, Status.CANCELED):
        out["message"] = task.message or ""
    if task.status == Status.SUCCEEDED:
        out["orig_prompt"] = task.orig_prompt or task.request.prompt
    if task.scheduled_time is not None:
        out["scheduled_time"] = format_time(task.scheduled_time)
    out["submit_time"] = format_time(task.submit_time)
    out["task_id"] = task.id
    out["task_status"] = task.status.value
    if task.status == Status.SUCCEEDED:
        out["video_url"] = video_url
    return out


USAGE_KEYS = ("SR", "duration", "input_video_duration", "output_video_duration", "size", "video_count",
              "video_ratio")


def format_task(task: Task, view: View) -> dict[str, Any]:
    """The poll envelope of the gateway's docs for a task at any status."""
    status = STATUSES.get(task.status, "FAILURE")
    video_url = view.video_url
    inner: dict[str, Any] = {"output": _dashscope_output(task, video_url), "request_id": task.request_id}
    if task.status == Status.SUCCEEDED and task.usage:
        inner["usage"] = {k: task.usage[k] for k in USAGE_KEYS if k in task.usage}
    if status == "SUCCESS":
        reason = video_url or ""
    elif status == "FAILURE":
        reason = f"task failed, code: {task.code or 'InternalError'} , message: {task.message or ''}"
    else:
        reason = ""
    return {"code": "success", "message": "", "data": {
        "task_id": task.id,
        "action": ACTION,
        "status": status,
        "fail_reason": reason,
        "submit_time": epoch(task.submit_time),
        "start_time": epoch(task.scheduled_time) or 0,
        "finish_time": epoch(task.end_time) or 0,
        "progress": f"{100 if status != 'IN_PROGRESS' else task.progress}%",
        "data": inner,
    }}
