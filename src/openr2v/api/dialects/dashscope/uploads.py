"""Temporary uploads as DashScope does them: a signed POST policy, then an OSS-style form POST.

``GET /api/v1/uploads?action=getPolicy&model=M`` returns a policy bound to the caller's key
and an ``upload_dir``; the client POSTs the file to ``upload_host`` (our ``/oss-upload``) with
no Authorization, only the signed policy; it then references the file as ``oss://<key>``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from openr2v.api.common import dialect_route, principal, public_base, runtime
from openr2v.api.openapi import NO_AUTH, errors, query
from openr2v.domain.models import DIALECT_MODELS, dialect_model
from openr2v.errors import AccessDenied, InvalidParameter

from .protocol import ErrorBody, OssUploadForm, UploadPolicyResponse
from .translate import format_error

__all__ = ["oss_router", "router"]

router = APIRouter(prefix="/api/v1", route_class=dialect_route(format_error), tags=["dashscope"])
oss_router = APIRouter(route_class=dialect_route(format_error), tags=["dashscope"])

POLICY_SECONDS = 300

POLICY_DOC: dict[str, Any] = {"parameters": [
    query("action", {"type": "string", "enum": ["getPolicy"]}, required=True),
    query("model", {"type": "string", "enum": list(DIALECT_MODELS["dashscope"])}, required=True,
          description="The model the file is for."),
]}
UPLOAD_DOC: dict[str, Any] = {**NO_AUTH, "requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": OssUploadForm.model_json_schema(by_alias=True)}}}}


def _sign(secret: bytes, policy: str) -> str:
    return base64.b64encode(hmac.new(secret, policy.encode(), hashlib.sha256).digest()).decode()


@router.get("/uploads", response_model=UploadPolicyResponse, responses=errors(ErrorBody, 400, 401, 500),
            openapi_extra=POLICY_DOC)
@router.get("/uploads/", include_in_schema=False)
async def get_policy(request: Request) -> JSONResponse:
    who = principal(request)
    rt = runtime(request)
    action = request.query_params.get("action")
    if action != "getPolicy":
        raise InvalidParameter(f"action {action!r} is not supported; use action=getPolicy.", param="action")
    model = request.query_params.get("model") or ""
    if not model:
        raise InvalidParameter("model is required to get an upload policy.", param="model")
    if dialect_model("dashscope", model) is None:
        raise InvalidParameter(f"Model not exist: {model!r}.", param="model")
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    upload_dir = f"dashscope-instant/{who.owner}/{day}/{uuid.uuid4()}"
    max_bytes = rt.settings.max_upload_bytes
    expires = int(time.time()) + POLICY_SECONDS
    policy_doc = {
        "expiration": datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conditions": [["content-length-range", 0, max_bytes], ["starts-with", "$key", upload_dir]],
        "owner": who.owner,
        "expires": expires,
    }
    policy = base64.b64encode(json.dumps(policy_doc, separators=(",", ":")).encode()).decode()
    return JSONResponse({"request_id": request.state.request_id, "data": {
        "policy": policy,
        "signature": _sign(rt.secret, policy),
        "upload_dir": upload_dir,
        "upload_host": f"{public_base(request)}/oss-upload",
        "expire_in_seconds": str(POLICY_SECONDS),
        "max_file_size_mb": str(max_bytes // (1024 * 1024)),
        "capacity_limit_mb": str(max_bytes // (1024 * 1024) * 10),
        "oss_access_key_id": "openr2v",
        "x_oss_object_acl": "private",
        "x_oss_forbid_overwrite": "true",
    }})


@oss_router.post("/oss-upload", openapi_extra=UPLOAD_DOC, responses={
    200: {"description": "Stored (an empty body, as OSS answers).", "content": {}},
    **errors(ErrorBody, 400, 403, 500)})
async def oss_upload(request: Request) -> Response:
    rt = runtime(request)
    form = await request.form(max_files=1, max_fields=20, max_part_size=1024 * 1024)
    policy = str(form.get("policy") or "")
    signature = str(form.get("Signature") or "")
    key = str(form.get("key") or "")
    file = form.get("file")
    # Bytes: compare_digest refuses str with non-ASCII characters (a forged form is a 403, not a 500).
    if not policy or not hmac.compare_digest(_sign(rt.secret, policy).encode(), signature.encode()):
        raise AccessDenied("The request signature we calculated does not match the signature you provided.")
    doc = json.loads(base64.b64decode(policy))
    if doc["expires"] < time.time():
        raise AccessDenied("Invalid according to Policy: Policy expired.")
    prefix = doc["conditions"][1][2]
    if not key.startswith(prefix + "/") or ".." in key.split("/") or len(key) > 480:
        raise AccessDenied("Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$key\"].")
    if not isinstance(file, UploadFile):
        raise InvalidParameter("The form has no file field.", param="file")
    max_bytes = int(doc["conditions"][0][2])
    content_type = str(form.get("x-oss-content-type") or "") or None
    await asyncio.to_thread(rt.service.add_upload, doc["owner"], key, file.file, max_bytes, content_type)
    return Response(status_code=200)
