"""kill -9 the front server (A, a subprocess, engine ``videos``) while its upstream video renders on B; after a
restart with the same data dir, A resumes polling that video: the task completes with B's bytes, and B never
sees a second create."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from openr2v.keys import owner_id
from tests.engines.test_dashscope_upstream_restart import SUBMIT, upstream_state
from tests.helpers import KEY, OTHER_KEY, LiveServer, free_port, start_serve_process


def start_front(data_dir: Path, port: int, upstream: str) -> subprocess.Popen[bytes]:
    return start_serve_process(data_dir, port, OPENR2V_ENGINE="videos", OPENR2V_UPSTREAM_URL=upstream,
                               OPENR2V_UPSTREAM_FLAVOR="openr2v", OPENR2V_UPSTREAM_API_KEY=OTHER_KEY,
                               OPENR2V_UPSTREAM_POLL_SECONDS="0.1", OPENR2V_UPSTREAM_MAX_POLL_SECONDS="0.5")


def test_kill_9_the_front_server_mid_task_then_it_resumes_polling(make_server: Any, tmp_path: Path,
                                                              file_server: str) -> None:
    b: LiveServer = make_server()  # the compositor
    data_dir = tmp_path / "front"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
    proc = start_front(data_dir, port, b.url)
    try:
        r = httpx.post(base + SUBMIT, headers=headers, json={
            "model": "wan2.6-r2v-flash",
            "input": {"prompt": "character1 says: 'still here'.", "reference_urls": [f"{file_server}/person1.mp4"]},
            "parameters": {"size": "1280*720", "duration": 2, "seed": 5}})
        assert r.status_code == 200, r.text
        task_id = r.json()["output"]["task_id"]
        deadline = time.time() + 60
        while time.time() < deadline and not upstream_state(data_dir, task_id).get("videos"):
            time.sleep(0.02)
        [up_id] = upstream_state(data_dir, task_id)["videos"].values()
        proc.send_signal(signal.SIGKILL)  # the moment A recorded the upstream id: B is still rendering
        proc.wait(10)
        killed_at = time.time()

        proc = start_front(data_dir, port, b.url)
        body = httpx.get(f"{base}/api/v1/tasks/{task_id}", headers=headers).json()
        deadline = time.time() + 120
        while time.time() < deadline and body["output"]["task_status"] not in ("SUCCEEDED", "FAILED", "CANCELED"):
            time.sleep(0.2)
            body = httpx.get(f"{base}/api/v1/tasks/{task_id}", headers=headers).json()
        assert body["output"]["task_status"] == "SUCCEEDED", body
        state = upstream_state(data_dir, task_id)
        assert list(state["videos"].values()) == [up_id] and state["attempts"] == 2  # the re-run polled it
        video = httpx.get(body["output"]["video_url"], timeout=60).content
    finally:
        proc.kill()
        proc.wait(10)

    tasks, total = b.app.state.runtime.store.list(owner_id(OTHER_KEY))  # type: ignore[attr-defined]
    assert total == 1 and tasks[0].id == up_id  # never a second upstream video
    assert tasks[0].end_time is not None and tasks[0].end_time > killed_at - 0.5  # it was mid-render at the kill
    with b.client(OTHER_KEY) as c:
        assert c.get(f"/v1/videos/{up_id}/content").content == video
