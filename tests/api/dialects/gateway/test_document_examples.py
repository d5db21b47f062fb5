"""The gateway docs' examples end to end, and its poll envelope key for key at each status.

Reference URLs point at locally served videos (2.5 s and 3 s: within the document's 2-30 s).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import mediagen
from tests.api.dialects.dashscope.conftest import download
from tests.helpers import KEY, LiveServer, assert_contract_mp4

SUBMIT = "/v1/video/generations"
DATA_KEYS = {"task_id", "action", "status", "fail_reason", "submit_time", "start_time", "finish_time", "progress",
             "data"}
USAGE_KEYS = {"SR", "duration", "input_video_duration", "output_video_duration", "size", "video_count",
              "video_ratio"}
MULTI = "character1 and character2 talk to each other in an office."


def example_bodies(files: str) -> dict[str, dict[str, Any]]:
    return {
        "single-character": {
            "prompt": "character1 drinks bubble tea while dancing spontaneously to the music.",
            "model": "wan2.6-r2v",
            "metadata": {"input": {"reference_video_urls": [f"{files}/person1.mp4"]},
                         "parameters": {"size": "1280*720", "duration": 5, "shot_type": "multi"}},
        },
        "multi-character": {
            "prompt": MULTI,
            "model": "wan2.6-r2v",
            "metadata": {"input": {"reference_video_urls": [f"{files}/person1.mp4", f"{files}/person2.mp4"],
                                   "negative_prompt": "white walls"},
                         "parameters": {"size": "1280*720", "duration": 10, "shot_type": "multi",
                                        "watermark": True}},
        },
    }


def poll(server: LiveServer, task_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.time() + timeout
    with server.client() as c:
        while time.time() < deadline:
            r = c.get(f"{SUBMIT}/{task_id}")
            assert r.status_code == 200, r.text
            env = r.json()
            assert env["code"] == "success" and env["message"] == "" and set(env["data"]) == DATA_KEYS
            if env["data"]["status"] != "IN_PROGRESS":
                return env
            assert env["data"]["fail_reason"] == "" and env["data"]["finish_time"] == 0
            time.sleep(0.2)
    raise TimeoutError(task_id)


def check_submit_answer(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == {"id", "object", "model", "status", "progress", "created_at"}
    assert (got["object"], got["model"], got["status"], got["progress"]) == ("video", "wan2.6-r2v", "queued", 0)
    assert isinstance(got["created_at"], int) and abs(got["created_at"] - time.time()) < 60
    return str(got["id"])


def test_gateway_docs_examples(server: LiveServer, file_server: str) -> None:
    ids = {}
    with server.client() as c:
        for name, body in example_bodies(file_server).items():
            ids[name] = check_submit_answer(c.post(SUBMIT, json=body))
    # Billing per the gateway's docs: input seconds (cap 5 s over the references) + output seconds.
    expected = {"single-character": (5, 2.5), "multi-character": (10, 5)}
    for name, task_id in ids.items():
        env = poll(server, task_id)
        data = env["data"]
        assert data["status"] == "SUCCESS", (name, env)
        assert (data["task_id"], data["action"], data["progress"]) == (task_id, "textGenerate", "100%")
        assert data["submit_time"] <= data["start_time"] <= data["finish_time"]
        inner = data["data"]
        assert set(inner) == {"output", "request_id", "usage"}
        out = inner["output"]
        assert set(out) == {"end_time", "orig_prompt", "scheduled_time", "submit_time", "task_id", "task_status",
                            "video_url"}
        assert out["task_status"] == "SUCCEEDED" and out["task_id"] == task_id
        assert data["fail_reason"] == out["video_url"]  # the document's quirk: the URL in fail_reason
        seconds, billed_in = expected[name]
        usage = inner["usage"]
        assert set(usage) == USAGE_KEYS
        assert (usage["output_video_duration"], usage["input_video_duration"]) == (seconds, billed_in)
        assert usage["duration"] == seconds + billed_in and usage["SR"] == 720 and usage["video_count"] == 1
        assert usage["size"] == usage["video_ratio"] == "1280*720"
        assert_contract_mp4(download(out["video_url"]), 1280, 720, seconds, audio=True)
    # The multi-character example bills exactly the document's example usage: 5 + 10 = 15.
    multi = poll(server, ids["multi-character"])["data"]["data"]
    assert multi["output"]["orig_prompt"] == MULTI and multi["usage"]["duration"] == 15


def test_gateway_docs_complete_request(server: LiveServer, file_server: str) -> None:
    """The document's curl, byte for byte but for the host and the reference URLs (rendered at 5 s here)."""
    raw = f'''{{
"prompt": "character1 and character2 talk to each other in an office.",
"model": "wan2.6-r2v",
"metadata": {{
"input": {{
"reference_video_urls": [
"{file_server}/person2.mp4",
"{file_server}/silent.mov"
],
"negative_prompt": "white walls"
}},
"parameters": {{
"size": "1280*720",
"duration": 5,
"shot_type": "multi",
"watermark": true
}}
}}
}}'''
    r = httpx.post(f"{server.url}{SUBMIT}", content=raw,
                   headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    env = poll(server, check_submit_answer(r))
    assert env["data"]["status"] == "SUCCESS", env


def test_processing_envelope(make_server: Any, file_server: str) -> None:
    """The "Processing" example: IN_PROGRESS, progress "30%", the upstream output while RUNNING."""
    idle = make_server(render_threads=0)
    with idle.client() as c:
        task_id = check_submit_answer(c.post(SUBMIT, json=example_bodies(file_server)["single-character"]))
        pending = c.get(f"{SUBMIT}/{task_id}").json()["data"]
        assert (pending["status"], pending["progress"], pending["start_time"], pending["finish_time"]) == (
            "IN_PROGRESS", "0%", 0, 0)
        assert pending["data"]["output"] == {"submit_time": pending["data"]["output"]["submit_time"],
                                             "task_id": task_id, "task_status": "PENDING"}
        service = idle.app.state.runtime.service  # type: ignore[attr-defined]
        service.claim(task_id)
        service.progress(task_id, 30)
        data = c.get(f"{SUBMIT}/{task_id}").json()["data"]
    assert (data["status"], data["progress"], data["fail_reason"], data["finish_time"]) == (
        "IN_PROGRESS", "30%", "", 0)
    assert data["start_time"] >= data["submit_time"] > 0
    assert set(data["data"]) == {"output", "request_id"}
    assert set(data["data"]["output"]) == {"scheduled_time", "submit_time", "task_id", "task_status"}
    assert data["data"]["output"]["task_status"] == "RUNNING"


@pytest.fixture(scope="module")
def short_video(media_dir: Path) -> str:
    mediagen.make_video(media_dir / "gw_1s.mp4", 480, 640, 1.0, audio=True, seed=31)
    return "gw_1s.mp4"


def test_failure_envelope(server: LiveServer, file_server: str, short_video: str) -> None:
    body = example_bodies(file_server)["single-character"]
    body["metadata"]["input"]["reference_video_urls"] = [f"{file_server}/{short_video}"]
    with server.client() as c:
        task_id = check_submit_answer(c.post(SUBMIT, json=body))
    data = poll(server, task_id)["data"]
    assert data["status"] == "FAILURE" and data["progress"] == "100%" and data["finish_time"] > 0
    out = data["data"]["output"]
    assert set(data["data"]) == {"output", "request_id"}
    assert set(out) == {"code", "end_time", "message", "scheduled_time", "submit_time", "task_id", "task_status"}
    assert out["code"] == "InvalidParameter" and out["task_status"] == "FAILED"
    assert data["fail_reason"] == f"task failed, code: {out['code']} , message: {out['message']}"
    assert "minimum is 2 s" in out["message"]
