"""Wire models of the gateway dialect (the gateway's docs, ``/v1/video/generations``). Wire shapes only."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, StrictBool, StrictInt, StrictStr

from openr2v.api.dialects.base import Wire

__all__ = ["ErrorBody", "Metadata", "MetadataInput", "MetadataParameters", "SubmitBody", "SubmitResponse",
           "TaskData", "TaskEnvelope"]


class MetadataInput(Wire):
    reference_video_urls: list[StrictStr] | None = None
    negative_prompt: StrictStr | None = None


class MetadataParameters(Wire):
    size: StrictStr | None = None
    duration: StrictInt | None = None
    shot_type: StrictStr | None = None
    watermark: StrictBool | None = None
    seed: StrictInt | None = None
    # Official Wan request fields the metadata may carry (the gateway's docs: "optional fields from the official
    # Wan request format"); wan2.6-r2v rules apply to them.
    prompt_extend: StrictBool | None = None
    audio: StrictBool | None = None


class Metadata(Wire):
    input: MetadataInput = MetadataInput()
    parameters: MetadataParameters = MetadataParameters()


class SubmitBody(Wire):
    prompt: StrictStr
    model: StrictStr
    metadata: Metadata = Metadata()


class SubmitResponse(BaseModel):
    id: str
    object: Literal["video"]
    model: str
    status: Literal["queued"]
    progress: int
    created_at: int


class ErrorBody(BaseModel):
    code: str
    message: str
    data: None = None


class TaskData(BaseModel):
    task_id: str
    action: str
    status: Literal["IN_PROGRESS", "SUCCESS", "FAILURE"]
    fail_reason: str
    submit_time: int
    start_time: int
    finish_time: int
    progress: str
    data: dict[str, Any]


class TaskEnvelope(BaseModel):
    code: str
    message: str
    data: TaskData
