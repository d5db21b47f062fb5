"""Restart Redis (ours, keeping nothing on disk) with tasks queued: every message is lost, yet every
task ends, because the store is the truth and the reaper publishes PENDING tasks again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.services import SLEEP_ENGINE, cluster, cluster_env, r2v_body, submit_task, wait_terminal


def test_tasks_survive_a_broker_restart(tmp_path: Path, postgres_db: Any, redis_server: Any, moto_s3: Any,
                                        file_server: str) -> None:
    env = cluster_env(db=postgres_db, redis=redis_server, s3=moto_s3, OPENR2V_ENGINE=SLEEP_ENGINE,
                      OPENR2V_TEST_RENDER_SECONDS="0.3")
    with cluster(tmp_path, env) as c:
        api = c.api()
        c.worker(concurrency=2)
        body = r2v_body(f"{file_server}/object.png")
        before = [submit_task(api.url, body) for _ in range(12)]
        redis_server.stop()  # queued messages, unacked ones and markers: all gone
        t0 = time.monotonic()
        during = [submit_task(api.url, body) for _ in range(4)]  # the API still takes tasks
        assert time.monotonic() - t0 < 20
        time.sleep(1)
        redis_server.start()  # empty
        ids = before + during
        done = wait_terminal(api.url, ids, timeout=90)
        assert {o["task_status"] for o in done.values()} == {"SUCCEEDED"}
        assert postgres_db.query("SELECT count(*), max(attempts) FROM tasks") == [(16, 1)]  # each ran once
        assert postgres_db.query("SELECT count(*) FROM ledger") == [(16,)]
        assert "re-published" in c.logs()  # the reaper brought the lost wake-ups back
