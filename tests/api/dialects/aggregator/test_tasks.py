"""Task life through the aggregator: statuses, failures and their codes, the aggregator docs' own rules, prices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.api.dialects.aggregator.test_document_examples import SUBMIT, wait
from tests.helpers import KEY, OTHER_KEY, LiveServer


def body(urls: list[str], **params: Any) -> dict[str, Any]:
    return {"model": "wan26_r2v", "input": {"prompt": "character1 waves.", "reference_urls": urls},
            "parameters": {"size": "1280*720", "duration": 2, **params}}


def submit(server: LiveServer, payload: dict[str, Any], key: str = KEY) -> str:
    with server.client(key) as c:
        r = c.post(SUBMIT, json=payload)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def test_pending_shape(make_server: Any, file_server: str) -> None:
    idle = make_server(render_threads=0)
    task_id = submit(idle, body([f"{file_server}/object.png"]))
    with idle.client() as c:
        got = c.get(f"{SUBMIT}/{task_id}").json()
    assert got["status"] == "pending" and got["progress"] == 0.0
    assert set(got) == {"id", "task_id", "model", "status", "created_at", "progress", "metadata"}
    assert got["metadata"]["started_at"] is None and got["metadata"]["completed_at"] is None


def test_failures_carry_the_seed_codes(server: LiveServer, file_server: str, agg_media: Path) -> None:
    cases = {
        # The aggregator's docs: videos last 3-30 s; person1.mp4 lasts 2.5 s (fine for DashScope's 2-30 s).
        f"{file_server}/person1.mp4": ("001028095", "InvalidParameter"),
        f"{file_server}/tiny.png": ("001028095", "InvalidParameter"),
        f"{file_server}/notanimage.png": ("001028095", "UnsupportedFileFormat"),
        f"{file_server}/missing.png": ("001028097", "BadRequest.InputDownloadFailed"),
    }
    ids = {submit(server, body([url])): expected for url, expected in cases.items()}
    for task_id, (code, canonical) in ids.items():
        done = wait(server, task_id)
        assert done["status"] == "failed", done
        assert done["error"]["code"] == code and canonical in done["error"]["message"], done
        assert not {"output", "usage", "progress"} & set(done)


def test_short_video_message_names_the_limit(server: LiveServer, file_server: str) -> None:
    done = wait(server, submit(server, body([f"{file_server}/person1.mp4"])))
    assert "input.reference_urls[0]" in done["error"]["message"]
    assert "minimum is 3 s" in done["error"]["message"], done


def test_long_prompt_is_truncated_not_refused(server: LiveServer, file_server: str) -> None:
    prompt = "character1 waves. " + "x" * 1600
    payload = body([f"{file_server}/object.png"])
    payload["input"]["prompt"] = prompt
    task_id = submit(server, payload)
    stored = server.app.state.runtime.store.get(task_id)  # type: ignore[attr-defined]
    assert stored.request.prompt == prompt[:1500]
    done = wait(server, task_id)
    assert done["status"] == "completed" and done["metadata"]["orig_prompt"] == prompt
    with server.client() as c:
        assert c.get(f"/api/v1/tasks/{task_id}").json()["output"]["orig_prompt"] == prompt


def test_shot_type_needs_prompt_extend(server: LiveServer, file_server: str) -> None:
    store = server.app.state.runtime.store  # type: ignore[attr-defined]
    off = submit(server, body([f"{file_server}/object.png"], shot_type="multi", prompt_extend=False))
    on = submit(server, body([f"{file_server}/object.png"], shot_type="multi", prompt_extend=True))
    assert store.get(off).request.shot_type == "single"
    assert store.get(off).request.extensions["ignored"]["parameters.shot_type"] == "multi"
    assert store.get(on).request.shot_type == "multi"
    for task_id in (off, on):
        assert wait(server, task_id)["status"] == "completed"


def test_audio_url_longer_than_the_video_is_cut(server: LiveServer, file_server: str, agg_media: Path) -> None:
    payload = body([f"{file_server}/object.png"])
    payload["input"]["audio_url"] = f"{file_server}/agg_music_4s.mp3"
    done = wait(server, submit(server, payload))
    assert done["status"] == "completed", done
    assert done["output"][0]["content"][0]["duration"] == 2


def test_short_audio_url_fails_the_task(server: LiveServer, file_server: str, media_dir: Path) -> None:
    from tests import mediagen

    mediagen.make_audio(media_dir / "agg_short.wav", 2.0, "wav")
    payload = body([f"{file_server}/object.png"])
    payload["input"]["audio_url"] = f"{file_server}/agg_short.wav"
    done = wait(server, submit(server, payload))
    assert done["status"] == "failed" and done["error"]["code"] == "001028095"
    assert "audio_url" in done["error"]["message"]


def test_unknown_and_foreign_tasks_are_status_check_errors(server: LiveServer, file_server: str) -> None:
    task_id = submit(server, body([f"{file_server}/object.png"]))
    with server.client(OTHER_KEY) as c:
        for tid in (task_id, "00000000-0000-0000-0000-000000000000"):
            r = c.get(f"{SUBMIT}/{tid}")
            assert r.status_code == 404 and r.json()["error"]["code"] == "001028098", r.text
    wait(server, task_id)


def test_price_table_file(make_server: Any, file_server: str, tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"wan26_r2v": {"720": {"audio": 0.2, "silent": 0.1},
                                                "1080": {"audio": 0.3}, "discount": 0.25}}))
    srv = make_server(prices_file=prices)
    loud = wait(srv, submit(srv, body([f"{file_server}/object.png"])))
    quiet = wait(srv, submit(srv, body([f"{file_server}/object.png"], audio=False)))
    # 2 s x 0.20 = 0.40, minus a 25 % discount; silent 2 s x 0.10 = 0.20 minus 0.05.
    assert loud["usage"] == {"cost": "0.3000", "discount": 0.1}
    assert quiet["usage"] == {"cost": "0.1500", "discount": 0.05}
    prices.write_text("{not json")  # a broken file falls back to the registry's prices
    again = wait(srv, submit(srv, body([f"{file_server}/object.png"])))
    assert again["usage"] == {"cost": "0.2000", "discount": 0.0}
