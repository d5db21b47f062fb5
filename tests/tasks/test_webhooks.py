"""Webhooks: an outbox written with each status change, leased dispatchers, Standard Webhooks signatures,
retries with backoff, dead letters, the SSRF guard."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from openr2v.client import BadRequestError, Client, verify_webhook
from openr2v.client.webhooks import WebhookVerificationError
from openr2v.domain.request import GenerationRequest
from openr2v.domain.task import Status, Task
from openr2v.errors import InvalidURL
from openr2v.storage import LocalStorage
from openr2v.tasks.service import ServiceConfig, TaskService
from openr2v.tasks.store import TaskStore
from openr2v.tasks.webhooks import SigningKey, WebhookDispatcher, announcer
from tests.helpers import KEY, OTHER_KEY, WebhookReceiver, assert_contract_mp4

SECRET = "whsec_test_secret"
HOOK = "https://hooks.example.com/x"


def final(received: list[Any]) -> bool:
    return any(json.loads(r.body)["output"]["task_status"] == "SUCCEEDED" and r.status == 200 for r in received)


def secret_of(srv: Any, key: str = KEY) -> str:
    with srv.client(key) as c:
        return str(c.get("/api/v1/openr2v/webhook_secret").json()["output"]["webhook_secret"])


# -- through a live server ----------------------------------------------------------------------


def test_delivery_retried_after_a_500_and_signed(make_server: Any, media_dir: Path,
                                                 webhook_receiver: WebhookReceiver, tmp_path: Path) -> None:
    srv = make_server(webhook_secret=SECRET, webhook_backoff_seconds=0.3, webhook_poll_seconds=0.05)
    webhook_receiver.script = [500]  # the first delivery fails; the retry gets 200
    with Client(srv.url, api_key=KEY) as c:
        task = c.generate("character1 waves.", [media_dir / "object.png"], size="1280*720", duration=2,
                          callback_url=webhook_receiver.url)
    got = webhook_receiver.wait_for(final)
    statuses = [(json.loads(r.body)["output"]["task_status"], r.status) for r in got]
    assert statuses == [("PENDING", 500), ("PENDING", 200), ("RUNNING", 200), ("SUCCEEDED", 200)], statuses
    first, retry = got[0], got[1]
    assert first.headers["webhook-id"] == retry.headers["webhook-id"] == retry.headers["x-openr2v-delivery"]
    assert len({r.headers["webhook-id"] for r in got}) == 3  # one id per event
    assert (first.headers["x-openr2v-attempt"], retry.headers["x-openr2v-attempt"]) == ("1", "2")
    assert retry.at - first.at >= 0.25  # the retry waited for the backoff (0.3 s)
    standard = secret_of(srv)
    assert standard == SigningKey.configured(SECRET).secret
    for r in got:
        # The spec's own library verifies the standard headers; the SDK verifies them and the legacy one.
        assert Webhook(standard).verify(r.body, r.headers)["output"]["task_id"] == task.task_id
        assert verify_webhook(standard, r.body, r.headers)["event"] == "task.status"
        assert verify_webhook(SECRET, r.body, r.headers["x-openr2v-signature"])["output"]["task_id"] == task.task_id
        assert r.headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        verify_webhook("whsec_d3Jvbmc=", got[-1].body, got[-1].headers)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(standard, got[-1].body + b" ", got[-1].headers)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, got[-1].body + b" ", got[-1].headers["x-openr2v-signature"])
    done = json.loads(got[-1].body)
    assert done["usage"]["output_video_duration"] == 2 and done["request_id"]
    # The final event carries the signed video URL, downloadable as is.
    video = httpx.get(done["output"]["video_url"], timeout=30)
    assert video.status_code == 200
    (tmp_path / "hook.mp4").write_bytes(video.content)
    assert_contract_mp4(tmp_path / "hook.mp4", 1280, 720, 2, audio=True)
    with srv.client() as c:
        listed = c.get("/api/v1/openr2v/webhooks/deliveries", params={"task_id": task.task_id}).json()["output"]
    assert [(d["event"], d["state"], d["attempts"]) for d in listed["deliveries"]] == [
        ("PENDING", "delivered", 2), ("RUNNING", "delivered", 1), ("SUCCEEDED", "delivered", 1)]


def test_default_secret_is_each_keys_own(make_server: Any, media_dir: Path,
                                         webhook_receiver: WebhookReceiver) -> None:
    srv = make_server(webhook_poll_seconds=0.05)
    secret, other = secret_of(srv), secret_of(srv, OTHER_KEY)
    assert secret.startswith("whsec_") and secret != other
    with Client(srv.url, api_key=KEY) as c:
        c.generate("character1 waves.", [media_dir / "object.png"], size="1280*720", duration=2,
                   callback_url=webhook_receiver.url)
    got = webhook_receiver.wait_for(final)
    assert all(Webhook(secret).verify(r.body, r.headers) for r in got)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(other, got[0].body, got[0].headers)
    with srv.client() as c:  # the legacy header is signed with the secret's earlier (hex) form
        legacy = c.get("/api/v1/openr2v/webhook_secret").json()["output"]["legacy_secret"]
    assert verify_webhook(legacy, got[0].body, got[0].headers["x-openr2v-signature"])


def test_dead_letters_are_listed_and_redelivered_by_their_owner_only(
        make_server: Any, media_dir: Path, webhook_receiver: WebhookReceiver) -> None:
    srv = make_server(webhook_max_attempts=2, webhook_backoff_seconds=0.05, webhook_poll_seconds=0.05)
    webhook_receiver.script = [500] * 6  # every event of the task fails both its attempts
    with Client(srv.url, api_key=KEY) as c:
        task = c.generate("character1 waves.", [media_dir / "object.png"], size="1280*720", duration=2,
                          callback_url=webhook_receiver.url)
    webhook_receiver.wait_for(lambda r: len(r) == 6)
    with srv.client() as mine, srv.client(OTHER_KEY) as theirs:
        def dead(c: httpx.Client) -> list[dict[str, Any]]:
            return list(c.get("/api/v1/openr2v/webhooks/deliveries", params={"state": "dead"}).json()["output"][
                "deliveries"])

        deadline = time.time() + 10
        while len(dead(mine)) < 3 and time.time() < deadline:
            time.sleep(0.05)
        letters = dead(mine)
        assert [(d["task_id"], d["event"], d["attempts"], d["last_error"]) for d in letters] == [
            (task.task_id, e, 2, "HTTP 500") for e in ("PENDING", "RUNNING", "SUCCEEDED")]
        assert dead(theirs) == []  # a key sees only its own
        first = letters[0]["webhook_id"]
        r = theirs.post(f"/api/v1/openr2v/webhooks/deliveries/{first}/redeliver")
        assert r.status_code == 404 and r.json()["code"] == "NotFound"
        bad = mine.get("/api/v1/openr2v/webhooks/deliveries", params={"state": "lost"})
        assert bad.status_code == 400 and bad.json()["code"] == "InvalidParameter" and "state" in bad.json()["message"]
        for d in letters:
            r = mine.post(f"/api/v1/openr2v/webhooks/deliveries/{d['webhook_id']}/redeliver")
            assert r.status_code == 200 and r.json()["output"]["state"] == "pending", r.text
        again = mine.post(f"/api/v1/openr2v/webhooks/deliveries/{first}/redeliver")
        assert again.status_code == 404  # no longer dead
    got = webhook_receiver.wait_for(lambda r: len(r) == 9)[6:]
    assert [r.headers["webhook-id"] for r in got] == [d["webhook_id"] for d in letters]  # same ids, in order
    assert [r.status for r in got] == [200] * 3
    assert all(Webhook(secret_of(srv)).verify(r.body, r.headers) for r in got)


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


# -- the outbox and the dispatcher on a store ----------------------------------------------------

REQ = GenerationRequest(model="wan2.6-r2v-flash", prompt="p", size=(1280, 720), duration=2,
                        extensions={"callback_url": HOOK})


class _Queue:
    def notify(self, task_id: str) -> None:
        pass


def render(task: Task) -> dict[str, Any]:
    return {"output": {"task_id": task.id, "task_status": task.status.value}}


def service(url: str, tmp_path: Path) -> TaskService:
    store = TaskStore(url)
    store.announce = announcer(render)
    return TaskService(store, LocalStorage(tmp_path / "objects", b"k"), _Queue(),
                       ServiceConfig(max_concurrent_tasks=0, submit_rate_per_second=0, max_attempts=3))


def dispatcher(store: TaskStore, handle: Any, **kw: Any) -> WebhookDispatcher:
    defaults: dict[str, Any] = dict(secret_for=lambda owner: SigningKey.configured(f"s-{owner}"), allow_private=False,
                                    resolve=lambda host, port: ["93.184.216.34"],
                                    transport=httpx.MockTransport(handle), poll_seconds=0.01)
    return WebhookDispatcher(store.outbox, **{**defaults, **kw})


def events(svc: TaskService, owner: str = "o1") -> list[tuple[str, str]]:
    return [(d.event, d.state) for d in svc.store.outbox.list(owner)]


def test_each_status_change_writes_its_outbox_row_in_its_transaction(store_url: str, tmp_path: Path) -> None:
    svc = service(store_url, tmp_path)
    task = svc.submit("o1", "intl", "dashscope", REQ, "r1")
    svc.submit("o1", "intl", "dashscope", REQ.model_copy(update={"extensions": {}}), "r2")  # no callback: no row
    assert events(svc) == [("PENDING", "pending")]
    claimed = svc.claim(task.id, "w1")
    assert claimed is not None
    assert svc.store.requeue(task.id)  # a lost worker's task goes back to PENDING: announced too
    assert svc.claim(task.id, "w2") is not None
    assert not svc.fail(task.id, "X", "stale worker", attempt=1)  # fenced out: no change, no row
    assert [e for e, _ in events(svc)] == ["PENDING", "RUNNING", "PENDING", "RUNNING"]

    def broken(t: Task) -> dict[str, Any]:
        raise RuntimeError("render failed")

    svc.store.announce = announcer(broken)
    with pytest.raises(RuntimeError):
        svc.fail(task.id, "X", "boom", attempt=2)
    # The change and its announcement commit together: neither happened.
    assert svc.store.get(task.id).status == Status.RUNNING  # type: ignore[union-attr]
    svc.store.announce = announcer(render)
    assert svc.fail(task.id, "X", "boom", attempt=2)
    assert [e for e, _ in events(svc)] == ["PENDING", "RUNNING", "PENDING", "RUNNING", "FAILED"]
    svc.store.delete([task.id])  # a task's deliveries go with it
    assert events(svc) == []
    svc.store.close()


def test_retries_are_bounded_then_dead_and_events_stay_in_order(tmp_path: Path) -> None:
    svc = service(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    answers = {"PENDING": [500, 500, 500], "RUNNING": [200]}
    order: list[tuple[str, int]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        status = json.loads(request.content)["output"]["task_status"]
        code = answers[status].pop(0) if answers[status] else 200
        order.append((status, code))
        return httpx.Response(code)

    d = dispatcher(svc.store, handle, max_attempts=3, backoff_seconds=0.02)
    task = svc.submit("o1", "intl", "dashscope", REQ, "r1")
    svc.claim(task.id, "w1")
    deadline = time.time() + 10
    while svc.store.outbox.list("o1", state="pending") and time.time() < deadline:
        d.run_once() or time.sleep(0.01)
    d.stop()
    # PENDING tried 3 times (max_attempts), then dead; only then RUNNING, never before it.
    assert order == [("PENDING", 500)] * 3 + [("RUNNING", 200)]
    assert events(svc) == [("PENDING", "dead"), ("RUNNING", "delivered")]
    assert svc.store.outbox.counts() == {"dead": 1, "delivered": 1}
    svc.store.close()


def test_two_nodes_never_send_the_same_attempt_at_once(store_url: str, tmp_path: Path) -> None:
    svc = service(store_url, tmp_path)
    lock = threading.Lock()
    sends: list[tuple[str, int, float, float, str, int]] = []  # id, attempt, start, end, status, code
    in_flight: set[str] = set()
    overlaps: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        wid, attempt = request.headers["webhook-id"], int(request.headers["x-openr2v-attempt"])
        with lock:
            if wid in in_flight:
                overlaps.append(wid)
            in_flight.add(wid)
        start = time.monotonic()
        time.sleep(0.02)
        code = 500 if attempt == 1 else 200  # every event fails once, then goes through
        with lock:
            in_flight.discard(wid)
            sends.append((wid, attempt, start, time.monotonic(),
                          json.loads(request.content)["output"]["task_status"], code))
        return httpx.Response(code)

    # Two nodes: each its own store connection pool and dispatcher threads, one database.
    other = TaskStore(store_url)
    nodes = [dispatcher(svc.store, handle, backoff_seconds=0.01, threads=2),
             dispatcher(other, handle, backoff_seconds=0.01, threads=2)]
    for n in nodes:
        n.start()
    tasks = [svc.submit("o1", "intl", "dashscope", REQ, f"r{i}") for i in range(4)]
    for t in tasks:
        svc.claim(t.id, "w")
        svc.succeed(t.id, f"outputs/{t.id}.mp4", {}, None, attempt=1)  # type: ignore[arg-type]
    deadline = time.time() + 60
    while svc.store.outbox.list("o1", state="pending") and time.time() < deadline:
        time.sleep(0.05)
    for n in nodes:
        n.stop()
    assert overlaps == []
    attempts = sorted((wid, attempt) for wid, attempt, *_ in sends)
    ids = {wid for wid, *_ in sends}
    assert len(ids) == 12 and attempts == sorted((i, a) for i in ids for a in (1, 2))  # each attempt sent once
    for t in tasks:  # in order: an event's first attempt starts after the earlier event went through
        mine = [d.id for d in svc.store.outbox.list("o1", task_id=t.id)]
        assert [s[4] for s in sorted(sends, key=lambda s: s[2]) if s[0] in mine and s[5] == 200] == [
            "PENDING", "RUNNING", "SUCCEEDED"]
        for earlier, later in zip(mine, mine[1:], strict=False):
            done = max(s[3] for s in sends if s[0] == earlier)
            assert min(s[2] for s in sends if s[0] == later) >= done
    assert {d.state for d in svc.store.outbox.list("o1")} == {"delivered"}
    other.close()
    svc.store.close()


def test_delivery_connects_to_the_checked_address(tmp_path: Path) -> None:
    svc = service(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    d = dispatcher(svc.store, handle)
    req = REQ.model_copy(update={"extensions": {"callback_url": "https://hooks.example.com:8443/in?x=1"}})
    svc.submit("o1", "intl", "dashscope", req, "r1")
    assert d.run_once() and not d.run_once()
    d.stop()
    req_ = seen[0]
    # Pinned to the address the guard checked; the name still rides in Host and TLS SNI.
    assert str(req_.url) == "https://93.184.216.34:8443/in?x=1" and req_.headers["host"] == "hooks.example.com:8443"
    assert req_.extensions["sni_hostname"] == "hooks.example.com"
    key = SigningKey.configured("s-o1")
    assert Webhook(key.secret).verify(req_.content, dict(req_.headers))["output"]["task_status"] == "PENDING"
    svc.store.close()


def test_private_resolutions_and_literals_are_refused_at_delivery(tmp_path: Path) -> None:
    store = TaskStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    d = dispatcher(store, lambda r: httpx.Response(200), resolve=lambda h, p: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(InvalidURL, match="10.0.0.7"):
        d._target("http://rebind.example.com/hook")
    with pytest.raises(InvalidURL):
        d._target("http://[::ffff:127.0.0.1]/hook")
    d.stop()
    store.close()


def test_a_lost_senders_lease_runs_out_and_its_late_outcome_is_fenced(tmp_path: Path) -> None:
    svc = service(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    svc.submit("o1", "intl", "dashscope", REQ, "r1")
    box, now = svc.store.outbox, time.time()
    lost = box.claim_due(now, lease_seconds=30)  # a node takes attempt 1, then dies mid-send
    assert lost is not None and lost.attempts == 1
    assert box.claim_due(now + 29, lease_seconds=30) is None  # nobody else sends it while the lease holds
    retry = box.claim_due(now + 31, lease_seconds=30)  # the lease ran out: another node sends attempt 2
    assert retry is not None and (retry.id, retry.attempts) == (lost.id, 2)
    assert not box.settle(lost, now + 32, state="delivered")  # the lost node's late word no longer counts
    assert box.settle(retry, now + 33, state="delivered")
    assert [(d.state, d.attempts) for d in box.list("o1")] == [("delivered", 2)]
    svc.store.close()
