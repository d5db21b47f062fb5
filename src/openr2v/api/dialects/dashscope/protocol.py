"""Wire models of the DashScope native dialect (the Model Studio guides (wan2.6-r2v, wan2.7-r2v)). Wire shapes only."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from openr2v.api.dialects.base import Wire

__all__ = ["CancelResponse", "ErrorBody", "EstimateResponse", "EventData", "LedgerResponse", "MediaItem",
           "ModelsResponse",
           "OssUploadForm", "PlanResponse", "PreviewBody", "PreviewPlanResponse", "QuotaLimitsBody", "QuotaList",
           "QuotaResponse", "SubmitBody", "SubmitInput",
           "SubmitParameters", "SubmitResponse", "TaskList", "TaskResponse", "UploadPolicyResponse",
           "WebhookSecretResponse"]


class MediaItem(Wire):
    type: StrictStr
    url: StrictStr
    reference_voice: StrictStr | None = None


class SubmitInput(Wire):
    prompt: StrictStr | None = None
    negative_prompt: StrictStr | None = None
    reference_urls: list[StrictStr] | None = None
    media: list[MediaItem] | None = None


class SubmitParameters(Wire):
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
    callback_url: StrictStr | None = None  # webhook fired on every status change (docs/webhooks.md)


class SubmitBody(Wire):
    model: StrictStr
    input: SubmitInput
    parameters: SubmitParameters = SubmitParameters()


class ErrorBody(BaseModel):
    request_id: str
    code: str
    message: str


TaskStatus = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"]


class TaskOutput(BaseModel):
    """``output`` of a task; which keys appear depends on the status (translate.format_task)."""

    model_config = ConfigDict(extra="allow")
    task_id: str
    task_status: TaskStatus
    submit_time: str | None = None
    scheduled_time: str | None = None
    end_time: str | None = None
    orig_prompt: str | None = None
    actual_prompt: str | None = None
    video_url: str | None = None
    code: str | None = None
    message: str | None = None


class TaskResponse(BaseModel):
    request_id: str
    output: TaskOutput
    usage: dict[str, Any] | None = None


class EventOutput(TaskOutput):
    progress: int = Field(ge=0, le=100)


class EventData(BaseModel):
    """The ``data`` of an event of ``GET /tasks/{id}/events``: the task body plus its progress."""

    request_id: str
    output: EventOutput
    usage: dict[str, Any] | None = None


class SubmitOutput(BaseModel):
    task_id: str
    task_status: TaskStatus


class SubmitResponse(BaseModel):
    request_id: str
    output: SubmitOutput


class CancelResponse(BaseModel):
    """A cancel that took answers with the request id alone, as DashScope does."""

    request_id: str


class ListItem(BaseModel):
    task_id: str
    request_id: str
    model_name: str
    status: TaskStatus
    region: str
    gmt_create: int
    start_time: int | None
    end_time: int | None


class TaskList(BaseModel):
    request_id: str
    data: list[ListItem]
    tasks: list[TaskOutput]  # the 2.x SDK's spelling of the same page
    total: int
    total_page: int
    page_no: int
    page_size: int


class PlanOutput(BaseModel):
    task_id: str
    task_status: TaskStatus
    actual_prompt: str | None
    plan: dict[str, Any] | None
    render: dict[str, Any] | None


class PlanResponse(BaseModel):
    request_id: str
    output: PlanOutput


class Ledger(BaseModel):
    tasks: int
    billed_seconds: float
    cost_usd: float


class LedgerResponse(BaseModel):
    request_id: str
    output: Ledger


class UploadPolicy(BaseModel):
    policy: str
    signature: str
    upload_dir: str
    upload_host: str
    expire_in_seconds: str
    max_file_size_mb: str
    capacity_limit_mb: str
    oss_access_key_id: str
    x_oss_object_acl: str
    x_oss_forbid_overwrite: str


class UploadPolicyResponse(BaseModel):
    request_id: str
    data: UploadPolicy


class OssUploadForm(BaseModel):
    """The OSS-style form POST of a file under a policy from ``GET /uploads`` (no API key)."""

    OSSAccessKeyId: str | None = None  # noqa: N815 - the form's spelling
    Signature: str  # noqa: N815
    policy: str
    key: str
    file: bytes = Field(json_schema_extra={"format": "binary"})
    x_oss_content_type: str | None = Field(None, alias="x-oss-content-type")


class PreviewBody(BaseModel):
    """The body of plan and estimate: a submit body read leniently (only ``model`` is checked as such)."""

    model_config = ConfigDict(extra="allow")
    model: StrictStr
    input: Any = None
    parameters: Any = None
    reference_seconds: Any = None  # per reference: its length in seconds, when the caller knows it


class ModelsOutput(BaseModel):
    region: str
    models: list[dict[str, Any]]


class ModelsResponse(BaseModel):
    request_id: str
    output: ModelsOutput


class PreviewPlan(BaseModel):
    model: str
    labels: list[str]
    plan: dict[str, Any]
    actual_prompt: str


class PreviewPlanResponse(BaseModel):
    request_id: str
    output: PreviewPlan


class EstimateResponse(BaseModel):
    request_id: str
    output: dict[str, Any]


class WebhookSecret(BaseModel):
    webhook_secret: str
    header: str
    scheme: str
    legacy_secret: str
    legacy_header: str
    legacy_scheme: str


class WebhookSecretResponse(BaseModel):
    request_id: str
    output: WebhookSecret


class QuotaLimitsBody(BaseModel):
    """A key's limits (docs/quotas.md); a limit left out or null is no limit."""

    model_config = ConfigDict(extra="forbid")

    free_seconds: float = Field(0.0, ge=0)
    seconds_per_day: float | None = Field(None, ge=0)
    seconds_per_month: float | None = Field(None, ge=0)
    seconds_total: float | None = Field(None, ge=0)
    cost_usd_per_day: float | None = Field(None, ge=0)
    cost_usd_per_month: float | None = Field(None, ge=0)
    cost_usd_total: float | None = Field(None, ge=0)


class QuotaResponse(BaseModel):
    request_id: str
    output: dict[str, Any]


class QuotaKeys(BaseModel):
    keys: list[dict[str, Any]]


class QuotaList(BaseModel):
    request_id: str
    output: QuotaKeys


class WebhookDelivery(BaseModel):
    webhook_id: str
    task_id: str
    event: str
    url: str
    state: Literal["pending", "delivered", "dead"]
    attempts: int
    created_at: float
    finished_at: float | None = None
    next_attempt_at: float | None = None
    last_error: str | None = None


class WebhookDeliveries(BaseModel):
    deliveries: list[WebhookDelivery]


class WebhookDeliveriesResponse(BaseModel):
    request_id: str
    output: WebhookDeliveries


class WebhookDeliveryResponse(BaseModel):
    request_id: str
    output: WebhookDelivery
