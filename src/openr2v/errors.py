"""Domain errors: what went wrong, in the canonical vocabulary (DashScope's codes).

Dialects translate these at the edge; the core raises only these. A bare ``ValueError``
or ``KeyError`` is an internal bug and surfaces as ``InternalError`` (HTTP 500), never
as a client error.

    OpenR2VError                    code, http status, message, param
    ├── InvalidParameter            400  a field breaks a documented rule
    │   ├── EmptyInput              400  BadRequest.EmptyInput
    │   ├── EmptyParameters         400  BadRequest.EmptyParameters
    │   ├── EmptyModel              400  BadRequest.EmptyModel
    │   ├── InvalidURL              400  a reference URL that cannot be used
    │   └── UnsupportedOperation    400  e.g. cancelling a task that is not PENDING
    ├── InvalidApiKey               401
    ├── AccessDenied                403  model not offered here, synchronous call, ...
    ├── NotFound                    404
    ├── Throttled                   429  Throttling.RateQuota
    ├── QuotaExceeded               400  Arrearage: the key's budget or free quota cannot cover the task
    ├── DataInspectionFailed        400  moderation: prohibited content in the input or the output
    │   └── IPInfringementSuspect   400  moderation: a protected name (intellectual property)
    ├── InputDownloadFailed         task failure: a reference could not be fetched
    ├── UnsupportedFileFormat       task failure: a reference is not what it must be
    ├── Canceled                    task ended by its owner
    └── InternalError               500 / task failure
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "Canceled",
    "DataInspectionFailed",
    "EmptyInput",
    "EmptyModel",
    "EmptyParameters",
    "IPInfringementSuspect",
    "InputDownloadFailed",
    "InternalError",
    "InvalidApiKey",
    "InvalidParameter",
    "InvalidURL",
    "NotFound",
    "OpenR2VError",
    "QuotaExceeded",
    "Throttled",
    "UnsupportedFileFormat",
    "UnsupportedOperation",
]


class OpenR2VError(Exception):
    """Base of every error the service reports to a client or records on a task."""

    code: str = "InternalError"
    http_status: int = 500

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, param={self.param!r})"


class InvalidParameter(OpenR2VError):
    code = "InvalidParameter"
    http_status = 400


class EmptyInput(InvalidParameter):
    code = "BadRequest.EmptyInput"


class EmptyParameters(InvalidParameter):
    code = "BadRequest.EmptyParameters"


class EmptyModel(InvalidParameter):
    code = "BadRequest.EmptyModel"


class InvalidURL(InvalidParameter):
    code = "InvalidURL"


class UnsupportedOperation(InvalidParameter):
    code = "UnsupportedOperation"


class InvalidApiKey(OpenR2VError):
    code = "InvalidApiKey"
    http_status = 401


class AccessDenied(OpenR2VError):
    code = "AccessDenied"
    http_status = 403


class NotFound(OpenR2VError):
    code = "NotFound"
    http_status = 404


class Throttled(OpenR2VError):
    code = "Throttling.RateQuota"
    http_status = 429


class QuotaExceeded(OpenR2VError):
    """A submit the key's quota cannot cover (tasks/quotas.py): DashScope's code and words for an account
    that cannot pay, then ``detail`` (which limit, how much is used); other dialects word it their way."""

    code = "Arrearage"
    http_status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(f"Access denied, please make sure your account is in good standing. {detail}")
        self.detail = detail


class DataInspectionFailed(OpenR2VError):
    code = "DataInspectionFailed"
    http_status = 400


class IPInfringementSuspect(DataInspectionFailed):
    """A moderation refusal too (``except DataInspectionFailed`` catches it), with DashScope's own code."""

    code = "IPInfringementSuspect"


class InputDownloadFailed(OpenR2VError):
    code = "BadRequest.InputDownloadFailed"
    http_status = 400


class UnsupportedFileFormat(OpenR2VError):
    code = "UnsupportedFileFormat"
    http_status = 400


class Canceled(OpenR2VError):
    code = "Canceled"
    http_status = 400


class InternalError(OpenR2VError):
    code = "InternalError"
    http_status = 500
