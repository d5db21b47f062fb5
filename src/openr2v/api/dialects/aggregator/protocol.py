"""Wire models of the aggregator dialect (the aggregator's docs, ``wan26_r2v``). Wire shapes only."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, StrictBool, StrictInt, StrictStr

from openr2v.api.dialects.base import Wire

__all__ = ["ContentItem", "ErrorBody", "ErrorDetail", "OutputItem", "SubmitBody", "SubmitInput",
           "SubmitParameters", "TaskBody", "UsageBody"]


class SubmitInput(Wire):
    prompt: StrictStr | None = None
    reference_urls: list[StrictStr] | None = None
    audio_url: StrictStr | None = None
    negative_prompt: StrictStr | None = None  # not in the aggregator's docs; accepted as the wan2.6 family does


class SubmitParameters(Wire):
    size: StrictStr | None = None
    duration: StrictInt | None = None
    prompt_extend: StrictBool | None = None
    watermark: StrictBool | None = None
    audio: StrictBool | None = None
    shot_type: StrictStr | None = None
    seed: StrictInt | None = None


class SubmitBody(Wire):
    model: StrictStr
    input: SubmitInput
    parameters: SubmitParameters = SubmitParameters()


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
    metadata: dict[str, Any]


class ContentItem(BaseModel):
    type: str
    url: str
    duration: int


class OutputItem(BaseModel):
    content: list[ContentItem]
    jobId: str  # noqa: N815 - the wire's spelling


class UsageBody(BaseModel):
    cost: str
    discount: float


class TaskBody(BaseModel):
    """A task at any status; ``output`` and ``usage`` only when completed, ``error`` only when failed."""

    id: str
    task_id: str
    model: str
    status: str
    created_at: int
    progress: float | None = None
    output: list[OutputItem] | None = None
    usage: UsageBody | None = None
    error: ErrorDetail | None = None
    metadata: dict[str, Any]
