"""kill -9 a worker mid-render: its task is retried by another worker; lost again and again, it
FAILS with a reason once out of attempts. PostgreSQL + Celery over Redis + S3, real renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.helpers import assert_contract_mp4
from tests.services import Cluster, Proc, cluster, cluster_env, r2v_body, submit_task, task_output, wait_until


def kill_mid_render(c: Cluster, db: Any, task_id: str, attempt: int) -> Proc:
    """Wait until a worker renders ``task_id`` in ``attempt`` (the engine reporting progress), kill -9 it."""

    def running_on() -> Proc | None:
        rows = db.query("SELECT status, worker, progress, attempts FROM tasks WHERE id = %s", task_id)
        if rows and rows[0][0] == "RUNNING" and rows[0][1] and rows[0][2] >= 10 and rows[0][3] == attempt:
            pid = int(rows[0][1].rsplit(":", 1)[1])
            proc = next(p for p in c.procs if p.pid == pid)
            assert proc.alive()
            return proc
        assert not rows or rows[0][0] in ("PENDING", "RUNNING"), rows
        return None

    victim: Proc = wait_until(running_on, 90, f"task {task_id} to render", interval=0.03)
    victim.kill9()
    return victim


def test_a_killed_worker_is_retried_then_failed_with_a_reason(tmp_path: Path, postgres_db: Any, redis_server: Any,
                                                              moto_s3: Any, file_server: str) -> None:
    env = cluster_env(db=postgres_db, redis=redis_server, s3=moto_s3, OPENR2V_MAX_ATTEMPTS="2")
    with cluster(tmp_path, env) as c:
        api = c.api()
        w1, w2 = c.worker(), c.worker()
        body = r2v_body(f"{file_server}/object.png", seed=11)

        # 1. One worker dies mid-render: the other takes the task over once its lease runs out.
        first = submit_task(api.url, body)
        dead = kill_mid_render(c, postgres_db, first, attempt=1)
        survivor = w2 if dead is w1 else w1
        wait_until(lambda: task_output(api.url, first)["task_status"] == "SUCCEEDED", 90, "the retry to succeed")
        [(attempts, worker)] = postgres_db.query("SELECT attempts, worker FROM tasks WHERE id = %s", first)
        assert attempts == 2 and worker.endswith(f":{survivor.pid}")
        video = httpx.get(task_output(api.url, first)["video_url"], timeout=30)
        assert_contract_mp4(video.content, 1280, 720, 2, audio=False)

        # 2. A task whose workers keep dying: retried up to OPENR2V_MAX_ATTEMPTS, then FAILED with the reason.
        second = submit_task(api.url, body)
        kill_mid_render(c, postgres_db, second, attempt=1)  # the survivor
        c.worker()  # a fresh one takes the retry...
        kill_mid_render(c, postgres_db, second, attempt=2)  # ...and dies too
        wait_until(lambda: task_output(api.url, second)["task_status"] == "FAILED", 60, "the task to fail")
        out = task_output(api.url, second)
        assert out["code"] == "InternalError" and out["message"].startswith("Worker lost"), out

        # The bill: the retried task once, the failed one not at all.
        assert postgres_db.query("SELECT task_id FROM ledger") == [(first,)]
