"""Task life through the DashScope dialect: reads, ownership, lists, URLs, failures, limits, billing."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.helpers import KEY, OTHER_KEY, LiveServer

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
ASYNC = {"X-DashScope-Async": "enable"}


def body(urls: list[str], **params: Any) -> dict[str, Any]:
    return {"model": "wan2.6-r2v-flash", "input": {"prompt": "character1 waves.", "reference_urls": urls},
            "parameters": {"size": "1280*720", "duration": 2, **params}}


def submit(server: LiveServer, urls: list[str], key: str = KEY, **params: Any) -> str:
    with server.client(key) as c:
        r = c.post(SUBMIT, json=body(urls, **params), headers=ASYNC)
    assert r.status_code == 200, r.text
    return r.json()["output"]["task_id"]


def test_unknown_task_reads_unknown(server: LiveServer) -> None:
    with server.client() as c:
        r = c.get("/api/v1/tasks/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 200
    assert r.json()["output"] == {"task_id": "00000000-0000-0000-0000-000000000000", "task_status": "UNKNOWN"}


def test_a_key_sees_only_its_own_tasks(server: LiveServer, file_server: str) -> None:
    task_id = submit(server, [f"{file_server}/object.png"])
    with server.client(OTHER_KEY) as c:
        r = c.get(f"/api/v1/tasks/{task_id}")
        assert r.status_code == 404 and r.json()["code"] == "NotFound"
        r = c.post(f"/api/v1/tasks/{task_id}/cancel")
        assert r.status_code == 404
        listed = c.get("/api/v1/tasks", params={"page_size": 100}).json()
        assert task_id not in [t["task_id"] for t in listed["data"]]
    assert server.wait(task_id)["output"]["task_status"] == "SUCCEEDED"


def test_trailing_slash_and_stray_query_are_tolerated(server: LiveServer, file_server: str) -> None:
    task_id = submit(server, [f"{file_server}/object.png"])
    with server.client() as c:
        r = c.get(f"/api/v1/tasks/{task_id}/", params={"audio": "true", "duration": "5", "ratio": "16:9"})
    assert r.status_code == 200 and r.json()["output"]["task_id"] == task_id
    server.wait(task_id)


def test_list_filters_and_pages(server: LiveServer, file_server: str) -> None:
    ids = [submit(server, [f"{file_server}/object.png"], key=OTHER_KEY) for _ in range(3)]
    for i in ids:
        server.wait(i, key=OTHER_KEY)
    with server.client(OTHER_KEY) as c:
        page = c.get("/api/v1/tasks", params={"page_no": 1, "page_size": 2, "status": "SUCCEEDED",
                                              "model_name": "wan2.6-r2v-flash"}).json()
        assert page["total"] >= 3 and len(page["data"]) == 2 and page["page_size"] == 2
        assert page["total_page"] == (page["total"] + 1) // 2
        assert all(t["status"] == "SUCCEEDED" for t in page["data"])
        none = c.get("/api/v1/tasks", params={"model_name": "wan2.7-r2v"}).json()
        assert none["total"] == 0
        future = c.get("/api/v1/tasks", params={"start_time": "20990101000000"}).json()
        assert future["total"] == 0
        bad = c.get("/api/v1/tasks", params={"page_size": 0})
        assert bad.status_code == 400 and bad.json()["code"] == "InvalidParameter"
        bad = c.get("/api/v1/tasks", params={"start_time": "yesterday"})
        assert bad.status_code == 400 and "start_time" in bad.json()["message"]


def test_signed_urls_expire_and_cannot_be_forged(make_server: Any, file_server: str) -> None:
    srv = make_server(url_ttl_seconds=2)
    task = srv.wait(submit(srv, [f"{file_server}/object.png"]))
    url = task["output"]["video_url"]
    assert httpx.get(url).status_code == 200
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert httpx.get(forged).status_code == 404
    longer = url.replace("Expires=", "Expires=9")
    assert httpx.get(longer).status_code == 404
    time.sleep(3)
    assert httpx.get(url).status_code == 403


def test_retention_expires_tasks_and_files(make_server: Any, file_server: str) -> None:
    retention = 10  # from the submit: room for the render on a busy machine before the URL is checked
    srv = make_server(retention_seconds=retention)
    submitted = time.monotonic()
    task_id = submit(srv, [f"{file_server}/object.png"])
    task = srv.wait(task_id)
    url = task["output"]["video_url"]
    assert httpx.get(url).status_code == 200
    time.sleep(max(0.0, submitted + retention + 0.5 - time.monotonic()))
    with srv.client() as c:
        assert c.get(f"/api/v1/tasks/{task_id}").json()["output"]["task_status"] == "UNKNOWN"
    assert httpx.get(url).status_code in (403, 404)
    assert not list((srv.settings.data_dir / "objects" / "outputs").glob("*.mp4"))


def test_failures_are_task_data_and_bill_nothing(make_server: Any, file_server: str) -> None:
    srv = make_server()
    cases = {
        f"{file_server}/missing.png": "BadRequest.InputDownloadFailed",
        f"{file_server}/tiny.png": "InvalidParameter",
        f"{file_server}/notanimage.png": "UnsupportedFileFormat",
        "http://no-such-host.invalid/a.png": "BadRequest.InputDownloadFailed",
    }
    ids = {submit(srv, [url]): code for url, code in cases.items()}
    for task_id, code in ids.items():
        out = srv.wait(task_id)["output"]
        assert out["task_status"] == "FAILED" and out["code"] == code, out
        assert out["message"] and out["end_time"]
        assert "video_url" not in out
    with srv.client() as c:
        ledger = c.get("/api/v1/openr2v/ledger").json()["output"]
    assert ledger == {"tasks": 0, "billed_seconds": 0.0, "cost_usd": 0.0}


def test_ledger_matches_usage(make_server: Any, file_server: str) -> None:
    srv = make_server()
    ids = [submit(srv, [f"{file_server}/person1.mp4", f"{file_server}/object.png"]),
           submit(srv, [f"{file_server}/person2.mp4"], audio=False)]
    usages = [srv.wait(i)["usage"] for i in ids]
    with srv.client() as c:
        ledger = c.get("/api/v1/openr2v/ledger").json()["output"]
    assert ledger["tasks"] == 2
    assert abs(ledger["billed_seconds"] - sum(u["duration"] for u in usages)) < 1e-6
    assert usages[0]["duration"] == 2 + 2.5 and usages[1]["duration"] == 2 + 3.0


def test_rate_and_concurrency_caps(make_server: Any, file_server: str) -> None:
    srv = make_server(submit_rate_per_second=0.01, submit_burst=2)
    submit(srv, [f"{file_server}/object.png"])
    submit(srv, [f"{file_server}/object.png"])
    with srv.client() as c:
        r = c.post(SUBMIT, json=body([f"{file_server}/object.png"]), headers=ASYNC)
    assert r.status_code == 429 and r.json()["code"] == "Throttling.RateQuota"
    capped = make_server(max_concurrent_tasks=1, render_threads=0)  # no workers: the first task stays PENDING
    submit(capped, [f"{file_server}/object.png"])
    with capped.client() as c:
        r = c.post(SUBMIT, json=body([f"{file_server}/object.png"]), headers=ASYNC)
    assert r.status_code == 429 and r.json()["code"] == "Throttling.RateQuota"
    assert "at most 1" in r.json()["message"]


def test_healthz(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"


def test_plan_and_actual_prompt(server: LiveServer, file_server: str) -> None:
    prompt = "character1 says to character2: 'hi there'. character2 replies: 'hello'."
    with server.client() as c:
        ids = {}
        for extend in (True, False):
            b = body([f"{file_server}/object.png", f"{file_server}/face.webp"], shot_type="multi",
                     prompt_extend=extend, seed=5, duration=4)
            b["input"]["prompt"] = prompt
            ids[extend] = c.post(SUBMIT, json=b, headers=ASYNC).json()["output"]["task_id"]
        plan = c.get(f"/api/v1/tasks/{ids[True]}/plan").json()["output"]["plan"]
    assert [s["focus"] for s in plan["shots"]] == ["character1", "character2"]
    assert plan["shots"][0]["lines"][0]["text"] == "hi there"
    extended = server.wait(ids[True])["output"]
    plain = server.wait(ids[False])["output"]
    assert extended["actual_prompt"].startswith("Shot 1 [0-") and extended["orig_prompt"] == prompt
    assert plain["actual_prompt"] == prompt
    with server.client() as c:
        render = c.get(f"/api/v1/tasks/{ids[True]}/plan").json()["output"]["render"]
    assert render and render.get("engine") == "compositor"
