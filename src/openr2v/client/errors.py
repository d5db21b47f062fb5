"""Exceptions of the openr2v SDK. Every one carries ``code``, ``message`` and ``request_id``.

    OpenR2VClientError              code, message, request_id
    ├── InvalidRequestError         (also ValueError) the arguments cannot make a request
    ├── APIConnectionError          the server could not be reached (after retries)
    ├── APIError                    the server answered an HTTP error; + status_code, body
    │   ├── BadRequestError         400  InvalidParameter, InvalidURL, UnsupportedOperation, ...
    │   ├── AuthenticationError     401  InvalidApiKey
    │   ├── PermissionDeniedError   403  AccessDenied
    │   ├── NotFoundError           404  NotFound
    │   ├── RateLimitError          429  Throttling.*
    │   └── ServerError             5xx  InternalError, ServiceUnavailable
    ├── UploadError                 a local file could not be uploaded (getPolicy or the form POST)
    ├── WaitTimeout                 the task did not finish in time; + task (the last state seen)
    └── TaskError                   the task ended without a video; + task
        ├── TaskFailed              FAILED (code and message from the task)
        └── TaskCanceled            CANCELED, or UNKNOWN (expired or never known)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openr2v.client.types import BaseTask

__all__ = [
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "InvalidRequestError",
    "NotFoundError",
    "OpenR2VClientError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "TaskCanceled",
    "TaskError",
    "TaskFailed",
    "UploadError",
    "WaitTimeout",
    "error_for_status",
]


class OpenR2VClientError(Exception):
    """Base of every SDK error."""

    def __init__(self, message: str, *, code: str = "", request_id: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [f"{self.code}: {self.message}" if self.code else self.message]
        if self.request_id:
            parts.append(f"(request_id {self.request_id})")
        return " ".join(parts)


class InvalidRequestError(OpenR2VClientError, ValueError):
    """The arguments cannot make a valid request (caught before anything is sent)."""


class APIConnectionError(OpenR2VClientError):
    """The server could not be reached or the connection broke."""


class APIError(OpenR2VClientError):
    """An HTTP error answered by the server, in DashScope's ``{request_id, code, message}`` envelope."""

    def __init__(self, message: str, *, code: str = "", request_id: str = "", status_code: int = 0,
                 body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message, code=code, request_id=request_id)
        self.status_code = status_code
        self.body = body
        # The response headers (e.g. Retry-After on a 429), for callers that retry on their own.
        self.headers: Mapping[str, str] = headers if headers is not None else {}

    def __str__(self) -> str:
        return f"HTTP {self.status_code} {super().__str__()}"


class BadRequestError(APIError):
    pass


class AuthenticationError(APIError):
    pass


class PermissionDeniedError(APIError):
    pass


class NotFoundError(APIError):
    pass


class RateLimitError(APIError):
    pass


class ServerError(APIError):
    pass


class UploadError(OpenR2VClientError):
    """A local reference could not be uploaded through getPolicy and the OSS form POST."""


class WaitTimeout(OpenR2VClientError):
    def __init__(self, message: str, task: BaseTask) -> None:
        super().__init__(message, code="WaitTimeout", request_id=task.request_id)
        self.task = task


class TaskError(OpenR2VClientError):
    """A task ended without a video. ``task`` is its final state."""

    def __init__(self, task: BaseTask) -> None:
        message = task.message or f"The task ended {task.status}."
        super().__init__(f"task {task.task_id} {task.status}: {message}", code=task.code or str(task.status),
                         request_id=task.request_id)
        self.task = task


class TaskFailed(TaskError):
    pass


class TaskCanceled(TaskError):
    pass


_BY_CODE: dict[str, type[APIError]] = {
    "InvalidApiKey": AuthenticationError,
    "AccessDenied": PermissionDeniedError,
    "AccessDenied.Unpurchased": PermissionDeniedError,
    "Arrearage": PermissionDeniedError,
    "NotFound": NotFoundError,
    "Model.NotExist": NotFoundError,
    "Throttling": RateLimitError,
    "Throttling.RateQuota": RateLimitError,
    "Throttling.AllocationQuota": RateLimitError,
    "InternalError": ServerError,
}
_BY_STATUS: dict[int, type[APIError]] = {400: BadRequestError, 401: AuthenticationError,
                                         403: PermissionDeniedError, 404: NotFoundError, 429: RateLimitError}


def error_for_status(status_code: int, code: str, message: str, request_id: str, body: Any = None,
                     headers: Mapping[str, str] | None = None) -> APIError:
    """The exception class for an error: by DashScope code first, then by HTTP status."""
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else BadRequestError if 400 <= status_code < 500 else APIError
    return cls(message, code=code, request_id=request_id, status_code=status_code, body=body, headers=headers)
