"""Wire models of the DashScope native dialect (seeds 000 and 001). Wire shapes only."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr

__all__ = ["ErrorBody", "MediaItem", "SubmitBody", "SubmitInput", "SubmitParameters"]


class _Wire(BaseModel):
    # DashScope ignores fields it does not know; so do we.
    model_config = ConfigDict(extra="ignore")


class MediaItem(_Wire):
    type: StrictStr
    url: StrictStr
    reference_voice: StrictStr | None = None


class SubmitInput(_Wire):
    prompt: StrictStr | None = None
    negative_prompt: StrictStr | None = None
    reference_urls: list[StrictStr] | None = None
    media: list[MediaItem] | None = None


class SubmitParameters(_Wire):
    size: StrictStr | None = None
    resolution: StrictStr | None = None
    ratio: StrictStr | None = None
    duration: StrictInt | None = None
    audio: StrictBool | None = None
    shot_type: StrictStr | None = None
    watermark: StrictBool | None = None
    seed: StrictInt | None = None
    prompt_extend: StrictBool | None = None
    # openr2v extensions
    captions: StrictBool | None = None
    callback_url: StrictStr | None = None  # webhook fired on every status change (README: webhooks)


class SubmitBody(_Wire):
    model: StrictStr
    input: SubmitInput
    parameters: SubmitParameters = SubmitParameters()


class ErrorBody(BaseModel):
    request_id: str
    code: str
    message: str


class TaskOutput(BaseModel):
    model_config = ConfigDict(extra="allow")
    task_id: str
    task_status: str


class TaskResponse(BaseModel):
    request_id: str
    output: TaskOutput
    usage: dict[str, Any] | None = None
