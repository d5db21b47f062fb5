"""Metrics of the Celery deployment (PostgreSQL + Redis): two API processes share a
PROMETHEUS_MULTIPROC_DIR, so either one's /metrics adds up both one's requests; store gauges are
right on any node; the worker serves its own metrics (renders, billing, status changes) on
OPENR2V_METRICS_PORT. Webhooks go out once per event from whichever node claims them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import WebhookReceiver, free_port
from tests.services import SLEEP_ENGINE, cluster, cluster_env, r2v_body, submit_task, wait_terminal
from tests.test_metrics import scrape, value

SUBMIT_ROUTE = "/api/v1/services/aigc/video-generation/video-synthesis"


def test_metrics_of_api_nodes_and_a_celery_worker(tmp_path: Path, postgres_db: Any, redis_server: Any,
                                                   file_server: str, webhook_receiver: WebhookReceiver) -> None:
    prom = tmp_path / "prom"
    prom.mkdir()
    env = cluster_env(db=postgres_db, redis=redis_server, OPENR2V_ENGINE=SLEEP_ENGINE,
                      OPENR2V_TEST_RENDER_SECONDS="0.2")
    with cluster(tmp_path / "cluster", env) as c:
        shared = {"PROMETHEUS_MULTIPROC_DIR": str(prom)}
        a, b = c.api(extra_env=shared), c.api(extra_env=shared)
        worker_port = free_port()
        c.worker(extra_env={"OPENR2V_METRICS_PORT": str(worker_port)})
        bodies = [r2v_body(f"{file_server}/object.png", seed=i) for i in range(3)]
        bodies[0]["parameters"]["callback_url"] = webhook_receiver.url  # its webhooks go out from any node
        ids = [submit_task(a.url, body) for body in bodies]
        assert {o["task_status"] for o in wait_terminal(a.url, ids).values()} == {"SUCCEEDED"}
        got = webhook_receiver.wait_for(lambda r: len(r) == 3)
        assert [json.loads(r.body)["output"]["task_status"] for r in got] == ["PENDING", "RUNNING", "SUCCEEDED"]
        assert len({r.headers["webhook-id"] for r in got}) == 3

        on_b = scrape(b.url)  # b answered no submit itself: the multi-process files hold a's
        assert value(on_b, "openr2v_http_requests_total", route=SUBMIT_ROUTE, method="POST", status="200") == 3
        assert value(on_b, "openr2v_task_status_changes_total", status="PENDING", model="wan2.6-r2v-flash") == 3
        assert value(on_b, "openr2v_tasks", status="SUCCEEDED", model="wan2.6-r2v-flash") == 3
        assert value(on_b, "openr2v_queue_depth") == 0

        worker = scrape(f"http://127.0.0.1:{worker_port}")
        assert value(worker, "openr2v_render_seconds_count", engine="sleep") == 3
        assert value(worker, "openr2v_render_seconds_sum", engine="sleep") >= 0.5
        assert value(worker, "openr2v_task_status_changes_total", status="SUCCEEDED") == 3
        assert value(worker, "openr2v_billed_seconds_total", model="wan2.6-r2v-flash") == 6
        assert value(worker, "openr2v_http_requests_total") == 0  # a worker answers no API requests
        assert value(on_b, "openr2v_webhook_outbox", state="delivered") == 3
        sent = sum(value(m, "openr2v_webhook_attempts_total", outcome="delivered") for m in (on_b, worker))
        assert sent == 3  # each event sent once, by whichever node claimed it

        more = [submit_task(b.url, r2v_body(f"{file_server}/object.png", seed=10 + i)) for i in range(2)]
        wait_terminal(b.url, more)
        assert value(scrape(a.url), "openr2v_http_requests_total", route=SUBMIT_ROUTE, status="200") == 5
        assert value(scrape(f"http://127.0.0.1:{worker_port}"), "openr2v_render_seconds_count", engine="sleep") == 5
        assert httpx.get(f"{a.url}/metrics", timeout=10).text.count("# TYPE openr2v_tasks gauge") == 1
