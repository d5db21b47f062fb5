"""Isolation between API keys, signed URLs, and retention, through the real HTTP API of every dialect.

Key A (KEY) owns a rendered task, a PENDING task and an upload; key B (OTHER_KEY, same region)
must not read, list, cancel, delete or reuse any of them in any dialect, and gets the answer an
unknown id gets (nothing tells B the id exists). Signed ``/files`` URLs cannot be forged or
extended. After retention the task reads UNKNOWN and its MP4 is gone from the data directory,
deleted by the janitor (the filesystem is checked before any request could trigger the purge).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.helpers import OTHER_KEY, LiveServer, run_server
from tests.helpers import test_settings as settings_for

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
ASYNC = {"X-DashScope-Async": "enable"}


def submit_body(refs: list[str]) -> dict[str, Any]:
    return {"model": "wan2.6-r2v-flash", "input": {"prompt": "character1 waves.", "reference_urls": refs},
            "parameters": {"size": "1280*720", "duration": 2, "audio": False}}


def submit(c: httpx.Client, refs: list[str], headers: dict[str, str] | None = None) -> str:
    r = c.post(SUBMIT, json=submit_body(refs), headers={**ASYNC, **(headers or {})})
    assert r.status_code == 200, r.text
    return str(r.json()["output"]["task_id"])


def upload(c: httpx.Client, data: bytes, name: str) -> str:
    """The DashScope temporary upload (getPolicy, then the OSS form POST); the oss:// URL."""
    policy = c.get("/api/v1/uploads", params={"action": "getPolicy", "model": "wan2.6-r2v-flash"}).json()["data"]
    key = f"{policy['upload_dir']}/{name}"
    r = httpx.post(policy["upload_host"], data={
        "OSSAccessKeyId": policy["oss_access_key_id"], "Signature": policy["signature"], "policy": policy["policy"],
        "key": key, "x-oss-object-acl": policy["x_oss_object_acl"],
        "x-oss-forbid-overwrite": policy["x_oss_forbid_overwrite"], "success_action_status": "200"},
        files={"file": (name, data, "image/png")}, timeout=30)
    assert r.status_code == 200, r.text
    return f"oss://{key}"


@dataclass
class World:
    server: LiveServer
    done: str  # A's SUCCEEDED task
    video_url: str
    upload: str  # A's oss:// upload


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, file_server: str, media_dir: Path) -> Iterator[World]:
    with run_server(settings_for(tmp_path_factory.mktemp("iso"), x264_preset="ultrafast")) as s, s.client() as a:
        oss = upload(a, (media_dir / "object.png").read_bytes(), "object.png")
        done = submit(a, [oss], {"X-DashScope-OssResourceResolve": "enable"})
        out = s.wait(done)["output"]
        assert out["task_status"] == "SUCCEEDED", out
        yield World(s, done, out["video_url"], oss)


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory, file_server: str) -> Iterator[tuple[LiveServer, str]]:
    """A server with no workers, so A's task stays PENDING (cancelable) for as long as the test needs."""
    with run_server(settings_for(tmp_path_factory.mktemp("idle"), render_threads=0)) as s, s.client() as a:
        yield s, submit(a, [f"{file_server}/object.png"])


def as_b(s: LiveServer) -> httpx.Client:
    return s.client(OTHER_KEY)


# -- another key's task: exactly what an unknown id gets --------------------------------------


def test_b_cannot_read_a_task_of_a_in_any_dialect(world: World) -> None:
    task, unknown = world.done, str(uuid.uuid4())
    with as_b(world.server) as b, world.server.client() as a:
        for tid in (task, unknown):
            dashscope = b.get(f"/api/v1/tasks/{tid}")
            aggregator = b.get(f"/model/v1/generation/{tid}")
            gateway = b.get(f"/v1/video/generations/{tid}")
            openai = b.get(f"/v1/videos/{tid}")
            if tid == task:
                assert dashscope.status_code == 404 and dashscope.json()["code"] == "NotFound", dashscope.text
            else:  # DashScope reads an unknown id as UNKNOWN (200): another key's task is refused outright
                assert dashscope.json()["output"]["task_status"] == "UNKNOWN", dashscope.text
            assert aggregator.status_code == 404 and aggregator.json()["error"]["code"] == "001028098", aggregator.text
            assert gateway.status_code == 400 and gateway.json()["code"] == "task_not_exist", gateway.text
            assert openai.status_code == 404 and openai.json()["error"]["code"] == "not_found", openai.text
            foreign = (f"/api/v1/tasks/{tid}/plan", f"/api/v1/tasks/{tid}/events", f"/v1/videos/{tid}/content",
                       f"/v1/videos/{tid}/content?variant=thumbnail")
            for path in foreign if tid == task else ():
                r = b.get(path)
                assert r.status_code == 404, (path, r.status_code, r.text[:200])
        # A, the owner, reads it everywhere (the control: the ids above are real).
        assert a.get(f"/api/v1/tasks/{task}").json()["output"]["task_status"] == "SUCCEEDED"
        assert a.get(f"/model/v1/generation/{task}").json()["status"] == "completed"
        assert a.get(f"/v1/video/generations/{task}").json()["data"]["status"] == "SUCCESS"
        assert a.get(f"/v1/videos/{task}").json()["status"] == "completed"
        assert a.get(f"/v1/videos/{task}/content").status_code == 200


def test_b_cannot_list_the_tasks_or_bills_of_a(world: World) -> None:
    with as_b(world.server) as b, world.server.client() as a:
        b_list = b.get("/api/v1/tasks", params={"page_size": 100}).json()
        b_videos = b.get("/v1/videos", params={"limit": 100}).json()
        b_ledger = b.get("/api/v1/openr2v/ledger").text
        assert world.done not in str(b_list) and world.done not in str(b_videos) and world.done not in b_ledger
        assert world.done in str(a.get("/api/v1/tasks", params={"page_size": 100}).json())
        assert world.done in str(a.get("/v1/videos", params={"limit": 100}).json())
        # Filters and paging cannot reach across keys either.
        for params in ({"status": "SUCCEEDED"}, {"model_name": "wan2.6-r2v-flash"}, {"page_no": 2, "page_size": 1}):
            assert world.done not in b.get("/api/v1/tasks", params=params).text
        # A cursor naming A's video answers B exactly as a cursor naming no video at all.
        unknown = str(uuid.uuid4())
        after_a = b.get("/v1/videos", params={"after": world.done})
        after_unknown = b.get("/v1/videos", params={"after": unknown})
        assert after_a.status_code == after_unknown.status_code
        assert after_a.json()["error"] == {**after_unknown.json()["error"],
                                           "message": after_unknown.json()["error"]["message"].replace(unknown,
                                                                                                       world.done)}


def test_b_cannot_cancel_or_delete_a_task_of_a(world: World, idle: tuple[LiveServer, str]) -> None:
    s, pending = idle
    with as_b(s) as b, s.client() as a:
        r = b.post(f"/api/v1/tasks/{pending}/cancel")
        assert r.status_code == 404 and r.json()["code"] == "NotFound", r.text
        r = b.delete(f"/v1/videos/{pending}")
        assert r.status_code == 404, r.text
        assert a.get(f"/api/v1/tasks/{pending}").json()["output"]["task_status"] == "PENDING"
        assert a.post(f"/api/v1/tasks/{pending}/cancel").status_code == 200  # the owner can
        assert a.get(f"/api/v1/tasks/{pending}").json()["output"]["task_status"] == "CANCELED"
    with as_b(world.server) as b, world.server.client() as a:
        assert b.delete(f"/v1/videos/{world.done}").status_code == 404
        assert b.post(f"/api/v1/tasks/{world.done}/cancel").status_code == 404
        assert a.get(f"/api/v1/tasks/{world.done}").json()["output"]["task_status"] == "SUCCEEDED"
        assert httpx.get(world.video_url).status_code == 200  # B's attempts left the file alone


def test_b_cannot_use_or_read_an_upload_of_a(world: World) -> None:
    key = world.upload.removeprefix("oss://")
    with as_b(world.server) as b:
        r = b.post(SUBMIT, json=submit_body([world.upload]),
                   headers={**ASYNC, "X-DashScope-OssResourceResolve": "enable"})
        assert r.status_code == 400 and r.json()["code"] == "InvalidURL", r.text
        assert "input.reference_urls[0]" in r.json()["message"]
        # Other dialects take no oss:// URL from a client at all.
        r = b.post("/model/v1/generation", json={"model": "wan26_r2v", "input": {
            "prompt": "character1 waves.", "reference_urls": [world.upload]}})
        assert r.status_code == 400 and r.json()["error"]["code"] == "001028004", r.text
        r = b.post("/v1/videos", json={"model": "wan2.6-r2v-flash", "prompt": "character1 waves.",
                                       "references": [world.upload]})
        assert r.status_code == 400, r.text
        # The estimate is lenient (it answers while the user types) and measures only the caller's own
        # uploads: for B, A's upload is what a key naming no upload at all is, a guess from its name.
        def estimate(url: str) -> httpx.Response:
            return b.post("/api/v1/openr2v/estimate", json={"model": "wan2.6-r2v-flash", "input": {
                "prompt": "character1 waves.", "reference_urls": [url]}, "parameters": {"size": "1280*720"}},
                headers={"X-DashScope-OssResourceResolve": "enable"})

        est, unknown = estimate(world.upload), estimate("oss://nobody/object.png")
        assert est.status_code == 200, est.text
        assert est.json()["output"] == unknown.json()["output"]
        # The stored bytes are not served without a signature, and no signature of them exists.
        for query in ("", "?Expires=9999999999&Signature=" + "0" * 64):
            assert httpx.get(f"{world.server.url}/files/uploads/{key}{query}").status_code == 404


# -- signed URLs ------------------------------------------------------------------------------


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


def test_signed_urls_cannot_be_forged_or_extended(world: World) -> None:
    url = world.video_url
    assert httpx.get(url).status_code == 200
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    sig, expires = q["Signature"], int(q["Expires"])
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    path = urlsplit(url).path
    forged = {
        "signature-flipped": _with(url, Signature=flipped),
        "signature-upper": _with(url, Signature=sig.upper()),
        "signature-truncated": _with(url, Signature=sig[:32]),
        "signature-empty": _with(url, Signature=""),
        "extended-an-hour": _with(url, Expires=str(expires + 3600)),
        "extended-forever": _with(url, Expires="99999999999999999999"),
        "expires-negative": _with(url, Expires="-1"),
        "expires-not-a-number": _with(url, Expires="tomorrow"),
        "no-query": url.split("?")[0],
        "other-key": url.replace(path, "/files/outputs/" + str(uuid.uuid4()) + ".mp4"),
        "traversal": url.replace(path, "/files/outputs/..%2Fsecret_key"),
        "traversal-plain": url.replace(path, "/files/../secret_key"),
        "other-object-kind": url.replace(path, path.replace("outputs/", "uploads/")),
    }
    wrong = {name: r.status_code for name, u in forged.items() if (r := httpx.get(u)).status_code not in (403, 404)}
    assert not wrong, wrong
    # None of them leaks the server's secret or the file.
    for u in forged.values():
        r = httpx.get(u)
        assert b"ftyp" not in r.content[:64] and len(r.content) < 4096


# -- retention --------------------------------------------------------------------------------


def test_expired_outputs_are_gone_from_disk(tmp_path: Path, media_dir: Path) -> None:
    """Retention 6 s, URL lifetime 2 s: the URL expires (403), then the janitor deletes the task and its
    MP4 on its own (the file is watched on disk with no request made), then every dialect reads it gone."""
    settings = settings_for(tmp_path / "ret", retention_seconds=6, url_ttl_seconds=2, x264_preset="ultrafast")
    with run_server(settings) as s, s.client() as a:
        oss = upload(a, (media_dir / "object.png").read_bytes(), "object.png")
        task = submit(a, [oss], {"X-DashScope-OssResourceResolve": "enable"})
        out = s.wait(task, timeout=30)["output"]
        assert out["task_status"] == "SUCCEEDED", out
        outputs = list((settings.data_dir / "objects" / "outputs").glob(f"{task}*.mp4"))
        assert len(outputs) == 1 and outputs[0].stat().st_size > 0, outputs
        url = out["video_url"]
        assert httpx.get(url).status_code == 200
        expires = int(parse_qs(urlsplit(url).query)["Expires"][0])
        time.sleep(max(0.0, expires - time.time()) + 1.1)
        assert httpx.get(url).status_code == 403  # expired, and not extendable (see above)
        deadline = time.time() + 15
        while outputs[0].exists() and time.time() < deadline:
            time.sleep(0.2)
        assert not outputs[0].exists(), "the janitor left the expired output on disk"
        assert not list((settings.data_dir / "objects" / "outputs").glob(f"{task}*")), "leftovers of the expired output"
        assert a.get(f"/api/v1/tasks/{task}").json()["output"]["task_status"] == "UNKNOWN"
        assert a.get(f"/v1/videos/{task}").status_code == 404
        assert a.get(f"/model/v1/generation/{task}").status_code == 404
        assert a.get(f"/v1/video/generations/{task}").json()["code"] == "task_not_exist"
        assert task not in a.get("/api/v1/tasks").text
        assert httpx.get(url).status_code in (403, 404)
        # Even a genuine, fresh signature finds nothing: the bytes are gone, not merely hidden.
        storage = s.app.state.runtime.storage  # type: ignore[attr-defined]
        fresh = storage.url(f"outputs/{outputs[0].name}", int(time.time()) + 3600, s.url)
        assert httpx.get(fresh).status_code == 404
