"""GET /api/v1/tasks/{id}/events: live status and progress (SSE) until a final status."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from openr2v.domain.task import Status
from openr2v.tasks.store import TaskStore
from tests.helpers import KEY, OTHER_KEY, LiveServer

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"


def submit(server: LiveServer, url: str) -> str:
    with server.client() as c:
        r = c.post(SUBMIT, headers={"X-DashScope-Async": "enable"}, json={
            "model": "wan2.6-r2v-flash", "input": {"prompt": "character1 waves.", "reference_urls": [url]},
            "parameters": {"size": "1280*720", "duration": 2}})
    assert r.status_code == 200, r.text
    return r.json()["output"]["task_id"]


def read_events(server: LiveServer, task_id: str, key: str = KEY) -> tuple[httpx.Response, list[tuple[str, dict]]]:
    events: list[tuple[str, dict]] = []
    with httpx.stream("GET", f"{server.api}/tasks/{task_id}/events", headers={"Authorization": f"Bearer {key}"},
                      timeout=60) as r:
        if r.status_code != 200:
            r.read()
            return r, events
        kind = ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line.split(":", 1)[1])))
    return r, events


def test_stream_follows_a_task_to_the_end(server: LiveServer, file_server: str) -> None:
    task_id = submit(server, f"{file_server}/person1.mp4")
    r, events = read_events(server, task_id)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-request-id"]
    kinds = [k for k, _ in events]
    statuses = [e["output"]["task_status"] for _, e in events]
    progress = [e["output"]["progress"] for _, e in events]
    assert kinds[0] == "status" and statuses[-1] == "SUCCEEDED" and kinds[-1] == "status"
    assert progress[-1] == 100 and progress == sorted(progress)  # forward only
    for (kind, _), before, after in zip(events[1:], statuses, statuses[1:], strict=False):
        assert kind == ("progress" if before == after else "status")
    last = events[-1][1]
    assert last["output"]["video_url"] and last["usage"]["output_video_duration"] == 2
    # The same body as GET /tasks/{id}, plus the progress.
    with server.client() as c:
        polled = c.get(f"/api/v1/tasks/{task_id}").json()
    assert {k: v for k, v in last["output"].items() if k not in ("progress", "video_url")} == \
        {k: v for k, v in polled["output"].items() if k != "video_url"}


def test_same_auth_and_ownership_as_get(server: LiveServer, file_server: str) -> None:
    task_id = submit(server, f"{file_server}/object.png")
    r, _ = read_events(server, task_id, key=OTHER_KEY)
    assert r.status_code == 404 and r.json()["code"] == "NotFound"
    r, _ = read_events(server, task_id, key="sk-nobody")
    assert r.status_code == 401 and r.json()["code"] == "InvalidApiKey"
    r, events = read_events(server, "00000000-0000-0000-0000-000000000000")
    assert r.status_code == 200 and [e["output"]["task_status"] for _, e in events] == ["UNKNOWN"]
    server.wait(task_id)


def test_stream_sees_changes_made_by_another_process(make_server: Any, file_server: str) -> None:
    srv = make_server(render_threads=0)  # no worker here: "another process" moves the task, through the store
    task_id = submit(srv, f"{file_server}/object.png")
    remote = TaskStore(srv.settings.resolved_database_url())

    def work() -> None:
        time.sleep(0.6)
        remote.claim(task_id, time.time())
        time.sleep(0.6)
        remote.set_progress(task_id, 40)
        time.sleep(0.6)
        remote.finish(task_id, Status.FAILED, time.time(), from_status=(Status.RUNNING,), code="InternalError",
                      message="the remote worker gave up")

    t = threading.Thread(target=work)
    t.start()
    _, events = read_events(srv, task_id)
    t.join()
    remote.close()
    seen = [(k, e["output"]["task_status"], e["output"]["progress"]) for k, e in events]
    assert seen == [("status", "PENDING", 0), ("status", "RUNNING", 0), ("progress", "RUNNING", 40),
                    ("status", "FAILED", 40)], seen
    assert events[-1][1]["output"]["code"] == "InternalError"
