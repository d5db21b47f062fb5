"""Wire models of openr2v's OpenAI-style ``/v1/videos``. Wire shapes only.

The request is what the ``openai`` SDK's ``videos.create`` sends (``prompt``, ``model``,
``seconds``, ``size``, ``input_reference``) plus openr2v's fields (``references``,
``parameters``, ``negative_prompt``) that ``extra_body`` carries, plus vLLM-Omni's extension fields
(``width``, ``height``, ``num_frames``, ``fps``, ``seed``, ``image_reference`` ...; see
docs/dialects/openai-videos-extensions.md), which a multipart form sends as strings (JSON for the objects).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, StrictBool, StrictFloat, StrictInt, StrictStr

from openr2v.api.dialects.base import Wire

__all__ = ["CreateBody", "ErrorBody", "ErrorDetail", "InputReference", "MediaReference", "Parameters",
           "ReferenceItem", "Video", "VideoDeleted", "VideoError", "VideoList"]


class ReferenceItem(Wire):
    url: StrictStr
    # image | video | first_frame (reference_image / reference_video also accepted); None: from the URL.
    type: StrictStr | None = None
    reference_voice: StrictStr | None = None


class InputReference(Wire):
    image_url: StrictStr | None = None
    file_id: StrictStr | None = None


class MediaReference(Wire):
    """vLLM-Omni's ``image_reference`` / ``video_reference`` / ``audio_reference`` object."""

    image_url: StrictStr | None = None
    video_url: StrictStr | None = None
    audio_url: StrictStr | None = None
    file_id: StrictStr | None = None


Number = StrictFloat | StrictInt


class Parameters(Wire):
    audio: StrictBool | None = None
    shot_type: StrictStr | None = None
    watermark: StrictBool | None = None
    seed: StrictInt | None = None
    prompt_extend: StrictBool | None = None
    resolution: StrictStr | None = None  # wan2.7 (720P | 1080P) when size is not given
    ratio: StrictStr | None = None


class CreateBody(Wire):
    prompt: StrictStr
    model: StrictStr | None = None
    seconds: StrictStr | StrictInt | None = None
    size: StrictStr | None = None
    input_reference: InputReference | None = None
    negative_prompt: StrictStr | None = None
    references: list[StrictStr | ReferenceItem] | None = None
    parameters: Parameters = Parameters()
    # vLLM-Omni's extension fields (a form sends the objects as JSON strings; the router decodes them)
    image_reference: MediaReference | None = None
    video_reference: MediaReference | None = None
    audio_reference: MediaReference | None = None
    width: StrictInt | None = None
    height: StrictInt | None = None
    num_frames: StrictInt | None = None
    fps: StrictInt | None = None
    seed: StrictInt | None = None
    generate_sound: StrictBool | None = None
    num_inference_steps: StrictInt | None = None
    guidance_scale: Number | None = None
    guidance_scale_2: Number | None = None
    true_cfg_scale: Number | None = None
    boundary_ratio: Number | None = None
    flow_shift: Number | None = None
    lora: dict[str, Any] | None = None
    extra_params: dict[str, Any] | None = None
    user: StrictStr | None = None


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    id: str
    object: Literal["video"] = "video"
    created_at: int
    status: Literal["queued", "in_progress", "completed", "failed"]
    model: str
    progress: int
    seconds: str
    size: str
    completed_at: int | None = None
    expires_at: int | None = None
    error: VideoError | None = None
    prompt: str | None = None
    remixed_from_video_id: str | None = None


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail
