"""openr2v extensions under /api/v1/openr2v: models, plan preview, cost estimate, webhook secret,
webhook deliveries (listed, dead ones redelivered; a key sees only its own).

Plan and estimate take the submit body (``model``, ``input``, ``parameters``) and judge it
leniently, since the console asks while the user is still typing: no prompt or no references
yet is fine; a parameter the model refuses is an ``InvalidParameter`` as at submit.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from openr2v.api.common import dialect_route, parse_json_object, principal, read_body, runtime
from openr2v.api.dialects.base import wire_size
from openr2v.api.digits import small_int
from openr2v.api.openapi import errors, json_body, optional, query
from openr2v.domain.models import DIALECT_MODELS, TIERS, ModelSpec, dialect_model
from openr2v.domain.preview import PreviewRef, estimate, reference_labels
from openr2v.domain.prompt import plan_prompt, plan_to_prompt
from openr2v.domain.request import guess_kind, source_scheme
from openr2v.errors import InvalidParameter, NotFound
from openr2v.tasks.outbox import DEAD, DELIVERED, PENDING
from openr2v.tasks.webhooks import SIGNATURE_HEADER

from .protocol import (
    ErrorBody,
    EstimateResponse,
    ModelsResponse,
    PreviewBody,
    PreviewPlanResponse,
    WebhookDeliveriesResponse,
    WebhookDeliveryResponse,
    WebhookSecretResponse,
)
from .translate import MEDIA_TYPES, format_error

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/openr2v", route_class=dialect_route(format_error), tags=["openr2v"])

PREVIEW_DOC = json_body(PreviewBody, "DashScope", description="A submit body (model, input, parameters), read "
                        "leniently; reference_seconds optionally gives each reference's length.")

@router.get("/models", response_model=ModelsResponse, responses=errors(ErrorBody, 401, 500))
async def models(request: Request) -> JSONResponse:
    """The models this server offers in its region, with what each accepts (from the registry)."""
    principal(request)
    region = runtime(request).settings.region
    out = [_describe(spec, region) for spec in DIALECT_MODELS["dashscope"].values() if region in spec.regions]
    return JSONResponse({"request_id": request.state.request_id, "output": {"region": region, "models": out}})


def _describe(spec: ModelSpec, region: str) -> dict[str, Any]:
    return {
        "name": spec.name, "family": spec.family, "input_style": spec.input_style,
        "sizes": list(spec.sizes), "default_size": spec.default_size, "resolutions": list(spec.resolutions),
        "ratios": list(spec.ratios), "default_resolution": spec.default_resolution,
        "default_ratio": spec.default_ratio, "durations": list(spec.durations_for(region)),
        "default_duration": spec.default_duration, "audio_optional": spec.silent_allowed,
        "default_audio": spec.default_audio, "shot_types": list(spec.shot_types),
        "default_shot_type": spec.default_shot_type, "max_images": spec.max_images, "max_videos": spec.max_videos,
        "max_total": spec.max_total, "max_first_frames": spec.max_first_frames, "voice_allowed": spec.voice_allowed,
        "max_prompt_chars": spec.max_prompt_chars,
        "prices_usd_per_second": {str(tier): {"audio": p.audio, "silent": p.silent} for tier, p in spec.prices.items()},
    }


class _Preview:
    """A submit body read leniently: the model, the prompt, the references and the parameters."""

    def __init__(self, raw: bytes) -> None:
        body = parse_json_object(raw or b"{}", "model, input and parameters")
        spec = dialect_model("dashscope", str(body.get("model") or ""))
        if spec is None:
            raise InvalidParameter(f"Model not exist: {body.get('model')!r}. Supported models: "
                                   f"{', '.join(DIALECT_MODELS['dashscope'])}.", param="model")
        self.spec = spec
        inp: dict[str, Any] = body["input"] if isinstance(body.get("input"), dict) else {}
        par: dict[str, Any] = body["parameters"] if isinstance(body.get("parameters"), dict) else {}
        self.prompt: str = inp["prompt"] if isinstance(inp.get("prompt"), str) else ""
        self.sources: list[tuple[str, str | None]] = []  # (url, kind)
        if isinstance(inp.get("media"), list):
            for item in inp["media"]:
                if isinstance(item, dict) and isinstance(item.get("url"), str):
                    self.sources.append((item["url"], MEDIA_TYPES.get(str(item.get("type")), None)))
        elif isinstance(inp.get("reference_urls"), list):
            self.sources = [(u, guess_kind(u)) for u in inp["reference_urls"] if isinstance(u, str)]
        hints = body.get("reference_seconds")
        self.seconds: list[float | None] = [
            float(h) if isinstance(h, int | float) and not isinstance(h, bool) else None
            for h in (hints if isinstance(hints, list) else [])]
        self.duration = _typed(par, "duration", int, spec.default_duration)
        self.shot_type = _typed(par, "shot_type", str, spec.default_shot_type)
        self.seed = _typed(par, "seed", int, 0)
        self.audio = _typed(par, "audio", bool, None)
        self.resolution = _typed(par, "resolution", str, None)
        self.ratio = _typed(par, "ratio", str, None)
        self.size = _size(_typed(par, "size", str, None))
        if spec.sizes and self.size is None and self.resolution is not None:
            table = TIERS.get(self.resolution, {})
            self.size = table.get(self.ratio or "16:9")
            if self.size is None:
                raise InvalidParameter(f"parameters.resolution {self.resolution!r} / ratio {self.ratio!r} name no "
                                       f"size of {spec.name}.", param="parameters.resolution")


def _typed(par: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = par.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidParameter(f"parameters.{name} must be of type {kind.__name__}.", param=f"parameters.{name}")
    return value


def _size(text: str | None) -> tuple[int, int] | None:
    # as the submit reads it
    return None if text is None else wire_size(text, "parameters.size", "*",
                                               "must be WIDTH*HEIGHT with an asterisk, e.g. 1280*720")


def _probe_uploads(rt: Any, owner: str, preview: _Preview) -> list[PreviewRef]:
    """Kinds and durations: the caller's own uploads are probed (local files); URLs are not fetched."""
    from openr2v.media.probe import probe

    refs = []
    for i, (url, kind) in enumerate(preview.sources):
        seconds = preview.seconds[i] if i < len(preview.seconds) else None
        name = url.rsplit("/", 1)[-1][:120] if not url.startswith("data:") else "data URI"
        if source_scheme(url) == "oss":
            key = url.removeprefix("oss://")
            row = rt.store.get_upload(key)
            path = rt.storage.path(f"uploads/{key}") if row is not None and row.owner == owner else None
            if path is not None and (kind is None or (kind == "video" and seconds is None)):
                try:
                    info = probe(path)
                    kind = kind or (info.kind if info.kind in ("image", "video") else None)
                    if info.kind == "video" and info.duration:
                        seconds = float(info.duration)
                except Exception:  # an unreadable upload fails the task later; the estimate stays an upper bound
                    pass
        refs.append(PreviewRef(kind=kind, seconds=seconds, name=name))
    return refs


@router.post("/plan", response_model=PreviewPlanResponse, responses=errors(ErrorBody, 400, 401, 500),
             openapi_extra=PREVIEW_DOC)
async def plan(request: Request) -> JSONResponse:
    """The shot plan a prompt yields (as the engine will follow it), and its explicit shot form."""
    principal(request)
    p = _Preview(await read_body(request))
    labels = [label for label in reference_labels(p.spec, [k for _, k in p.sources]) if label]
    shot_plan = plan_prompt(p.prompt, labels, p.duration, p.shot_type, p.seed)
    return JSONResponse({"request_id": request.state.request_id, "output": {
        "model": p.spec.name, "labels": labels, "plan": shot_plan.as_dict(),
        "actual_prompt": plan_to_prompt(shot_plan)}})


@router.post("/estimate", response_model=EstimateResponse, responses=errors(ErrorBody, 400, 401, 500),
             openapi_extra=PREVIEW_DOC)
async def cost_estimate(request: Request) -> JSONResponse:
    """Billed seconds and cost before submitting (an upper bound while a video's length is unknown)."""
    who = principal(request)
    rt = runtime(request)
    p = _Preview(await read_body(request))
    refs = await asyncio.to_thread(_probe_uploads, rt, who.owner, p)
    result = estimate(p.spec, rt.settings.region, refs, size=p.size, resolution=p.resolution, ratio=p.ratio,
                      duration=p.duration, audio=p.audio)
    return JSONResponse({"request_id": request.state.request_id, "output": result.as_dict()})


@router.get("/webhook_secret", response_model=WebhookSecretResponse, responses=errors(ErrorBody, 401, 500))
async def webhook_secret(request: Request) -> JSONResponse:
    """The secret that signs this key's webhooks (Standard Webhooks; docs/webhooks.md)."""
    who = principal(request)
    rt = runtime(request)
    assert rt.webhooks is not None
    key = rt.webhooks.secret_for(who.owner)
    return JSONResponse({"request_id": request.state.request_id, "output": {
        "webhook_secret": key.secret, "header": "webhook-signature",
        "scheme": "v1,<base64 HMAC-SHA256(base64-decoded secret, '<webhook-id>.<webhook-timestamp>.' + raw body)>",
        "legacy_secret": key.legacy.decode(), "legacy_header": SIGNATURE_HEADER,
        "legacy_scheme": "deprecated: t=<unix seconds>,v1=<hex HMAC-SHA256(legacy_secret, '<t>.' + raw body)>"}})


STATES = (PENDING, DELIVERED, DEAD)
DELIVERIES_DOC: dict[str, Any] = {"parameters": [
    query("state", optional({"type": "string", "enum": list(STATES)}), description="Only deliveries in this state "
          "(dead: the dead letters)."),
    query("task_id", optional({"type": "string", "maxLength": 64}), description="Only this task's deliveries."),
    query("limit", optional({"type": "integer", "minimum": 1, "maximum": 500, "default": 100}))]}


@router.get("/webhooks/deliveries", response_model=WebhookDeliveriesResponse,
            responses=errors(ErrorBody, 400, 401, 500), openapi_extra=DELIVERIES_DOC)
async def webhook_deliveries(request: Request) -> JSONResponse:
    """This key's webhook deliveries, oldest first: pending ones with their next attempt, dead letters."""
    who = principal(request)
    q = request.query_params
    state = q.get("state") or None
    if state is not None and state not in STATES:
        raise InvalidParameter(f"state {state[:40]!r} must be one of {', '.join(STATES)}.", param="state")
    raw_limit = q.get("limit") or "100"
    limit = small_int(raw_limit, digits=3)
    if limit is None or not 1 <= limit <= 500:
        raise InvalidParameter(f"limit {raw_limit[:40]!r} must be an integer from 1 to 500.", param="limit")
    task_id = (q.get("task_id") or "")[:64] or None
    outbox = runtime(request).store.outbox
    rows = await asyncio.to_thread(outbox.list, who.owner, state=state, task_id=task_id, limit=limit)
    return JSONResponse({"request_id": request.state.request_id,
                         "output": {"deliveries": [d.as_dict() for d in rows]}})


@router.post("/webhooks/deliveries/{webhook_id}/redeliver", response_model=WebhookDeliveryResponse,
             responses=errors(ErrorBody, 401, 404, 500))
async def redeliver(webhook_id: str, request: Request) -> JSONResponse:
    """Send a dead delivery again (the same webhook-id, a new round of attempts)."""
    who = principal(request)
    rt = runtime(request)
    d = await asyncio.to_thread(rt.store.outbox.redeliver, who.owner, webhook_id[:64], rt.service.clock())
    if d is None:
        raise NotFound(f"No dead webhook delivery {webhook_id[:64]!r} of this API key.")
    if rt.webhooks is not None:
        rt.webhooks.wake()
    return JSONResponse({"request_id": request.state.request_id, "output": d.as_dict()})
