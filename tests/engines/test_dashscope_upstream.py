"""Upstream mode over HTTP: server A (engine ``dashscope``) in front of server B (an openr2v).

The official ``dashscope`` SDK talks to A; A uploads, submits, polls and copies from B with its own
key (OTHER_KEY at B). B renders with the compositor where the video matters, and with small test
engines (tests/engines/upstream_engines.py) where only the protocol or the errors do.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dashscope
import httpx
import pytest
from dashscope import VideoSynthesis

from tests.engines.upstream_engines import FAILURE_MESSAGE
from tests.helpers import KEY, OTHER_KEY, LiveServer, assert_contract_mp4

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
TINY = "tests.engines.upstream_engines:tiny_engine"
FAILING = "tests.engines.upstream_engines:failing_engine"


@pytest.fixture
def sdk_global() -> Iterator[None]:
    saved = dashscope.base_http_api_url, dashscope.api_key
    yield
    dashscope.base_http_api_url, dashscope.api_key = saved


def submit(server: LiveServer, body: dict[str, Any], key: str = KEY) -> str:
    with server.client(key) as c:
        r = c.post(SUBMIT, json=body, headers={"X-DashScope-Async": "enable"})
    assert r.status_code == 200, r.text
    return str(r.json()["output"]["task_id"])


def upstream_tasks(b: LiveServer, key: str = OTHER_KEY) -> list[dict[str, Any]]:
    """B's tasks of the front server's key (what A created upstream)."""
    with b.client(key) as c:
        body = c.get("/api/v1/tasks", params={"page_size": 100}).json()
    return list(body["tasks"])


def ledger(server: LiveServer, key: str) -> dict[str, Any]:
    with server.client(key) as c:
        return dict(c.get("/api/v1/openr2v/ledger").json()["output"])


def flash(refs: list[str], **parameters: Any) -> dict[str, Any]:
    return {"model": "wan2.6-r2v-flash", "input": {"prompt": "character1 waves.", "reference_urls": refs},
            "parameters": {"size": "1280*720", "duration": 2, **parameters}}


def sdk_two_references(a: LiveServer, media_dir: Path, file_server: str) -> tuple[Any, bytes]:
    """The official SDK at front server ``a``: a local file (uploaded) and a URL, one line of dialogue; the
    SUCCEEDED answer and its video, checked against the contract."""
    dashscope.base_http_api_url = a.api
    rsp = VideoSynthesis.call(api_key=KEY, model="wan2.6-r2v-flash",
                              prompt="character1 says to character2: 'We made it.' Close-up of character2.",
                              reference_urls=[f"file://{media_dir / 'person1.mp4'}", f"{file_server}/object.png"],
                              size="1280*720", duration=2, audio=True, seed=7, prompt_extend=False, watermark=False)
    assert rsp.status_code == 200 and rsp.output.task_status == "SUCCEEDED", rsp
    video = httpx.get(rsp.output.video_url, timeout=60).content
    assert_contract_mp4(video, 1280, 720, 2, audio=True)
    return rsp, video


def test_official_sdk_through_upstream_mode_gets_the_upstream_video(
        make_server: Any, make_front: Any, media_dir: Path, file_server: str, sdk_global: None) -> None:
    b = make_server()  # the compositor
    a = make_front(b)
    rsp, video = sdk_two_references(a, media_dir, file_server)

    # Exactly one upstream task, and A serves its bytes unchanged.
    [up] = upstream_tasks(b)
    assert up["task_status"] == "SUCCEEDED"
    assert httpx.get(up["video_url"], timeout=60).content == video
    # Both references travelled as uploads of A's copies, with the task's own seed and size.
    b_task = b.app.state.runtime.store.get(up["task_id"])  # type: ignore[attr-defined]
    assert [r.source[:6] for r in b_task.request.references] == ["oss://", "oss://"]
    assert (b_task.request.seed, b_task.request.size, b_task.request.duration) == (7, (1280, 720), 2)
    assert b_task.request.prompt == "character1 says to character2: 'We made it.' Close-up of character2."

    # B's usage is A's usage, and A bills B's seconds (at A's own prices, the same table here).
    with b.client(OTHER_KEY) as c:
        b_usage = c.get(f"/api/v1/tasks/{up['task_id']}").json()["usage"]
    with a.client() as c:
        a_usage = c.get(f"/api/v1/tasks/{rsp.output.task_id}").json()["usage"]
    assert a_usage == b_usage and a_usage["duration"] == b_usage["duration"] > 2
    assert ledger(a, KEY)["billed_seconds"] == ledger(b, OTHER_KEY)["billed_seconds"] == b_usage["duration"]
    assert ledger(a, KEY)["cost_usd"] == ledger(b, OTHER_KEY)["cost_usd"] > 0


def test_wan27_media_travels_in_its_own_protocol(make_server: Any, make_front: Any, media_dir: Path,
                                                   file_server: str) -> None:
    b = make_server(engine=TINY)
    a = make_front(b)
    task_id = submit(a, {"model": "wan2.7-r2v", "input": {
        "prompt": "Video 1 says to Image 1: 'hi'.",
        "media": [{"type": "reference_video", "url": f"{file_server}/person2.mp4",
                   "reference_voice": f"{file_server}/voice.wav"},
                  {"type": "first_frame", "url": f"{file_server}/frame.bmp"},
                  {"type": "reference_image", "url": f"{file_server}/face.webp"}]},
        "parameters": {"resolution": "720P", "ratio": "1:1", "duration": 3, "seed": 11}})
    body = a.wait(task_id)
    assert body["output"]["task_status"] == "SUCCEEDED", body

    [up] = upstream_tasks(b)
    req = b.app.state.runtime.store.get(up["task_id"]).request  # type: ignore[attr-defined]
    assert req.model == "wan2.7-r2v"
    assert [(r.kind, r.label) for r in req.references] == [("video", "Video 1"), ("image", "Image 1")]
    assert req.references[0].voice is not None and req.references[0].voice.startswith("oss://")
    assert req.first_frame is not None and req.first_frame.startswith("oss://")
    assert (req.resolution, req.ratio, req.duration, req.seed) == ("720P", "1:1", 3, 11)
    with b.client(OTHER_KEY) as c:
        assert body["usage"] == c.get(f"/api/v1/tasks/{up['task_id']}").json()["usage"]


def test_what_the_front_sees_it_refuses_at_submit(make_server: Any, make_front: Any, file_server: str) -> None:
    b = make_server(engine=TINY)
    a = make_front(b)
    with a.client() as c:
        r = c.post(SUBMIT, json=flash([f"{file_server}/object.png"], duration=11),
                   headers={"X-DashScope-Async": "enable"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameter", r.text
    assert "parameters.duration" in r.json()["message"]
    assert upstream_tasks(b) == []


def test_what_only_the_upstream_sees_fails_the_task_with_its_code(make_server: Any, make_front: Any,
                                                                     file_server: str) -> None:
    # B stands for the us region, where wan2.6-r2v lasts 5 or 10 s; A (intl) accepts 3 s.
    b = make_server(engine=TINY, region="us", api_keys=f"{OTHER_KEY}:us")
    a = make_front(b)
    task_id = submit(a, {"model": "wan2.6-r2v", "input": {"prompt": "character1 waves.",
                                                          "reference_urls": [f"{file_server}/object.png"]},
                         "parameters": {"size": "1280*720", "duration": 3}})
    out = a.wait(task_id)["output"]
    assert out["task_status"] == "FAILED", out
    assert out["code"] == "InvalidParameter"
    assert out["message"] == ("parameters.duration 3 is not supported by wan2.6-r2v in this region; use 5 or 10.")
    assert upstream_tasks(b) == []
    assert ledger(a, KEY)["tasks"] == 0


def test_a_bad_upstream_key_fails_the_task(make_server: Any, make_front: Any, file_server: str) -> None:
    b = make_server(engine=TINY)
    a = make_front(b, key="sk-not-a-key")
    out = a.wait(submit(a, flash([f"{file_server}/object.png"])))["output"]
    assert out["task_status"] == "FAILED", out
    assert out["code"] == "InvalidApiKey"
    assert out["message"].startswith("The upstream service refused this server's credentials: ")


def test_an_upstream_failure_mid_task_surfaces_through_the_sdk(make_server: Any, make_front: Any,
                                                                file_server: str, sdk_global: None) -> None:
    b = make_server(engine=FAILING)
    a = make_front(b)
    dashscope.base_http_api_url = a.api
    rsp = VideoSynthesis.call(api_key=KEY, model="wan2.6-r2v-flash", prompt="character1 waves.",
                              reference_urls=[f"{file_server}/object.png"], size="1280*720", duration=2)
    assert rsp.status_code == 200 and rsp.output.task_status == "FAILED", rsp
    assert (rsp.output.code, rsp.output.message) == ("DataInspectionFailed", FAILURE_MESSAGE)
    [up] = upstream_tasks(b)
    assert up["task_status"] == "FAILED"
    assert ledger(a, KEY)["tasks"] == 0  # failed tasks bill nothing


def test_a_throttled_submit_is_retried_then_succeeds(make_server: Any, make_front: Any, file_server: str) -> None:
    # One submit a second at B: A's two workers submit at once, the second is refused (429) and retried.
    b = make_server(engine=TINY, submit_rate_per_second=1.0, submit_burst=1)
    a = make_front(b)
    ids = [submit(a, flash([f"{file_server}/object.png"], seed=s)) for s in (1, 2)]
    outs = [a.wait(i)["output"] for i in ids]
    assert [o["task_status"] for o in outs] == ["SUCCEEDED", "SUCCEEDED"], outs
    ups = upstream_tasks(b)
    assert len(ups) == 2  # no duplicate from the retry
    first, second = sorted(datetime.strptime(u["submit_time"], "%Y-%m-%d %H:%M:%S.%f") for u in ups)
    assert (second - first).total_seconds() > 0.5  # the second waited for B's bucket to refill


def test_throttling_that_outlasts_the_patience_fails_with_the_upstream_code(
        make_server: Any, make_front: Any, file_server: str) -> None:
    b = make_server(engine=TINY, submit_rate_per_second=0.001, submit_burst=1)
    a = make_front(b, upstream_submit_patience_seconds=1.0)
    ids = [submit(a, flash([f"{file_server}/object.png"], seed=s)) for s in (1, 2)]
    outs = sorted((a.wait(i)["output"] for i in ids), key=lambda o: o["task_status"])
    assert [o["task_status"] for o in outs] == ["FAILED", "SUCCEEDED"], outs
    assert outs[0]["code"] == "Throttling.RateQuota"
    assert len(upstream_tasks(b)) == 1
