"""The DashScope wire, without I/O: request bodies, local-file detection, responses, retry policy.

Both clients share this module; they differ only in how they send. Nothing here imports the
server: the same bodies go to openr2v and to Alibaba Cloud's own endpoints.
"""

from __future__ import annotations

import mimetypes
import os
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import httpx

from openr2v.client.errors import APIError, InvalidRequestError, error_for_status
from openr2v.client.types import Ref

__all__ = [
    "DEFAULT_MODEL",
    "SUBMIT_PATH",
    "PreparedRef",
    "api_error",
    "backoff_delay",
    "build_body",
    "guess_kind",
    "json_body",
    "list_items",
    "local_files",
    "local_path",
    "normalize_base_url",
    "poll_delays",
    "prepare_refs",
    "retry_delay",
    "swap_uploads",
    "upload_form",
    "uses_media",
]

DEFAULT_MODEL = "wan2.6-r2v-flash"
SUBMIT_PATH = "/services/aigc/video-generation/video-synthesis"
USER_AGENT = "openr2v-python"

# The size tables of the Model Studio guides (wan2.7 names sizes by resolution + ratio, wan2.6 by W*H).
SIZES = {
    "720P": {"16:9": "1280*720", "9:16": "720*1280", "1:1": "960*960", "4:3": "1088*832", "3:4": "832*1088"},
    "1080P": {"16:9": "1920*1080", "9:16": "1080*1920", "1:1": "1440*1440", "4:3": "1632*1248",
              "3:4": "1248*1632"},
}
_SIZE_TO_TIER = {size: (tier, ratio) for tier, table in SIZES.items() for ratio, size in table.items()}

_IMAGE_EXTS = {"jpg", "jpeg", "png", "bmp", "webp"}
_VIDEO_EXTS = {"mp4", "mov"}
_REMOTE = re.compile(r"^(https?|oss)://", re.I)


def normalize_base_url(base_url: str) -> str:
    """``http://host:8000`` or ``https://dashscope-intl.aliyuncs.com/api/v1`` -> the API root (``.../api/v1``)."""
    base = base_url.strip().rstrip("/")
    if not re.match(r"^https?://", base, re.I):
        raise InvalidRequestError(f"base_url {base_url!r} must start with http:// or https://")
    return base if re.search(r"/api/v\d+$", base) else base + "/api/v1"


def uses_media(model: str) -> bool:
    """wan2.7 takes ``input.media`` (typed items); wan2.6 takes ``input.reference_urls``."""
    return model.startswith("wan2.7")


# -- references -------------------------------------------------------------------------------


def local_path(source: str | os.PathLike[str]) -> Path | None:
    """The local file a source names (a path or a ``file://`` URI), or None for URLs and data URIs."""
    if isinstance(source, os.PathLike):
        return Path(source)
    if source.startswith("data:") or _REMOTE.match(source):
        return None
    if source.lower().startswith("file://"):
        parts = urlsplit(source)
        return Path(unquote(parts.netloc + parts.path)).expanduser()
    return Path(source).expanduser()


def _sniff(path: Path) -> Literal["image", "video"] | None:
    """image / video from a local file's first bytes (for names without a telling extension)."""
    try:
        head = path.open("rb").read(16)
    except OSError:
        return None
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"BM")) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    if head[4:8] == b"ftyp":
        return "video"
    return None


def guess_kind(source: str | os.PathLike[str]) -> Literal["image", "video"] | None:
    text = os.fspath(source)
    if text.startswith("data:"):
        mime = text[5:].split(";", 1)[0].lower()
        return "image" if mime.startswith("image/") else "video" if mime.startswith("video/") else None
    name = urlsplit(text).path if _REMOTE.match(text) else text
    ext = name.rsplit(".", 1)[-1].lower() if "." in name.rsplit("/", 1)[-1] else ""
    if ext in _IMAGE_EXTS:
        return "image"
    if ext in _VIDEO_EXTS:
        return "video"
    path = local_path(source)
    return _sniff(path) if path is not None and path.is_file() else None


@dataclass
class PreparedRef:
    """A reference with its kind decided; sources are replaced by ``oss://`` keys once uploaded."""

    source: str | os.PathLike[str]
    kind: str | None  # image | video | first_frame | None (wan2.6 needs no kind)
    voice: str | os.PathLike[str] | None = None


def prepare_refs(model: str, references: Sequence[str | os.PathLike[str] | Ref],
                 first_frame: str | os.PathLike[str] | None = None) -> list[PreparedRef]:
    """Normalize references for ``model``; fail fast on what the model's wire cannot carry."""
    media = uses_media(model)
    out: list[PreparedRef] = []
    items = [r if isinstance(r, Ref) else Ref(r) for r in references]
    if first_frame is not None:
        items.insert(0, Ref.first_frame(first_frame))
    for i, ref in enumerate(items):
        path = local_path(ref.source)
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"reference {i + 1}: no such file: {path}")
        kind = ref.kind
        if not media:
            if kind == "first_frame" or ref.voice is not None:
                raise InvalidRequestError(f"{model} takes neither a first frame nor reference voices "
                                          f"(those are wan2.7 features); reference {i + 1} has one.")
        elif kind is None:
            kind = guess_kind(ref.source)
            if kind is None:
                raise InvalidRequestError(f"reference {i + 1} ({os.fspath(ref.source)[:80]}): cannot tell an "
                                          f"image from a video; pass Ref.image(...) or Ref.video(...).")
        if ref.voice is not None:
            voice_path = local_path(ref.voice)
            if voice_path is not None and not voice_path.is_file():
                raise FileNotFoundError(f"reference {i + 1}: no such voice file: {voice_path}")
        out.append(PreparedRef(ref.source, kind, ref.voice))
    return out


def named_refs(references: Sequence[str | os.PathLike[str] | Ref]) -> list[PreparedRef]:
    """References for a shot plan: only their order and kinds count, so names need not be files
    (a kind not told by the name or the file is taken as an image, as the plan endpoint does)."""
    items = [r if isinstance(r, Ref) else Ref(r) for r in references]
    return [PreparedRef(os.fspath(r.source), r.kind or guess_kind(r.source) or "image") for r in items]


def local_files(refs: Sequence[PreparedRef]) -> list[Path]:
    """Every local file the references name (sources and voices), each once, in order."""
    seen: dict[Path, None] = {}
    for r in refs:
        for s in (r.source, r.voice):
            if s is not None and (p := local_path(s)) is not None:
                seen.setdefault(p, None)
    return list(seen)


def swap_uploads(refs: Sequence[PreparedRef], uploaded: Mapping[Path, str]) -> list[PreparedRef]:
    def swap(s: str | os.PathLike[str] | None) -> str | os.PathLike[str] | None:
        p = local_path(s) if s is not None else None
        return uploaded[p] if p is not None else s

    return [PreparedRef(swap(r.source) or r.source, r.kind, swap(r.voice)) for r in refs]


# -- request bodies ---------------------------------------------------------------------------


def _size_params(model: str, size: str | tuple[int, int] | None, resolution: str | None,
                 ratio: str | None) -> dict[str, Any]:
    """Each family's own spelling: ``size`` for wan2.6, ``resolution`` + ``ratio`` for wan2.7."""
    if isinstance(size, tuple):
        size = f"{size[0]}*{size[1]}"
    if size is not None:
        size = size.replace("x", "*")
    if uses_media(model):
        if size is not None and size in _SIZE_TO_TIER and resolution is None and ratio is None:
            resolution, ratio = _SIZE_TO_TIER[size]
            size = None
    elif size is None and resolution is not None and resolution.upper() in SIZES:
        size = SIZES[resolution.upper()].get(ratio or "16:9")
        if size is None:
            raise InvalidRequestError(f"ratio {ratio!r} is not one of {', '.join(SIZES['720P'])}")
        resolution = ratio = None
    params = {"size": size, "resolution": resolution, "ratio": ratio}
    return {k: v for k, v in params.items() if v is not None}


def build_body(model: str, prompt: str, refs: Sequence[PreparedRef], *, negative_prompt: str | None = None,
               size: str | tuple[int, int] | None = None, resolution: str | None = None, ratio: str | None = None,
               duration: int | None = None, audio: bool | None = None, shot_type: str | None = None,
               seed: int | None = None, watermark: bool | None = None, prompt_extend: bool | None = None,
               callback_url: str | None = None, parameters: Mapping[str, Any] | None = None,
               extra_input: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The submit body for ``model`` (references already uploaded)."""
    inp: dict[str, Any] = {"prompt": prompt}
    if negative_prompt is not None:
        inp["negative_prompt"] = negative_prompt
    if uses_media(model):
        media = []
        for r in refs:
            item: dict[str, Any] = {"type": "first_frame" if r.kind == "first_frame" else f"reference_{r.kind}",
                                    "url": os.fspath(r.source)}
            if r.voice is not None:
                item["reference_voice"] = os.fspath(r.voice)
            media.append(item)
        inp["media"] = media
    else:
        inp["reference_urls"] = [os.fspath(r.source) for r in refs]
    inp.update(extra_input or {})
    par: dict[str, Any] = dict(parameters or {})
    par.update(_size_params(model, size, resolution, ratio))
    named = {"duration": duration, "audio": audio, "shot_type": shot_type, "seed": seed, "watermark": watermark,
             "prompt_extend": prompt_extend, "callback_url": callback_url}
    par.update({k: v for k, v in named.items() if v is not None})
    return {"model": model, "input": inp, "parameters": par}


def upload_form(policy: Mapping[str, Any], path: Path) -> tuple[str, dict[str, str]]:
    """(``oss://`` URL, form fields) of one file, in the order the official SDK sends them."""
    key = f"{policy['upload_dir']}/{path.name}"
    fields = {
        "OSSAccessKeyId": str(policy["oss_access_key_id"]),
        "Signature": str(policy["signature"]),
        "policy": str(policy["policy"]),
        "key": key,
        "x-oss-object-acl": str(policy["x_oss_object_acl"]),
        "x-oss-forbid-overwrite": str(policy["x_oss_forbid_overwrite"]),
        "success_action_status": "200",
        "x-oss-content-type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
    }
    return f"oss://{key}", fields


# -- responses --------------------------------------------------------------------------------


def json_body(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def api_error(resp: httpx.Response) -> APIError:
    """The exception for an HTTP error: DashScope's JSON envelope, or an object store's XML."""
    body: Any = json_body(resp)
    text = "" if body else resp.text
    code = str(body.get("code") or "")
    message = str(body.get("message") or body.get("msg") or "")
    if not body and text.lstrip().startswith("<"):  # OSS / our /files answer XML
        m = re.search(r"<Code>([^<]*)</Code>", text)
        code = m.group(1) if m else ""
        m = re.search(r"<Message>([^<]*)</Message>", text)
        message = m.group(1) if m else ""
    request_id = str(body.get("request_id") or resp.headers.get("x-request-id") or "")
    return error_for_status(resp.status_code, code or f"HTTP{resp.status_code}",
                            message or text.strip()[:300] or resp.reason_phrase, request_id, body or text,
                            headers=resp.headers)


def _ms_to_wire(ms: Any) -> str | None:
    if not isinstance(ms, int | float):
        return ms if isinstance(ms, str) else None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def list_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Task bodies of a list answer: openr2v's ``tasks`` (output objects), else DashScope's ``data``."""
    data = {str(d.get("task_id")): d for d in body.get("data") or [] if isinstance(d, dict)}
    if isinstance(body.get("tasks"), list):
        items = []
        for t in body["tasks"]:
            row = data.get(str(t.get("task_id")), {})
            items.append({"output": {**t, "model": t.get("model") or row.get("model_name")}})
        return items
    return [{"output": {"task_id": d.get("task_id"), "task_status": d.get("status"), "model": d.get("model_name"),
                        "submit_time": _ms_to_wire(d.get("gmt_create")),
                        "scheduled_time": _ms_to_wire(d.get("start_time")),
                        "end_time": _ms_to_wire(d.get("end_time"))}, "request_id": d.get("request_id")}
            for d in data.values()]


# -- retries ----------------------------------------------------------------------------------

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_BACKOFF = 8.0


def retry_delay(status: int, headers: httpx.Headers, attempt: int, max_retries: int, backoff: float) -> float | None:
    """Seconds to wait before retrying a response, or None to give up.

    429 and 5xx gateway errors are retried: the server refused before creating anything. The
    server may forbid it (``x-should-retry: false``) or say when (``retry-after-ms``, ``retry-after``).
    """
    if attempt >= max_retries or status not in RETRY_STATUSES:
        return None
    hint = headers.get("x-should-retry", "").lower()
    if hint == "false":
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return min(60.0, max(0.0, float(value) * scale))
        except ValueError:
            try:  # an HTTP date
                return min(60.0, max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()))
            except (TypeError, ValueError):
                pass
    return backoff_delay(attempt, backoff)


def backoff_delay(attempt: int, backoff: float) -> float:
    """Exponential backoff with jitter, so many clients refused at once do not return at once."""
    return min(MAX_BACKOFF, backoff * 2 ** attempt) * (1 + random.random() / 4)


def poll_delays(first: float, cap: float) -> Any:
    """Poll intervals like the official SDK's: the interval doubles every third poll, up to ``cap``."""
    interval, n = first, 0
    while True:
        yield interval
        n += 1
        if n % 3 == 0:
            interval = min(cap, interval * 2)
