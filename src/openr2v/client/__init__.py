"""The openr2v Python SDK: a DashScope-dialect client for openr2v and for Alibaba Cloud's Wan API.

    from openr2v import Client
    with Client("http://127.0.0.1:8000", api_key="sk-...") as client:
        task = client.generate("character1 waves at character2.", ["me.mp4", "https://example.com/friend.png"],
                               model="wan2.6-r2v-flash", size="1280*720", duration=5, output="out.mp4")

Light by design: httpx and the standard library only; nothing of the server is imported.
Errors are in ``openr2v.client.errors`` (each carries code, message and request_id).
"""

from openr2v.client.async_client import AsyncClient
from openr2v.client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    InvalidRequestError,
    NotFoundError,
    OpenR2VClientError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TaskCanceled,
    TaskError,
    TaskFailed,
    UploadError,
    WaitTimeout,
)
from openr2v.client.sync_client import Client
from openr2v.client.types import AsyncTask, BaseTask, Ref, Task, TaskPage, TaskStatus, Usage
from openr2v.client.webhooks import WebhookVerificationError
from openr2v.client.webhooks import verify as verify_webhook

__all__ = [
    "APIConnectionError",
    "APIError",
    "AsyncClient",
    "AsyncTask",
    "AuthenticationError",
    "BadRequestError",
    "BaseTask",
    "Client",
    "InvalidRequestError",
    "NotFoundError",
    "OpenR2VClientError",
    "PermissionDeniedError",
    "RateLimitError",
    "Ref",
    "ServerError",
    "Task",
    "TaskCanceled",
    "TaskError",
    "TaskFailed",
    "TaskPage",
    "TaskStatus",
    "UploadError",
    "Usage",
    "WaitTimeout",
    "WebhookVerificationError",
    "verify_webhook",
]
