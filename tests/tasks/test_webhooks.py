"""Webhooks: signed, in order, retried with backoff after a failed delivery, behind the SSRF guard."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from openr2v.client import BadRequestError, Client, verify_webhook
from openr2v.client.webhooks import WebhookVerificationError
from openr2v.domain.request import GenerationRequest
from openr2v.domain.task import Status, Task
from openr2v.errors import InvalidURL
from openr2v.tasks.webhooks import WebhookDispatcher
from tests.helpers import KEY, OTHER_KEY, WebhookReceiver, assert_contract_mp4

SECRET = "whsec_test_secret"


def final(received: list[Any]) -> bool:
    return any(json.loads(r.body)["output"]["task_status"] == "SUCCEEDED" and r.status == 200 for r in received)


def test_delivery_retried_after_a_500_and_signed(make_server: Any, media_dir: Path,
                                                 webhook_receiver: WebhookReceiver, tmp_path: Path) -> None:
    srv = make_server(webhook_secret=SECRET, webhook_backoff_seconds=0.3)
    webhook_receiver.script = [500]  # the first delivery fails; the retry gets 200
    with Client(srv.url, api_key=KEY) as c:
        task = c.generate("character1 waves.", [media_dir / "object.png"], size="1280*720", duration=2,
                          callback_url=webhook_receiver.url)
    got = webhook_receiver.wait_for(final)
    statuses = [(json.loads(r.body)["output"]["task_status"], r.status) for r in got]
    assert statuses == [("PENDING", 500), ("PENDING", 200), ("RUNNING", 200), ("SUCCEEDED", 200)], statuses
    first, retry = got[0], got[1]
    assert first.headers["x-openr2v-delivery"] == retry.headers["x-openr2v-delivery"]
    assert (first.headers["x-openr2v-attempt"], retry.headers["x-openr2v-attempt"]) == ("1", "2")
    assert retry.at - first.at >= 0.25  # the retry waited for the backoff (0.3 s)
    for r in got:
        payload = verify_webhook(SECRET, r.body, r.headers["x-openr2v-signature"])
        assert payload["event"] == "task.status" and payload["output"]["task_id"] == task.task_id
        assert r.headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        verify_webhook("whsec_wrong", got[-1].body, got[-1].headers["x-openr2v-signature"])
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, got[-1].body + b" ", got[-1].headers["x-openr2v-signature"])
    done = json.loads(got[-1].body)
    assert done["usage"]["output_video_duration"] == 2 and done["request_id"]
    # The final event carries the signed video URL, downloadable as is.
    video = httpx.get(done["output"]["video_url"], timeout=30)
    assert video.status_code == 200
    (tmp_path / "hook.mp4").write_bytes(video.content)
    assert_contract_mp4(tmp_path / "hook.mp4", 1280, 720, 2, audio=True)


def test_default_secret_is_each_keys_own(make_server: Any, media_dir: Path,
                                         webhook_receiver: WebhookReceiver) -> None:
    srv = make_server()
    with srv.client() as mine, srv.client(OTHER_KEY) as theirs:
        secret = mine.get("/api/v1/openr2v/webhook_secret").json()["output"]["webhook_secret"]
        other = theirs.get("/api/v1/openr2v/webhook_secret").json()["output"]["webhook_secret"]
    assert secret.startswith("whsec_") and secret != other
    with Client(srv.url, api_key=KEY) as c:
        c.generate("character1 waves.", [media_dir / "object.png"], size="1280*720", duration=2,
                   callback_url=webhook_receiver.url)
    got = webhook_receiver.wait_for(final)
    assert all(verify_webhook(secret, r.body, r.headers["x-openr2v-signature"]) for r in got)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(other, got[0].body, got[0].headers["x-openr2v-signature"])


def test_callback_urls_pass_the_ssrf_guard_at_submit(make_server: Any, file_server: str) -> None:
    srv = make_server(allow_private_urls=False)
    with Client(srv.url, api_key=KEY) as c:
        for url, code in (("http://127.0.0.1:9/hook", "InvalidURL"), ("http://169.254.169.254/latest", "InvalidURL"),
                          ("http://localhost/x", "InvalidURL"), ("ftp://hooks.example.com/x", "InvalidURL"),
                          ("not a url", "InvalidURL")):
            with pytest.raises(BadRequestError) as e:
                c.submit_body({"model": "wan2.6-r2v-flash",
                               "input": {"prompt": "character1 waves.", "reference_urls": ["https://example.com/a.png"]},
                               "parameters": {"size": "1280*720", "duration": 2, "callback_url": url}})
            assert e.value.code == code and "parameters.callback_url" in e.value.message, (url, e.value)


def task_with_callback(url: str, status: Status = Status.PENDING) -> Task:
    req = GenerationRequest(model="wan2.6-r2v-flash", prompt="p", extensions={"callback_url": url})
    return Task(id="t1", owner="o1", region="intl", model=req.model, dialect="dashscope", request=req, status=status,
                request_id="r1")


def dispatcher(transport: httpx.MockTransport, **kw: Any) -> WebhookDispatcher:
    defaults: dict[str, Any] = dict(render=lambda t: {"output": {"task_id": t.id, "task_status": t.status.value}},
                                    secret_for=lambda owner: f"s-{owner}", allow_private=False,
                                    resolve=lambda host, port: ["93.184.216.34"], transport=transport)
    return WebhookDispatcher(**{**defaults, **kw})


def test_delivery_connects_to_the_checked_address() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    d = dispatcher(httpx.MockTransport(handle))
    d.start()
    try:
        d.on_change(task_with_callback("https://hooks.example.com:8443/in?x=1"))
        deadline = time.time() + 10
        while d.delivered < 1 and time.time() < deadline:
            time.sleep(0.01)
    finally:
        d.stop()
    assert d.delivered == 1
    req = seen[0]
    # Pinned to the address the guard checked; the name still rides in Host and TLS SNI.
    assert str(req.url) == "https://93.184.216.34:8443/in?x=1" and req.headers["host"] == "hooks.example.com:8443"
    assert req.extensions["sni_hostname"] == "hooks.example.com"
    assert verify_webhook("s-o1", req.content, req.headers["x-openr2v-signature"])["output"]["task_id"] == "t1"


def test_private_resolutions_and_literals_are_refused_at_delivery() -> None:
    d = dispatcher(httpx.MockTransport(lambda r: httpx.Response(200)), resolve=lambda h, p: ["93.184.216.34",
                                                                                             "10.0.0.7"])
    with pytest.raises(InvalidURL, match="10.0.0.7"):
        d._target("http://rebind.example.com/hook")
    with pytest.raises(InvalidURL):
        d._target("http://[::ffff:127.0.0.1]/hook")
    d._http.close()


def test_retries_are_bounded_and_events_stay_in_order() -> None:
    answers = {"PENDING": [500, 500, 500], "RUNNING": [200]}
    order: list[tuple[str, int]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        status = json.loads(request.content)["output"]["task_status"]
        code = answers[status].pop(0) if answers[status] else 200
        order.append((status, code))
        return httpx.Response(code)

    d = dispatcher(httpx.MockTransport(handle), max_attempts=3, backoff_seconds=0.02)
    d.start()
    try:
        d.on_change(task_with_callback("https://hooks.example.com/x"))
        d.on_change(task_with_callback("https://hooks.example.com/x", Status.RUNNING))
        deadline = time.time() + 10
        while d.pending() and time.time() < deadline:
            time.sleep(0.01)
    finally:
        d.stop()
    # PENDING tried 3 times (max_attempts) and dropped; only then RUNNING, never before it.
    assert order == [("PENDING", 500)] * 3 + [("RUNNING", 200)]
    assert (d.dropped, d.delivered) == (1, 1)


def test_the_listener_never_waits_for_the_receiver() -> None:
    release = threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        release.wait(5)
        return httpx.Response(200)

    d = dispatcher(httpx.MockTransport(slow))
    d.start()
    try:
        t0 = time.perf_counter()
        for status in (Status.PENDING, Status.RUNNING, Status.SUCCEEDED):
            d.on_change(task_with_callback("https://hooks.example.com/x", status))
        assert time.perf_counter() - t0 < 0.1
    finally:
        release.set()
        d.stop()
