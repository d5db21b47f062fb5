"""openr2v extensions: a key's own quota (``GET /api/v1/openr2v/quota``) and the admin's quota endpoints
(``/api/v1/openr2v/admin/quotas``, with ``OPENR2V_ADMIN_KEY``). docs/quotas.md describes both."""

from __future__ import annotations

import asyncio
import hmac
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from openr2v.api.common import dialect_route, parse_json_object, principal, read_body, runtime
from openr2v.api.openapi import errors, json_body
from openr2v.errors import InvalidApiKey, InvalidParameter, NotFound
from openr2v.keys import owner_id
from openr2v.tasks.quotas import Limits

from .protocol import ErrorBody, QuotaLimitsBody, QuotaList, QuotaResponse
from .translate import format_error

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/openr2v", route_class=dialect_route(format_error), tags=["openr2v"])
OWNER = re.compile(r"[0-9a-f]{24}")


@router.get("/quota", response_model=QuotaResponse, responses=errors(ErrorBody, 401, 500))
async def own_quota(request: Request) -> JSONResponse:
    """This key's limits, free quota, what it used and holds reserved per UTC day, month and in total,
    and what remains."""
    who = principal(request)
    rt = runtime(request)
    status = await asyncio.to_thread(rt.service.quotas.status, who.owner, rt.service.clock())
    return JSONResponse({"request_id": request.state.request_id, "output": status})


def _admin(request: Request) -> None:
    configured = runtime(request).settings.admin_key
    if not configured:
        raise InvalidApiKey("The admin endpoints are disabled: the server has no OPENR2V_ADMIN_KEY.")
    header = (request.headers.get("authorization") or "").strip()
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else header
    if not hmac.compare_digest(token.encode(), configured.encode()):
        raise InvalidApiKey("Invalid admin key provided.")


def _owners(request: Request) -> dict[str, tuple[str, str]]:
    """{owner: (key hint, region)} of every key of the ring."""
    # At most 6 characters, and never more than half of a key.
    return {owner_id(k): (k[:min(6, len(k) // 2)] + "...", region) for k, region in runtime(request).keys.keys.items()}


def _owner(request: Request, key: str) -> str:
    """An API key of the ring, or its owner id, -> the owner id."""
    owners = _owners(request)
    if key in runtime(request).keys.keys:
        return owner_id(key)
    if OWNER.fullmatch(key) and key in owners:
        return key
    raise NotFound("key names no API key of this server (give the key itself or its owner id).", param="key")


async def _status(request: Request, owner: str) -> dict[str, Any]:
    rt = runtime(request)
    hint, region = _owners(request)[owner]
    status = await asyncio.to_thread(rt.service.quotas.status, owner, rt.service.clock())
    return {"owner": owner, "key": hint, "region": region, **status}


@router.get("/admin/quotas", response_model=QuotaList, responses=errors(ErrorBody, 401, 500))
async def list_quotas(request: Request) -> JSONResponse:
    """Every key's limits and usage."""
    _admin(request)
    keys = [await _status(request, owner) for owner in _owners(request)]
    return JSONResponse({"request_id": request.state.request_id, "output": {"keys": keys}})


@router.get("/admin/quotas/{key}", response_model=QuotaResponse, responses=errors(ErrorBody, 401, 404, 500))
async def get_quota(key: str, request: Request) -> JSONResponse:
    """One key's limits and usage; ``key`` is the API key or its owner id."""
    _admin(request)
    output = await _status(request, _owner(request, key))
    return JSONResponse({"request_id": request.state.request_id, "output": output})


@router.put("/admin/quotas/{key}", response_model=QuotaResponse, responses=errors(ErrorBody, 400, 401, 404, 500),
            openapi_extra=json_body(QuotaLimitsBody, "DashScope", description="The key's new limits, in full: "
                                    "a limit left out is no limit (free_seconds: 0)."))
async def set_quota(key: str, request: Request) -> JSONResponse:
    """Replace a key's limits at run time (kept in the task store; they win over OPENR2V_QUOTAS)."""
    _admin(request)
    owner = _owner(request, key)
    body = parse_json_object(await read_body(request))
    try:
        limits = Limits.parse(body, "body")
    except ValueError as e:
        raise InvalidParameter(str(e), param="body") from None
    rt = runtime(request)
    await asyncio.to_thread(rt.service.quotas.set_override, owner, limits, rt.service.clock())
    return JSONResponse({"request_id": request.state.request_id, "output": await _status(request, owner)})


@router.delete("/admin/quotas/{key}", response_model=QuotaResponse, responses=errors(ErrorBody, 401, 404, 500))
async def reset_quota(key: str, request: Request) -> JSONResponse:
    """Drop the admin's limits of a key: OPENR2V_QUOTAS applies again."""
    _admin(request)
    owner = _owner(request, key)
    await asyncio.to_thread(runtime(request).service.quotas.drop_override, owner)
    return JSONResponse({"request_id": request.state.request_id, "output": await _status(request, owner)})
