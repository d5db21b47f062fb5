"""Webhooks survive kill -9: with the receiver down, a real ``openr2v serve`` is killed mid-task and
restarted; once the receiver comes up every status change arrives, in order, each under one
webhook-id across all its retries, signed as Standard Webhooks (checked with the spec's library).
Dead letters are listed and redelivered after a further restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.helpers import KEY, OTHER_KEY, WebhookReceiver, free_port, start_serve_process
from tests.services import (
    PROCESS_PYTHONPATH,
    SLEEP_ENGINE,
    r2v_body,
    submit_task,
    task_output,
    wait_terminal,
    wait_until,
)

FAST_RETRIES = {"OPENR2V_WEBHOOK_BACKOFF_SECONDS": "0.1", "OPENR2V_WEBHOOK_MAX_BACKOFF_SECONDS": "0.5",
                "OPENR2V_WEBHOOK_POLL_SECONDS": "0.1", "OPENR2V_WEBHOOK_MAX_ATTEMPTS": "1000"}


def kill9(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(15)


def deliveries(base: str, key: str = KEY, **params: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{base}/api/v1/openr2v/webhooks/deliveries", params=params,
                  headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200, r.text
    return list(r.json()["output"]["deliveries"])


@pytest.mark.timeout(240)
def test_every_status_change_arrives_after_a_kill_9(tmp_path: Path, file_server: str) -> None:
    port, hook_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"PYTHONPATH": PROCESS_PYTHONPATH, "OPENR2V_ENGINE": SLEEP_ENGINE,
           "OPENR2V_TEST_RENDER_SECONDS": "3", **FAST_RETRIES}
    data = tmp_path / "data"
    body = r2v_body(f"{file_server}/object.png")
    body["parameters"]["callback_url"] = f"http://127.0.0.1:{hook_port}/hook"  # nothing listens there yet

    proc = start_serve_process(data, port, **env)
    receiver = None
    try:
        task_id = submit_task(base, body)
        wait_until(lambda: task_output(base, task_id)["task_status"] == "RUNNING", 30, "the task to start")
        wait_until(lambda: deliveries(base)[0]["attempts"] >= 3, 30, "attempts against the closed port")
        kill9(proc)  # mid-task, with PENDING and RUNNING undelivered

        proc = start_serve_process(data, port, **env)
        assert wait_terminal(base, [task_id], timeout=60)[task_id]["task_status"] == "SUCCEEDED"
        before = deliveries(base)
        assert [(d["event"], d["state"]) for d in before] == [(e, "pending") for e in (
            "PENDING", "RUNNING", "PENDING", "RUNNING", "SUCCEEDED")]  # the restart re-queued the task

        receiver = WebhookReceiver(hook_port)
        receiver.script = [500, 500]  # the receiver's first answers fail: retried under the same id
        got = receiver.wait_for(lambda r: sum(x.status == 200 for x in r) == 5, timeout=60)
        ok = [r for r in got if r.status == 200]
        assert [json.loads(r.body)["output"]["task_status"] for r in ok] == [
            "PENDING", "RUNNING", "PENDING", "RUNNING", "SUCCEEDED"]
        ids = [d["webhook_id"] for d in before]
        assert [r.headers["webhook-id"] for r in ok] == ids  # each event under the id it had before the kill
        assert [r.headers["webhook-id"] for r in got[:3]] == [ids[0]] * 3  # 500, 500, 200: one id
        with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}) as c:
            secret = c.get(f"{base}/api/v1/openr2v/webhook_secret").json()["output"]["webhook_secret"]
        for r in got:
            assert Webhook(secret).verify(r.body, r.headers)["output"]["task_id"] == task_id
        after = deliveries(base)
        assert {d["state"] for d in after} == {"delivered"}
        assert after[0]["attempts"] >= 3 + 3  # failed attempts before and after the kill, 2 x 500, then 200

        # Another restart sends nothing again; with 2 attempts a failing receiver leaves dead letters.
        kill9(proc)
        proc = start_serve_process(data, port, **{**env, "OPENR2V_WEBHOOK_MAX_ATTEMPTS": "2",
                                                  "OPENR2V_TEST_RENDER_SECONDS": "0.2"})
        receiver.script = [500] * 6
        second = submit_task(base, body)
        receiver.wait_for(lambda r: len(r) == len(got) + 6, timeout=60)
        wait_until(lambda: len(deliveries(base, state="dead")) == 3, 30, "three dead letters")
        dead = deliveries(base, state="dead")
        assert [(d["task_id"], d["event"], d["attempts"]) for d in dead] == [
            (second, e, 2) for e in ("PENDING", "RUNNING", "SUCCEEDED")]
        assert deliveries(base, OTHER_KEY, state="dead") == []
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as c:
            for d in dead:
                assert c.post(f"/api/v1/openr2v/webhooks/deliveries/{d['webhook_id']}/redeliver").status_code == 200
        again = receiver.wait_for(lambda r: len(r) == len(got) + 9, timeout=60)[len(got) + 6:]
        assert [r.headers["webhook-id"] for r in again] == [d["webhook_id"] for d in dead]
        assert [r.status for r in again] == [200, 200, 200]
        assert all(Webhook(secret).verify(r.body, r.headers) for r in again)
        # Nothing of the first task was sent twice.
        assert sum(x.status == 200 and x.headers["webhook-id"] in ids for x in receiver.received) == 5
    finally:
        if proc.poll() is None:
            kill9(proc)
        if receiver is not None:
            receiver.close()
