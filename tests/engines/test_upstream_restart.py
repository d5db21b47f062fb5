"""kill -9 the front server (A, a subprocess, engine ``dashscope`` or ``videos``) while its upstream task
renders on B; after a restart with the same data dir, A resumes polling that upstream task: the task
completes with B's bytes, and B never sees a second submit."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from openr2v.keys import owner_id
from tests.helpers import KEY, OTHER_KEY, LiveServer, free_port, start_serve_process

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"

# Per engine: its settings beyond the upstream URL, and where B serves the upstream task's video.
ENGINES: dict[str, tuple[dict[str, str], str]] = {
    "dashscope": ({}, "/api/v1/tasks/{id}"),
    "videos": ({"OPENR2V_UPSTREAM_FLAVOR": "openr2v"}, "/v1/videos/{id}/content"),
}


def start_front(data_dir: Path, port: int, upstream: str, engine: str) -> subprocess.Popen[bytes]:
    return start_serve_process(data_dir, port, OPENR2V_ENGINE=engine, OPENR2V_UPSTREAM_URL=upstream,
                               OPENR2V_UPSTREAM_API_KEY=OTHER_KEY, OPENR2V_UPSTREAM_POLL_SECONDS="0.1",
                               OPENR2V_UPSTREAM_MAX_POLL_SECONDS="0.5", **ENGINES[engine][0])


def upstream_state(data_dir: Path, task_id: str) -> dict[str, Any]:
    """What A recorded of its upstream task (Task.extra), read from A's SQLite file."""
    with sqlite3.connect(data_dir / "openr2v.db", timeout=10) as db:
        row = db.execute("SELECT extra_json, attempts FROM tasks WHERE id = ?", (task_id,)).fetchone()
    extra = json.loads(row[0]) if row and row[0] else {}
    return {**extra.get("upstream", {}), "attempts": row[1] if row else 0}


def upstream_id(state: dict[str, Any]) -> str | None:
    """The upstream task's id: ``task_id`` (dashscope) or the one entry of ``videos`` (videos, whole prompt)."""
    videos = state.get("videos")
    if videos:
        [only] = videos.values()
        return str(only)
    return state.get("task_id")


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_kill_9_the_front_server_mid_task_then_it_resumes_polling(engine: str, make_server: Any, tmp_path: Path,
                                                              file_server: str) -> None:
    b: LiveServer = make_server()  # the compositor
    data_dir = tmp_path / "front"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
    proc = start_front(data_dir, port, b.url, engine)
    try:
        r = httpx.post(base + SUBMIT, headers=headers, json={
            "model": "wan2.6-r2v-flash",
            "input": {"prompt": "character1 says: 'still here'.", "reference_urls": [f"{file_server}/person1.mp4"]},
            "parameters": {"size": "1280*720", "duration": 2, "seed": 5}})
        assert r.status_code == 200, r.text
        task_id = r.json()["output"]["task_id"]
        deadline = time.time() + 60
        while time.time() < deadline and not upstream_id(upstream_state(data_dir, task_id)):
            time.sleep(0.02)
        up_id = upstream_id(upstream_state(data_dir, task_id))
        assert up_id
        proc.send_signal(signal.SIGKILL)  # the moment A recorded the upstream id: B is still rendering
        proc.wait(10)
        killed_at = time.time()

        proc = start_front(data_dir, port, b.url, engine)
        body = httpx.get(f"{base}/api/v1/tasks/{task_id}", headers=headers).json()
        deadline = time.time() + 120
        while time.time() < deadline and body["output"]["task_status"] not in ("SUCCEEDED", "FAILED", "CANCELED"):
            time.sleep(0.2)
            body = httpx.get(f"{base}/api/v1/tasks/{task_id}", headers=headers).json()
        assert body["output"]["task_status"] == "SUCCEEDED", body
        state = upstream_state(data_dir, task_id)
        assert upstream_id(state) == up_id and state["attempts"] == 2  # the re-run polled the same task
        video = httpx.get(body["output"]["video_url"], timeout=60).content
    finally:
        proc.kill()
        proc.wait(10)

    tasks, total = b.app.state.runtime.store.list(owner_id(OTHER_KEY))  # type: ignore[attr-defined]
    assert total == 1 and tasks[0].id == up_id  # never a second upstream task
    assert tasks[0].end_time is not None and tasks[0].end_time > killed_at - 0.5  # it was mid-render at the kill
    with b.client(OTHER_KEY) as c:
        answer = c.get(ENGINES[engine][1].format(id=up_id))
        if engine == "dashscope":
            answer = httpx.get(answer.json()["output"]["video_url"], timeout=60)
    assert video == answer.content
