"""The aggregator docs' examples end to end: its prompts, both input methods (URL and base64), audio_url, defaults.

Reference URLs point at locally served files that meet the document's own limits (videos >= 3 s).
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from openr2v.media.audio import decode_audio, rms_dbfs
from tests import mediagen
from tests.api.dialects.dashscope.conftest import download
from tests.helpers import LiveServer, assert_contract_mp4

SUBMIT = "/model/v1/generation"


def wait(server: LiveServer, task_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.time() + timeout
    with server.client() as c:
        while time.time() < deadline:
            body = c.get(f"{SUBMIT}/{task_id}").json()
            if body["status"] in ("completed", "failed"):
                return body
            assert body["status"] in ("pending", "processing"), body
            assert 0.0 <= body["progress"] <= 1.0 and "output" not in body and "usage" not in body
            time.sleep(0.2)
    raise TimeoutError(task_id)


@pytest.fixture(scope="module")
def chars(agg_media: Path) -> Path:
    for i in (1, 2):
        if not (agg_media / f"char{i}.jpg").exists():
            mediagen.make_image(agg_media / f"char{i}.jpg", 600, 800, "jpeg", seed=20 + i)
    mediagen.make_image(agg_media / "char2.png", 512, 640, "png", seed=22)
    return agg_media


def test_aggregator_docs_examples(server: LiveServer, file_server: str, chars: Path, tmp_path: Path) -> None:
    f = file_server
    data_uri = "data:image/png;base64," + base64.b64encode((chars / "char2.png").read_bytes()).decode()
    bodies: dict[str, dict[str, Any]] = {
        # "Example: character1 walking in the park with a happy expression"; every parameter at its default.
        "single-character-defaults": {
            "model": "wan26_r2v",
            "input": {"prompt": "character1 walking in the park with a happy expression",
                      "reference_urls": [f"{f}/char1.jpg"]},
        },
        # The multi-character example, reference 2 by "Method 2: Base64 encoded string", with audio_url
        # and the documented seed example.
        "multi-character-base64-audio": {
            "model": "wan26_r2v",
            "input": {"prompt": "character1 is talking with character2 in the garden",
                      "reference_urls": [f"{f}/char1.jpg", data_uri],
                      "audio_url": f"{f}/agg_music_4s.mp3"},
            "parameters": {"size": "1280*720", "duration": 5, "prompt_extend": True, "watermark": True,
                           "audio": True, "shot_type": "multi", "seed": 12345},
        },
        # Mixed images and a video ("can be mixed images and videos"), duration option 10.
        "mixed-video-and-image": {
            "model": "wan26_r2v",
            "input": {"prompt": "character1 is talking with character2 in the garden",
                      "reference_urls": [f"{f}/agg_person_4s.mp4", f"{f}/char2.jpg"]},
            "parameters": {"size": "720*1280", "duration": 10, "shot_type": "multi"},
        },
    }
    expected = {"single-character-defaults": (1920, 1080, 5, "0.7500"),
                "multi-character-base64-audio": (1280, 720, 5, "0.5000"),
                "mixed-video-and-image": (720, 1280, 10, "1.0000")}
    ids: dict[str, str] = {}
    with server.client() as c:
        for name, body in bodies.items():
            r = c.post(SUBMIT, json=body)
            assert r.status_code == 200, (name, r.text)
            got = r.json()
            assert got["status"] == "pending" and got["model"] == "wan26_r2v" and got["id"] == got["task_id"]
            assert isinstance(got["created_at"], int) and got["metadata"]["request_id"]
            assert not {"output", "usage", "error"} & set(got)
            ids[name] = got["id"]
    for name, task_id in ids.items():
        done = wait(server, task_id)
        assert done["status"] == "completed", (name, done)
        assert "error" not in done and "progress" not in done
        (out,) = done["output"]
        assert out["jobId"] == task_id
        (item,) = out["content"]
        assert item["type"] == "video"
        w, h, seconds, cost = expected[name]
        # The aggregator's docs: cost = unit price (by resolution) x duration; input videos are not billed.
        assert done["usage"] == {"cost": cost, "discount": 0.0}, name
        meta = done["metadata"]
        assert meta["created_at"] <= meta["started_at"] <= meta["completed_at"]
        video = download(item["url"])
        assert_contract_mp4(video, w, h, seconds, audio=True)
        if name == "multi-character-base64-audio":
            # A 4 s soundtrack under a 5 s video: sound for 4 s, then (room tone only) silence.
            path = tmp_path / "out.mp4"
            path.write_bytes(video)
            audio = decode_audio(path)
            loud, tail = rms_dbfs(audio[:, 48000:3 * 48000 + 36000]), rms_dbfs(audio[:, 4 * 48000 + 12000:])
            assert loud > -30 and tail < loud - 15, (loud, tail)


def test_aggregator_docs_curl_shape(server: LiveServer, file_server: str, chars: Path) -> None:
    """The document's request with its required headers only, as curl sends it."""
    raw = ('{"model": "wan26_r2v", "input": {"prompt": "character1 walking in the park with a happy expression", '
           f'"reference_urls": ["{file_server}/char1.jpg"]}}, "parameters": {{"size": "1280*720", "duration": 2}}}}')
    r = httpx.post(server.url + SUBMIT, content=raw,
                   headers={"Authorization": "Bearer sk-test", "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    done = wait(server, r.json()["id"])
    assert done["status"] == "completed" and done["usage"]["cost"] == "0.2000"
