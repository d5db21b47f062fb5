"""Per-key quotas over HTTP (docs/quotas.md): reservations at submit in all four dialects, each refusing in
its own format; failed and canceled tasks consume nothing; usage at the measured bill; the admin's
limits; concurrent submits; and everything surviving a restart."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import LiveServer, run_server
from tests.helpers import test_settings as settings_for

DS, AG, GW, OA = "sk-quota-ds", "sk-quota-ag", "sk-quota-gw", "sk-quota-oa"
ADMIN = "adm-secret"
KEYS = ",".join(f"{k}:intl" for k in (DS, AG, GW, OA))
PNG = "https://example.com/face.png"
MP4 = "https://example.com/clip.mp4"

# (dialect, key, path, body, headers): a 5 s task of each dialect. The gateway takes only reference videos,
# whose length is unknown at submit: each of its tasks reserves the 5 s input cap too (10 s in all).
SUBMITS: dict[str, tuple[str, str, dict[str, Any], dict[str, str]]] = {
    "dashscope": (DS, "/api/v1/services/aigc/video-generation/video-synthesis",
                  {"model": "wan2.6-r2v-flash", "input": {"prompt": "character1 waves.", "reference_urls": [PNG]},
                   "parameters": {"size": "1280*720", "duration": 5}}, {"X-DashScope-Async": "enable"}),
    "aggregator": (AG, "/model/v1/generation",
                   {"model": "wan26_r2v", "input": {"prompt": "character1 waves.", "reference_urls": [PNG]},
                    "parameters": {"size": "1280*720", "duration": 5}}, {}),
    "gateway": (GW, "/v1/video/generations",
                {"prompt": "character1 waves.", "model": "wan2.6-r2v",
                 "metadata": {"input": {"reference_video_urls": [MP4]}, "parameters": {"size": "1280*720",
                                                                                       "duration": 5}}}, {}),
    "openai": (OA, "/v1/videos", {"model": "wan2.6-r2v-flash", "prompt": "character1 waves.", "seconds": "5",
                                  "size": "1280x720", "references": [PNG]}, {}),
}
QUOTAS = {DS: {"seconds_total": 10}, AG: {"seconds_total": 10}, GW: {"seconds_total": 20},
          OA: {"seconds_total": 10}}


def _submit(srv: LiveServer, dialect: str, **changes: Any) -> httpx.Response:
    key, path, body, headers = SUBMITS[dialect]
    with srv.client(key) as c:
        return c.post(path, json={**body, **changes}, headers=headers)


def _quota(srv: LiveServer, key: str) -> dict[str, Any]:
    with srv.client(key) as c:
        r = c.get("/api/v1/openr2v/quota")
    assert r.status_code == 200, r.text
    return r.json()["output"]  # type: ignore[no-any-return]


def _task_id(dialect: str, body: dict[str, Any]) -> str:
    return body["output"]["task_id"] if dialect == "dashscope" else body["id"]  # type: ignore[no-any-return]


def _assert_refusal(dialect: str, r: httpx.Response) -> None:
    body = r.json()
    if dialect == "dashscope":
        assert r.status_code == 400 and body["code"] == "Arrearage", r.text
        assert body["message"].startswith("Access denied, please make sure your account is in good standing.")
        assert "total limit of 10 billed seconds" in body["message"] and body["request_id"]
    elif dialect == "aggregator":
        assert r.status_code == 400 and body["error"]["code"] == "001028099", r.text
        assert "total limit of 10 billed seconds" in body["error"]["message"]
    elif dialect == "gateway":
        assert r.status_code == 403 and body["code"] == "insufficient_user_quota" and body["data"] is None, r.text
        assert "total limit of 20 billed seconds" in body["message"]
    else:
        assert r.status_code == 429 and r.headers["x-should-retry"] == "false", r.text
        err = body["error"]
        assert err["type"] == "insufficient_quota" and err["code"] == "insufficient_quota", r.text
        assert err["message"].startswith("You exceeded your current quota") and "total limit of 10" in err["message"]


@pytest.fixture
def quota_server(tmp_path: Path) -> Any:
    with run_server(settings_for(tmp_path / "d", api_keys=KEYS, quotas=json.dumps(QUOTAS), render_threads=0,
                                  admin_key=ADMIN)) as srv:
        yield srv


@pytest.mark.parametrize("dialect", list(SUBMITS))
def test_two_tasks_then_refusal_in_every_dialect(quota_server: LiveServer, dialect: str) -> None:
    key = SUBMITS[dialect][0]
    per_task = 10 if dialect == "gateway" else 5
    for _ in range(2):
        r = _submit(quota_server, dialect)
        assert r.status_code == 200, r.text
    _assert_refusal(dialect, _submit(quota_server, dialect))
    total = _quota(quota_server, key)["windows"]["total"]
    assert total["reserved_seconds"] == 2 * per_task and total["billed_seconds"] == 0
    assert total["seconds_limit"] == 2 * per_task and total["seconds_remaining"] == 0
    # The refused submit created no task.
    with quota_server.client(DS) as c:
        tasks = c.get("/api/v1/tasks").json()
    assert dialect != "dashscope" or tasks["total"] == 2


def test_a_canceled_task_gives_its_reservation_back(quota_server: LiveServer) -> None:
    ids = [_task_id("dashscope", _submit(quota_server, "dashscope").json()) for _ in range(2)]
    assert _submit(quota_server, "dashscope").status_code == 400
    with quota_server.client(DS) as c:
        assert c.post(f"/api/v1/tasks/{ids[0]}/cancel").status_code == 200
    assert _quota(quota_server, DS)["windows"]["total"]["reserved_seconds"] == 5
    assert _submit(quota_server, "dashscope").status_code == 200
    # Deleting an unfinished video (/v1/videos) gives it back too.
    oa = _task_id("openai", _submit(quota_server, "openai").json())
    with quota_server.client(OA) as c:
        assert c.delete(f"/v1/videos/{oa}").status_code == 200
    assert _quota(quota_server, OA)["windows"]["total"]["reserved_seconds"] == 0


def test_concurrent_submits_cannot_overshoot(quota_server: LiveServer) -> None:
    codes: list[int] = []

    def one() -> None:
        codes.append(_submit(quota_server, "aggregator").status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 200] + [400] * 6
    assert _quota(quota_server, AG)["windows"]["total"]["reserved_seconds"] == 10


def test_failed_task_leaves_the_budget_untouched(tmp_path: Path, file_server: str) -> None:
    quotas = {DS: {"seconds_total": 10, "free_seconds": 3}}
    with run_server(settings_for(tmp_path / "d", api_keys=KEYS, quotas=json.dumps(quotas))) as srv:
        r = _submit(srv, "dashscope", input={"prompt": "character1 waves.",
                                             "reference_urls": [f"{file_server}/missing.png"]})
        assert r.status_code == 200, r.text
        done = srv.wait(_task_id("dashscope", r.json()), key=DS)
        assert done["output"]["task_status"] == "FAILED"
        q = _quota(srv, DS)
        assert q["windows"]["total"] | {"since": None} == q["windows"]["total"] | {
            "since": None, "billed_seconds": 0, "reserved_seconds": 0, "cost_usd": 0, "reserved_cost_usd": 0,
            "seconds_remaining": 10}
        assert q["free"] == {"seconds": 3, "used": 0, "reserved": 0, "remaining": 3}


def test_a_succeeded_task_is_used_at_its_bill_free_seconds_first(tmp_path: Path, file_server: str) -> None:
    quotas = {"default": {"free_seconds": 1, "cost_usd_per_day": 1}}
    with run_server(settings_for(tmp_path / "d", api_keys=KEYS, quotas=json.dumps(quotas))) as srv:
        r = _submit(srv, "dashscope", input={"prompt": "character1 waves.",
                                             "reference_urls": [f"{file_server}/object.png"]},
                    parameters={"size": "1280*720", "duration": 2, "audio": False})
        assert r.status_code == 200, r.text
        done = srv.wait(_task_id("dashscope", r.json()), key=DS, timeout=300)
        assert done["output"]["task_status"] == "SUCCEEDED", done
        q = _quota(srv, DS)
        assert q["source"] == "default" and q["free"] == {"seconds": 1, "used": 1, "reserved": 0, "remaining": 0}
        day = q["windows"]["day"]
        # wan2.6-r2v-flash, 720P, silent: 0.025 USD/s; 2 s billed, 1 of them free.
        assert day["billed_seconds"] == 2 and day["reserved_seconds"] == 0 and day["cost_usd"] == 0.025
        assert day["cost_usd_limit"] == 1 and day["cost_usd_remaining"] == 0.975
        with srv.client(DS) as c:
            assert c.get("/api/v1/openr2v/ledger").json()["output"]["billed_seconds"] == 2


def test_admin_limits_and_usage_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "d"
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with run_server(settings_for(data, api_keys=KEYS, render_threads=0, admin_key=ADMIN)) as srv:
        assert _submit(srv, "dashscope").status_code == 200  # no limits yet: recorded only
        with srv.client(DS) as c:
            assert c.get("/api/v1/openr2v/admin/quotas", headers={"Authorization": f"Bearer {DS}"}).status_code == 401
            r = c.put(f"/api/v1/openr2v/admin/quotas/{DS}", json={"seconds_total": 10}, headers=admin)
            assert r.status_code == 200 and r.json()["output"]["source"] == "admin", r.text
            bad = c.put(f"/api/v1/openr2v/admin/quotas/{DS}", json={"seconds_total": -1}, headers=admin)
            assert bad.status_code == 400 and "seconds_total must be a number >= 0" in bad.json()["message"]
            assert c.get("/api/v1/openr2v/admin/quotas/sk-unknown", headers=admin).status_code == 404
        assert _submit(srv, "dashscope").status_code == 200
        _assert_refusal("dashscope", _submit(srv, "dashscope"))
    with run_server(settings_for(data, api_keys=KEYS, render_threads=0, admin_key=ADMIN)) as srv:
        q = _quota(srv, DS)
        assert q["source"] == "admin" and q["windows"]["total"]["reserved_seconds"] == 10
        _assert_refusal("dashscope", _submit(srv, "dashscope"))
        with srv.client(DS) as c:
            listed = c.get("/api/v1/openr2v/admin/quotas", headers=admin).json()["output"]["keys"]
            assert {k["key"] for k in listed} == {"sk-qu..."} and len(listed) == 4
            r = c.delete(f"/api/v1/openr2v/admin/quotas/{DS}", headers=admin)
            assert r.status_code == 200 and r.json()["output"]["source"] == "none"
        assert _submit(srv, "dashscope").status_code == 200


def test_admin_endpoints_are_off_without_an_admin_key(make_server: Any) -> None:
    srv = make_server(api_keys=KEYS, render_threads=0)
    with srv.client(DS) as c:
        r = c.get("/api/v1/openr2v/admin/quotas", headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 401 and r.json()["code"] == "InvalidApiKey" and "OPENR2V_ADMIN_KEY" in r.json()["message"]
