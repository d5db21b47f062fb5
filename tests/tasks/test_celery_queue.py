"""The Celery queue over our own redis-server: publishing, markers, revoke, and `openr2v worker`.

The API runs in-process with ``queue=celery`` and shares its data directory (SQLite store, local
files) with a worker process: the queue is what is tested here; PostgreSQL and S3 join in
tests/durability.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from sqlalchemy import text

from openr2v.tasks.queue import CeleryQueue
from tests.helpers import LiveServer, free_port, run_server
from tests.helpers import test_settings as settings_for
from tests.services import SLEEP_ENGINE, Cluster, Proc, cluster, cluster_env, wait_until

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"


def body(file_server: str) -> dict[str, Any]:
    return {"model": "wan2.6-r2v-flash",
            "input": {"prompt": "character1 waves.", "reference_urls": [f"{file_server}/object.png"]},
            "parameters": {"size": "1280*720", "duration": 2, "audio": False, "seed": 7}}


def submit(srv: LiveServer, file_server: str) -> str:
    with srv.client() as c:
        r = c.post(SUBMIT, json=body(file_server), headers={"X-DashScope-Async": "enable"})
    assert r.status_code == 200, r.text
    return str(r.json()["output"]["task_id"])


def status(srv: LiveServer, task_id: str) -> str:
    with srv.client() as c:
        return str(c.get(f"/api/v1/tasks/{task_id}").json()["output"]["task_status"])


def row(srv: LiveServer, task_id: str) -> dict[str, Any]:
    store = srv.app.state.runtime.store  # type: ignore[attr-defined]
    with store.engine.connect() as c:
        r = c.execute(text("SELECT status, attempts, worker FROM tasks WHERE id = :i"), {"i": task_id}).one()
    return {"status": r[0], "attempts": r[1], "worker": r[2]}


@dataclass
class Rig:
    """An API node in-process (queue=celery; its 2 would-be render threads must stay idle) and
    `openr2v worker` processes on the same data directory."""

    srv: LiveServer
    procs: Cluster
    data: Path

    def worker(self, concurrency: int, render_seconds: float = 0.05) -> Proc:
        return self.procs.worker(concurrency=concurrency, data_dir=self.data,
                                 extra_env={"OPENR2V_TEST_RENDER_SECONDS": str(render_seconds)})


@pytest.fixture
def rig(tmp_path: Path, redis_server: Any) -> Iterator[Rig]:
    data = tmp_path / "data"
    settings = settings_for(data, queue="celery", broker_url=redis_server.url, lease_seconds=3,
                            reaper_interval_seconds=0.5, requeue_pending_seconds=2, engine=SLEEP_ENGINE)
    with run_server(settings) as srv, cluster(tmp_path / "procs", cluster_env(
            db=None, redis=redis_server, OPENR2V_ENGINE=SLEEP_ENGINE)) as procs:
        yield Rig(srv, procs, data)


def test_publish_names_the_task_and_marks_it_in_flight(redis_server: Any) -> None:
    q = CeleryQueue(redis_server.url, "openr2v-unit")
    try:
        q.notify("task-a")
        r = redis_lib.Redis.from_url(redis_server.url)
        [message] = r.lrange("openr2v-unit", 0, -1)
        headers = json.loads(message)["headers"]
        assert (headers["id"], headers["task"]) == ("task-a", "openr2v.run")  # Celery id = our id
        assert q.in_flight(["task-a", "task-b"]) == {"task-a"}
        q.taken("task-a")
        assert q.in_flight(["task-a"]) == set()
    finally:
        q.stop()


def test_a_dead_broker_never_fails_a_publish(tmp_path: Path) -> None:
    q = CeleryQueue(f"redis://127.0.0.1:{free_port()}/0", "openr2v-unit")  # nothing listens there
    try:
        t0 = time.monotonic()
        q.notify("task-a")  # logged, not raised: the reaper publishes it again later
        assert time.monotonic() - t0 < 10
        assert q.in_flight(["task-a"]) == {"task-a"}  # unknown: don't publish into a dead broker
    finally:
        q.stop()


def test_the_api_publishes_and_only_workers_render(rig: Rig, file_server: str) -> None:
    srv = rig.srv
    ids = [submit(srv, file_server) for _ in range(3)]
    time.sleep(1.5)  # the API's own threads would have taken them by now
    assert {row(srv, i)["status"] for i in ids} == {"PENDING"}
    worker = rig.worker(concurrency=2)
    for i in ids:
        assert srv.wait(i, timeout=60)["output"]["task_status"] == "SUCCEEDED"
        assert row(srv, i)["worker"].endswith(f":{worker.pid}") and row(srv, i)["attempts"] == 1
    with srv.client() as c:
        url = c.get(f"/api/v1/tasks/{ids[0]}").json()["output"]["video_url"]
        assert c.get(url).content.startswith(b"not a video:")  # the sleep engine's output, served by the API


def test_cancelling_a_pending_task_revokes_its_message(rig: Rig, file_server: str) -> None:
    srv = rig.srv
    worker = rig.worker(concurrency=1, render_seconds=3)
    busy = submit(srv, file_server)
    wait_until(lambda: status(srv, busy) == "RUNNING", 30, "the first task to run")
    queued = submit(srv, file_server)  # waits in Redis: prefetch 1, the worker is busy
    with srv.client() as c:
        r = c.post(f"/api/v1/tasks/{queued}/cancel")
    assert r.status_code == 200, r.text
    assert status(srv, queued) == "CANCELED"
    app = srv.app.state.runtime.queue.app  # type: ignore[attr-defined]
    revoked = wait_until(lambda: {i for ids in (app.control.inspect(timeout=2).revoked() or {}).values()
                                  for i in ids}, 20, "the worker to know the revoked id")
    assert queued in revoked
    assert srv.wait(busy, timeout=30)["output"]["task_status"] == "SUCCEEDED"
    wait_until(lambda: f"Discarding revoked task: openr2v.run[{queued}]" in worker.log.read_text(), 20,
               "the revoked message to be dropped")
    assert row(srv, queued) == {"status": "CANCELED", "attempts": 0, "worker": None}


def test_duplicate_and_stale_messages_are_no_ops(rig: Rig, file_server: str) -> None:
    srv = rig.srv
    worker = rig.worker(concurrency=2, render_seconds=2)
    queue = srv.app.state.runtime.queue  # type: ignore[attr-defined]
    task = submit(srv, file_server)
    wait_until(lambda: status(srv, task) == "RUNNING", 30, "the task to run")
    queue.notify(task)  # a redelivery while it runs on a fresh lease: the second thread must not start it
    assert srv.wait(task, timeout=30)["output"]["task_status"] == "SUCCEEDED"
    queue.notify(task)  # and once it is done
    wait_until(lambda: worker.log.read_text().count(f"openr2v.run[{task}] succeeded") == 3, 20,
               "all three messages to be handled")
    assert row(srv, task)["attempts"] == 1
    with srv.client() as c:
        assert c.get("/api/v1/openr2v/ledger").json()["output"]["tasks"] == 1  # billed once
