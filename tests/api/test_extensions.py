"""openr2v extensions: /api/v1/openr2v/models, /plan and /estimate (the console's previews)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openr2v.client import Client
from tests.helpers import KEY, LiveServer


def test_models_follow_the_registry_and_region(server: LiveServer) -> None:
    with server.client() as c:
        out = c.get("/api/v1/openr2v/models").json()["output"]
    names = {m["name"]: m for m in out["models"]}
    assert out["region"] == "intl" and {"wan2.6-r2v", "wan2.6-r2v-flash", "wan2.7-r2v"} <= set(names)
    assert "wan26_r2v" not in names  # the aggregator dialect's name, not DashScope's
    assert names["wan2.6-r2v-flash"]["audio_optional"] and not names["wan2.6-r2v"]["audio_optional"]
    assert "1280*720" in names["wan2.6-r2v"]["sizes"] and names["wan2.7-r2v"]["resolutions"] == ["720P", "1080P"]
    assert names["wan2.7-r2v"]["durations"] == list(range(2, 16)) and names["wan2.7-r2v"]["input_style"] == "media"


def test_plan_preview(server: LiveServer) -> None:
    with server.client() as c:
        r = c.post("/api/v1/openr2v/plan", json={
            "model": "wan2.7-r2v",
            "input": {"prompt": "Shot 1 [0-2s]: wide shot of reference image. Shot 2 [2-4s]: close-up, it says: 'hi'",
                      "media": [{"type": "first_frame", "url": "https://x/f.png"},
                                {"type": "reference_image", "url": "https://x/a.png"}]},
            "parameters": {"duration": 4}})
        out = r.json()["output"]
        assert r.status_code == 200 and out["labels"] == ["reference image"]
        assert out["plan"]["mode"] == "timed" and [s["end"] for s in out["plan"]["shots"]] == [2, 4]
        assert out["actual_prompt"].startswith("Shot 1 [0-2s]")
        # While the user types: no prompt, no references yet, still an answer.
        r = c.post("/api/v1/openr2v/plan", json={"model": "wan2.6-r2v", "input": {}})
        assert r.status_code == 200 and r.json()["output"]["plan"]["mode"] == "single"
        r = c.post("/api/v1/openr2v/plan", json={"model": "wan9", "input": {}})
        assert r.status_code == 400 and r.json()["code"] == "InvalidParameter" and "wan9" in r.json()["message"]


def test_estimate_measures_uploaded_videos(server: LiveServer, media_dir: Path) -> None:
    with Client(server.url, api_key=KEY) as sdk:
        video = sdk.upload(media_dir / "person2.mp4", "wan2.7-r2v")  # 3.0 s
    with server.client() as c:
        body = {"model": "wan2.7-r2v", "input": {"prompt": "", "media": [
            {"type": "reference_video", "url": video}, {"type": "reference_video", "url": "https://x/b.mp4"},
            {"type": "reference_image", "url": "https://x/c.png"}]},
            "parameters": {"resolution": "720P", "ratio": "1:1", "duration": 3}}
        out = c.post("/api/v1/openr2v/estimate", json=body).json()["output"]
        # wan2.7: two videos -> 2.5 s cap each; the URL's length is unknown: billed at the cap (an upper bound).
        assert out["references"][0]["seconds"] == pytest.approx(3.0) and out["exact"] is False
        assert out["input_video_duration"] == 5.0 and out["billed_seconds"] == 8.0 and out["size"] == "960*960"
        assert out["cost_usd"] == pytest.approx(8.0 * out["unit_price_usd"])
        body["reference_seconds"] = [None, 1.0, None]  # the console knows lengths from the browser
        out = c.post("/api/v1/openr2v/estimate", json=body).json()["output"]
        assert out["exact"] is True and out["input_video_duration"] == 3.5
        r = c.post("/api/v1/openr2v/estimate", json={**body, "parameters": {"duration": 20}})
        assert r.status_code == 400 and "duration" in r.json()["message"]
        r = c.post("/api/v1/openr2v/estimate", json={"model": "wan2.6-r2v", "input": {"reference_urls": []},
                                                     "parameters": {"audio": False}})
        assert r.status_code == 400 and "audio" in r.json()["message"]
