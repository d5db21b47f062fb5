"""kill -9 an API node and start it again: workers go on, the other node answers meanwhile, the
restarted node serves every task, and none is started twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.services import SLEEP_ENGINE, cluster, cluster_env, r2v_body, submit_task, task_output, wait_terminal


def test_an_api_node_restart_loses_nothing(tmp_path: Path, postgres_db: Any, redis_server: Any, moto_s3: Any,
                                           file_server: str) -> None:
    env = cluster_env(db=postgres_db, redis=redis_server, s3=moto_s3, OPENR2V_ENGINE=SLEEP_ENGINE,
                      OPENR2V_TEST_RENDER_SECONDS="0.5")
    with cluster(tmp_path, env) as c:
        a, b = c.api(), c.api()
        c.worker()
        body = r2v_body(f"{file_server}/object.png")
        ids = [submit_task(a.url, body) for _ in range(8)]
        a.kill9()  # some tasks RUNNING, most still queued
        done = wait_terminal(b.url, ids, timeout=60)
        assert {o["task_status"] for o in done.values()} == {"SUCCEEDED"}

        port = int(a.url.rsplit(":", 1)[1])
        again = c.api(port=port)
        ids += [submit_task(again.url, body) for _ in range(2)]
        done = wait_terminal(again.url, ids, timeout=60)
        assert {o["task_status"] for o in done.values()} == {"SUCCEEDED"}
        assert httpx.get(task_output(again.url, ids[0])["video_url"], timeout=30).status_code == 200
        assert postgres_db.query("SELECT count(*), max(attempts) FROM tasks") == [(10, 1)]
        assert postgres_db.query("SELECT count(*) FROM ledger") == [(10,)]
