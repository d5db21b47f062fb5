"""GET /metrics of the embedded deployment: Prometheus text that prometheus-client's own parser reads,
with counters that move as tasks run and store gauges read at scrape time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import KEY, WebhookReceiver, free_port, start_serve_process
from tests.services import PROCESS_PYTHONPATH, SLEEP_ENGINE, r2v_body, submit_task, wait_terminal

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    r = httpx.get(f"{url}/metrics", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the series of ``name`` whose labels include ``labels`` (0 if none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def test_metrics_move_as_tasks_run(tmp_path: Path, file_server: str, webhook_receiver: WebhookReceiver) -> None:
    # A process of its own (``openr2v serve``), so no other test's server moves its counters.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_serve_process(tmp_path / "data", port, OPENR2V_ENGINE=SLEEP_ENGINE,
                               OPENR2V_WEBHOOK_POLL_SECONDS="0.05", PYTHONPATH=PROCESS_PYTHONPATH)
    try:
        before = scrape(url)
        body = r2v_body(f"{file_server}/object.png")
        body["parameters"]["callback_url"] = webhook_receiver.url
        ok = submit_task(url, body)
        missing = submit_task(url, r2v_body(f"{file_server}/no-such-file.png"))
        done = wait_terminal(url, [ok, missing])
        assert (done[ok]["task_status"], done[missing]["task_status"]) == ("SUCCEEDED", "FAILED")
        webhook_receiver.wait_for(lambda r: any(json.loads(x.body)["output"]["task_status"] == "SUCCEEDED"
                                                for x in r))
        after = scrape(url)
    finally:
        proc.kill()
        proc.wait(15)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    submit = "/api/v1/services/aigc/video-generation/video-synthesis"
    assert moved("openr2v_http_requests_total", dialect="dashscope", route=submit, method="POST", status="200") == 2
    assert moved("openr2v_http_requests_total", route="/api/v1/tasks/{task_id}", status="200") >= 2
    assert moved("openr2v_http_request_duration_seconds_count", route="/api/v1/tasks/{task_id}") >= 2
    assert not any(ok in dict(ls).get("route", "") for _, ls in after)  # templates, never raw paths
    assert moved("openr2v_render_seconds_count", engine="sleep") == 1
    assert moved("openr2v_fetch_failures_total", reason="BadRequest.InputDownloadFailed") == 1
    assert moved("openr2v_billed_seconds_total", model="wan2.6-r2v-flash") == 2
    assert moved("openr2v_task_status_changes_total", status="SUCCEEDED", model="wan2.6-r2v-flash") == 1
    assert moved("openr2v_task_status_changes_total", status="FAILED") == 1
    assert moved("openr2v_webhook_attempts_total", outcome="delivered") == 3  # PENDING, RUNNING, SUCCEEDED
    # Read from the store at scrape time.
    assert value(after, "openr2v_tasks", status="SUCCEEDED", model="wan2.6-r2v-flash") == 1
    assert value(after, "openr2v_tasks", status="FAILED", model="wan2.6-r2v-flash") == 1
    assert value(after, "openr2v_queue_depth") == 0 and value(after, "openr2v_queue_oldest_pending_age_seconds") == 0
    assert value(after, "openr2v_webhook_outbox", state="delivered") == 3
    assert value(after, "openr2v_webhook_dead_letters") == 0 and value(after, "openr2v_store_up") == 1


def test_queue_depth_and_age_are_the_stores(make_server: Any, file_server: str) -> None:
    srv = make_server(engine=SLEEP_ENGINE, render_threads=0)  # an API node alone: tasks wait
    ids = [submit_task(srv.url, r2v_body(f"{file_server}/object.png", seed=i)) for i in range(3)]
    samples = scrape(srv.url)
    assert value(samples, "openr2v_queue_depth") == 3
    assert value(samples, "openr2v_tasks", status="PENDING") == 3
    assert 0 <= value(samples, "openr2v_queue_oldest_pending_age_seconds") < 60
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        assert c.post(f"/api/v1/tasks/{ids[0]}/cancel").status_code == 200
    samples = scrape(srv.url)
    assert value(samples, "openr2v_queue_depth") == 2 and value(samples, "openr2v_tasks", status="CANCELED") == 1
