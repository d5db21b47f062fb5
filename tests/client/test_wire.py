"""The SDK's wire behaviour against scripted transports: retries, uploads, fallbacks, bodies, imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from openr2v.client import (
    APIConnectionError,
    Client,
    InvalidRequestError,
    RateLimitError,
    Ref,
    ServerError,
)
from openr2v.client.wire import build_body, normalize_base_url, prepare_refs

BASE = "https://dashscope-intl.aliyuncs.com/api/v1"


def scripted(responses: list[httpx.Response], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses.pop(0)

    return httpx.MockTransport(handle)


def quiet(client: Client) -> list[float]:
    sleeps: list[float] = []
    client._sleep = sleeps.append  # type: ignore[method-assign]
    return sleeps


def test_retries_429_and_503_with_backoff_then_succeeds() -> None:
    seen: list[httpx.Request] = []
    ok = {"request_id": "r3", "output": {"task_id": "t1", "task_status": "PENDING"}}
    transport = scripted([httpx.Response(429, json={"request_id": "r1", "code": "Throttling.RateQuota",
                                                    "message": "slow down"}),
                          httpx.Response(503, json={"request_id": "r2", "code": "ServiceUnavailable", "message": ""},
                                         headers={"retry-after": "2"}),
                          httpx.Response(200, json=ok)], seen)
    c = Client(BASE, api_key="sk-x", transport=transport)
    sleeps = quiet(c)
    task = c.submit_body({"model": "wan2.6-r2v", "input": {"prompt": "p", "reference_urls": ["https://x/a.png"]}})
    assert task.task_id == "t1" and task.request_id == "r3"
    assert len(seen) == 3 and len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 0.5 * 1.25 and sleeps[1] == 2.0  # backoff with jitter, then Retry-After
    assert all(r.headers["X-DashScope-Async"] == "enable" for r in seen)


def test_gives_up_after_max_retries_and_respects_should_retry_false() -> None:
    seen: list[httpx.Request] = []
    busy = {"request_id": "r", "code": "Throttling.RateQuota", "message": "Requests rate limit exceeded"}
    c = Client(BASE, api_key="sk-x", max_retries=2, transport=scripted([httpx.Response(429, json=busy)] * 3, seen))
    quiet(c)
    with pytest.raises(RateLimitError) as e:
        c.get("t1")
    assert len(seen) == 3 and e.value.code == "Throttling.RateQuota" and e.value.request_id == "r"
    seen.clear()
    c = Client(BASE, api_key="sk-x", transport=scripted(
        [httpx.Response(503, json={"code": "InternalError", "message": "m"}, headers={"x-should-retry": "false",
                                                                                  "x-request-id": "hdr"})], seen))
    with pytest.raises(ServerError) as e2:
        c.get("t1")
    assert len(seen) == 1 and e2.value.request_id == "hdr"  # the header stands in for a missing body field


def test_connection_errors_are_retried_then_raised() -> None:
    calls = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused", request=request)

    c = Client("http://127.0.0.1:9", api_key="sk-x", max_retries=2, transport=httpx.MockTransport(refuse))
    quiet(c)
    with pytest.raises(APIConnectionError):
        c.get("t")
    assert calls == 3


def fake_dashscope(tmp: Path, seen: list[httpx.Request]) -> httpx.MockTransport:
    """Alibaba Cloud's shape: uploads to another host, no live events, task polled to SUCCEEDED."""
    polls = {"n": 0}

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        url = request.url
        if url.path.endswith("/uploads"):
            return httpx.Response(200, json={"request_id": "u", "data": {
                "policy": "cG9s", "signature": "c2ln", "upload_dir": "dashscope-instant/abc/2025-01-01/u1",
                "upload_host": "https://dashscope-file-mgr.oss-ap-southeast-1.aliyuncs.com",
                "oss_access_key_id": "LTAI", "x_oss_object_acl": "private", "x_oss_forbid_overwrite": "true"}})
        if url.host.startswith("dashscope-file-mgr"):
            return httpx.Response(200)
        if url.path.endswith("/video-synthesis"):
            return httpx.Response(200, json={"request_id": "s", "output": {"task_id": "t9", "task_status": "PENDING"}})
        if url.path.endswith("/events"):
            return httpx.Response(404, json={"code": "NotFound", "message": "no such API"})
        if url.path.endswith("/tasks/t9"):
            polls["n"] += 1
            out: dict[str, Any] = {"task_id": "t9", "task_status": "RUNNING" if polls["n"] < 3 else "SUCCEEDED"}
            if polls["n"] >= 3:
                out["video_url"] = "https://dashscope-result.oss.aliyuncs.com/t9.mp4?Expires=1&Signature=s"
            return httpx.Response(200, json={"request_id": "g", "output": out,
                                             "usage": {"duration": 7.5, "video_count": 1}})
        if url.host.startswith("dashscope-result"):
            return httpx.Response(200, content=b"MP4DATA")
        return httpx.Response(500)

    return httpx.MockTransport(handle)


def test_against_a_dashscope_shaped_server(tmp_path: Path, media_dir: Path) -> None:
    seen: list[httpx.Request] = []
    c = Client(BASE, api_key="sk-real", transport=fake_dashscope(tmp_path, seen), workspace="ws1")
    sleeps = quiet(c)
    task = c.generate("Image 1 waves.", [media_dir / "face.webp"], model="wan2.7-r2v", resolution="720P",
                      ratio="9:16", duration=5, output=tmp_path / "v.mp4")
    assert task.succeeded and (tmp_path / "v.mp4").read_bytes() == b"MP4DATA"
    by_path = {(r.method, r.url.host, r.url.path): r for r in seen}
    upload = next(r for r in seen if r.url.host.startswith("dashscope-file-mgr"))
    assert "authorization" not in upload.headers  # the OSS form carries a policy, never the API key
    form = upload.content.decode("latin-1")
    order = [form.index(f'name="{f}"') for f in ("OSSAccessKeyId", "Signature", "policy", "key", "x-oss-object-acl",
                                                  "x-oss-forbid-overwrite", "success_action_status",
                                                  "x-oss-content-type", "file")]
    assert order == sorted(order) and "dashscope-instant/abc/2025-01-01/u1/face.webp" in form
    submit = next(r for r in seen if r.url.path.endswith("/video-synthesis"))
    body = json.loads(submit.content)
    assert body["input"]["media"] == [{"type": "reference_image",
                                       "url": "oss://dashscope-instant/abc/2025-01-01/u1/face.webp"}]
    assert body["parameters"] == {"resolution": "720P", "ratio": "9:16", "duration": 5}
    assert submit.headers["X-DashScope-OssResourceResolve"] == "enable"
    assert submit.headers["X-DashScope-WorkSpace"] == "ws1" and submit.headers["Authorization"] == "Bearer sk-real"
    download = next(r for r in seen if r.url.host.startswith("dashscope-result"))
    assert "authorization" not in download.headers
    # One try of the live stream (404), then polls only, with the official SDK's growing sleeps.
    assert sum(r.url.path.endswith("/events") for r in seen) == 1 and len(sleeps) == 2
    assert ("GET", "dashscope-intl.aliyuncs.com", "/api/v1/uploads") in by_path


def test_bodies_follow_the_model_family(media_dir: Path) -> None:
    refs26 = prepare_refs("wan2.6-r2v", ["https://x/a.mp4", "https://x/b.png"])
    body = build_body("wan2.6-r2v", "p", refs26, resolution="720P", ratio="9:16", audio=False, seed=4,
                      callback_url="https://hooks.example.com/x")
    assert body["input"] == {"prompt": "p", "reference_urls": ["https://x/a.mp4", "https://x/b.png"]}
    assert body["parameters"] == {"size": "720*1280", "audio": False, "seed": 4,
                                  "callback_url": "https://hooks.example.com/x"}
    refs27 = prepare_refs("wan2.7-r2v", [Ref.video("https://x/a.mp4", voice="https://x/v.mp3"), "https://x/b.png"],
                          first_frame="https://x/f.jpg")
    body = build_body("wan2.7-r2v", "p", refs27, size=(1920, 1080), shot_type="multi")
    assert body["input"]["media"] == [{"type": "first_frame", "url": "https://x/f.jpg"},
                                      {"type": "reference_video", "url": "https://x/a.mp4",
                                       "reference_voice": "https://x/v.mp3"},
                                      {"type": "reference_image", "url": "https://x/b.png"}]
    assert body["parameters"] == {"resolution": "1080P", "ratio": "16:9", "shot_type": "multi"}
    # A local file named without a telling extension is recognised by its bytes.
    odd = media_dir / "copy_of_video"
    odd.write_bytes((media_dir / "person1.mp4").read_bytes())
    assert prepare_refs("wan2.7-r2v", [odd])[0].kind == "video"


def test_arguments_fail_fast(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError):
        prepare_refs("wan2.6-r2v", [Ref.image("https://x/a.png", voice="https://x/v.wav")])
    with pytest.raises(InvalidRequestError):
        prepare_refs("wan2.7-r2v", ["https://x/no-extension"])
    with pytest.raises(FileNotFoundError):
        prepare_refs("wan2.6-r2v", [tmp_path / "missing.png"])
    with pytest.raises(InvalidRequestError):
        Client("ftp://host", api_key="k")
    assert normalize_base_url("http://h:8000/") == "http://h:8000/api/v1"
    assert normalize_base_url(BASE) == BASE


def test_no_key_fails_before_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENR2V_API_KEY", "DASHSCOPE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InvalidRequestError) as e:
        Client("http://127.0.0.1:1")
    assert e.value.code == "NoApiKey"
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-env")
    monkeypatch.setenv("OPENR2V_BASE_URL", "http://10.0.0.1:8000")
    c = Client()
    assert c.settings.api_key == "sk-env" and c.base_url == "http://10.0.0.1:8000/api/v1"


def test_the_sdk_imports_nothing_of_the_server() -> None:
    code = ("import sys, openr2v; from openr2v import Client, AsyncClient; import openr2v.client; "
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'starlette', 'sqlalchemy', 'alembic', 'av', 'numpy', 'uvicorn', 'pydantic', 'PIL') "
            "or (m.startswith('openr2v.') and not m.startswith('openr2v.client'))); print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_wait_reports_live_progress_from_the_event_stream() -> None:
    def event(kind: str, status: str, progress: int) -> str:
        body = {"request_id": "e", "output": {"task_id": "t1", "task_status": status, "progress": progress}}
        return f"event: {kind}\ndata: {json.dumps(body)}\n\n"

    stream = ("retry: 2000\n\n" + event("status", "RUNNING", 0) + ": keep-alive\n\n" + event("progress", "RUNNING", 35)
              + event("progress", "RUNNING", 80) + event("status", "SUCCEEDED", 100))
    seen: list[httpx.Request] = []
    transport = scripted([httpx.Response(200, text=stream, headers={"content-type": "text/event-stream"})], seen)
    c = Client("http://openr2v.test", api_key="sk-x", transport=transport)
    updates: list[tuple[str, int | None]] = []
    done = c.wait("t1", on_progress=lambda t: updates.append((t.status, t.progress)))
    assert done.succeeded and updates == [("RUNNING", 0), ("RUNNING", 35), ("RUNNING", 80), ("SUCCEEDED", 100)]
    assert seen[0].url.path == "/api/v1/tasks/t1/events" and seen[0].headers["accept"] == "text/event-stream"
