"""What the aggregator, gateway and OpenAI-style dialects share at the edge.

JSON bodies, the submit-time check of every source a request names, submitting a validated
request (recording the untruncated prompt when a dialect truncates), and epoch timestamps.
Nothing here knows a wire shape.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from openr2v.api.auth import Principal
from openr2v.errors import InvalidParameter, InvalidURL, NotFound
from openr2v.media.fetch import check_url_host
from openr2v.runtime import Runtime
from openr2v.spec.request import GenerationRequest, source_scheme
from openr2v.spec.task import Status, Task

__all__ = ["epoch", "find_task", "first_error", "parse_json_object", "sources", "submit"]


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Body bytes -> a JSON object, or InvalidParameter."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as e:  # bad UTF-8 or JSON, ints over 4300 digits, deep nesting
        raise InvalidParameter(f"The request body is not valid JSON: {e}.") from None
    if not isinstance(body, dict):
        raise InvalidParameter("The request body must be a JSON object.")
    return body


def first_error(e: ValidationError, prefix: str = "") -> tuple[str, str]:
    """(dotted field path, message) of a pydantic error, e.g. ``metadata.input.reference_video_urls[1]``."""
    err = e.errors()[0]
    out = prefix
    for part in err["loc"]:
        if isinstance(part, str) and (part in ("str", "int", "bool", "float") or part[:1].isupper()):
            continue  # the member a union tried (field names are lower case), not a field
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body", err["msg"]


def sources(req: GenerationRequest) -> Iterator[tuple[str, str]]:
    """(wire field, source) of every file a request names."""
    for ref in req.references:
        yield ref.field, ref.source
        if ref.voice:
            yield f"{ref.field.rsplit('.', 1)[0]}.reference_voice", ref.voice
    if req.first_frame:
        yield "first_frame", req.first_frame
    if req.audio_url:
        yield "audio_url", req.audio_url


def check_sources(rt: Runtime, req: GenerationRequest, names: dict[str, str], internal: frozenset[str]) -> None:
    """Refuse oss:// sources the server did not create and URLs that name non-public hosts."""
    for field, src in sources(req):
        wire = names.get(field, field)
        if source_scheme(src) == "oss" and src not in internal:
            raise InvalidURL(f"{wire}: oss:// URLs are not accepted here; use an HTTP or HTTPS URL.", param=wire)
        if source_scheme(src) in ("http", "https") and not rt.settings.allow_private_urls:
            check_url_host(src, wire, rt.runner.fetcher.allow_hosts)


async def submit(rt: Runtime, who: Principal, dialect: str, req: GenerationRequest, request_id: str, *,
                 orig_prompt: str | None = None, names: dict[str, str] | None = None,
                 internal: frozenset[str] = frozenset()) -> Task:
    """Check the request's sources, create the task, and record an untruncated prompt as orig_prompt."""
    check_sources(rt, req, names or {}, internal)
    task = await asyncio.to_thread(rt.service.submit, who.owner, who.region, dialect, req, request_id)
    if orig_prompt is not None and orig_prompt != req.prompt:
        await asyncio.to_thread(rt.store.update_fields, task.id, orig_prompt=orig_prompt)
        task.orig_prompt = orig_prompt
    return task


async def find_task(rt: Runtime, who: Principal, task_id: str) -> Task:
    """This key's live task, or NotFound (never UNKNOWN: these dialects have no such status)."""
    task = await asyncio.to_thread(rt.service.get, who.owner, task_id)
    if task.status == Status.UNKNOWN:
        raise NotFound(f"Task {task_id} not found (it never existed, belongs to another key, or expired).")
    return task


def epoch(ts: float | None) -> int | None:
    return None if ts is None else int(ts)
