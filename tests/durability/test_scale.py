"""200 tasks from 20 concurrent clients across 2 API nodes and 2 workers: every task ends, none is
lost or run twice, and the billing ledger agrees with the tasks (PostgreSQL + Celery + S3)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import SLEEP_ENGINE, SUBMIT, TERMINAL, cluster, cluster_env, r2v_body

CLIENTS = 20
PER_CLIENT = 10


@pytest.mark.timeout(240)
def test_200_tasks_20_clients_2_api_nodes_2_workers(tmp_path: Path, postgres_db: Any, redis_server: Any,
                                                     moto_s3: Any, file_server: str) -> None:
    keys = [f"sk-load-{i:02d}" for i in range(CLIENTS)]
    env = cluster_env(db=postgres_db, redis=redis_server, s3=moto_s3, OPENR2V_ENGINE=SLEEP_ENGINE,
                      OPENR2V_TEST_RENDER_SECONDS="0.02", OPENR2V_API_KEYS=",".join(f"{k}:intl" for k in keys))
    with cluster(tmp_path, env) as c:
        apis = [c.api(), c.api()]
        c.worker(concurrency=2)
        c.worker(concurrency=2)
        results: dict[str, dict[str, Any]] = {}  # task id -> final body
        owners: dict[str, str] = {}
        errors: list[str] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            key = keys[n]
            headers = {"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable"}
            try:
                with httpx.Client(timeout=60, headers=headers) as http:
                    mine = []
                    for j in range(PER_CLIENT):  # submits alternate between the nodes...
                        body = r2v_body(f"{file_server}/object.png", seed=n * 100 + j)
                        r = http.post(apis[(n + j) % 2].url + SUBMIT, json=body)
                        assert r.status_code == 200, r.text
                        mine.append(r.json()["output"]["task_id"])
                    with lock:
                        owners.update(dict.fromkeys(mine, key))
                    pending = set(mine)
                    while pending:  # ...and polls go to either
                        for i in sorted(pending):
                            b = http.get(f"{apis[hash(i) % 2].url}/api/v1/tasks/{i}").json()
                            if b["output"]["task_status"] in TERMINAL:
                                pending.discard(i)
                                with lock:
                                    results[i] = b
                        if pending:
                            threading.Event().wait(0.3)
            except Exception as e:  # reported below, with every other client's
                with lock:
                    errors.append(f"client {n}: {type(e).__name__}: {e}")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(200)
        assert not errors, errors
        assert not any(t.is_alive() for t in threads), "clients still polling"

        # Every task ended, and succeeded.
        assert len(results) == CLIENTS * PER_CLIENT
        assert {b["output"]["task_status"] for b in results.values()} == {"SUCCEEDED"}
        # None lost, none duplicated: exactly these tasks in the store, each started once.
        rows = postgres_db.query("SELECT id, status, attempts FROM tasks")
        assert sorted(r[0] for r in rows) == sorted(results)
        assert {(r[1], r[2]) for r in rows} == {("SUCCEEDED", 1)}
        # One output per task in the bucket.
        s3 = moto_s3.client()
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=moto_s3.bucket, Prefix="openr2v/outputs/")
        assert sum(len(p.get("Contents", [])) for p in pages) == CLIENTS * PER_CLIENT
        # The ledger: one row per succeeded task, its seconds those of the task's usage, per key.
        ledger = dict(postgres_db.query("SELECT task_id, billed_seconds FROM ledger"))
        assert ledger == {i: pytest.approx(b["usage"]["duration"]) for i, b in results.items()}
        for key in keys:
            r = httpx.get(f"{apis[0].url}/api/v1/openr2v/ledger", headers={"Authorization": f"Bearer {key}"})
            billed = sum(b["usage"]["duration"] for i, b in results.items() if owners[i] == key)
            assert r.json()["output"]["tasks"] == PER_CLIENT
            assert r.json()["output"]["billed_seconds"] == pytest.approx(billed)
