"""The ``videos`` engine over HTTP: server A (engine ``videos``) in front of server B (an openr2v, whose
``/v1/videos`` speaks vLLM-Omni's fields). B renders with the compositor where the video matters, with the
small engines of tests/engines/upstream_engines.py where only the protocol does."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from openr2v.keys import owner_id
from tests.engines.test_dashscope_upstream import flash, sdk_global, sdk_two_references, submit  # noqa: F401
from tests.helpers import OTHER_KEY, LiveServer, assert_contract_mp4, video_facts

SLOW = "tests.engines.upstream_engines:slow_engine"


def videos_front(b: LiveServer, **overrides: object) -> dict[str, object]:
    values: dict[str, object] = dict(engine="videos", upstream_url=b.url, upstream_api_key=OTHER_KEY,
                                     upstream_flavor="openr2v", upstream_poll_seconds=0.1,
                                     upstream_max_poll_seconds=0.5)
    return values | overrides


def b_tasks(b: LiveServer) -> list[Any]:
    tasks, _ = b.app.state.runtime.store.list(owner_id(OTHER_KEY))  # type: ignore[attr-defined]
    return list(tasks)


def upstream_state(server: LiveServer, task_id: str) -> dict[str, Any]:
    task = server.app.state.runtime.store.get(task_id)  # type: ignore[attr-defined]
    return dict(task.extra.get("upstream") or {}) if task else {}


def test_official_sdk_at_a_gets_b_video_byte_identical(make_server: Any, media_dir: Path, file_server: str,
                                                       sdk_global: None) -> None:  # noqa: F811
    b = make_server()  # the compositor
    a = make_server(**videos_front(b))
    rsp, video = sdk_two_references(a, media_dir, file_server)
    [up] = b_tasks(b)  # exactly one upstream video
    assert (up.request.seed, up.request.size, up.request.duration, up.request.audio) == (7, (1280, 720), 2, True)
    assert [(r.label, r.kind) for r in up.request.references] == [("character1", "video"), ("character2", "image")]
    assert up.request.prompt == "character1 says to character2: 'We made it.' Close-up of character2."
    with b.client(OTHER_KEY) as c:
        assert c.get(f"/v1/videos/{up.id}/content").content == video  # byte for byte
    # Usage is A's own computation (B reports none on /v1/videos).
    with a.client() as c:
        usage = c.get(f"/api/v1/tasks/{rsp.output.task_id}").json()["usage"]
    assert (usage["output_video_duration"], usage["input_video_duration"], usage["size"]) == (2, 2.5, "1280*720")


def test_delete_at_a_deletes_the_video_at_b(make_server: Any, file_server: str) -> None:
    b = make_server(engine=SLOW)
    a = make_server(**videos_front(b))
    task_id = submit(a, flash([f"{file_server}/object.png"]))
    deadline = time.time() + 30
    while time.time() < deadline and not upstream_state(a, task_id).get("videos"):
        time.sleep(0.05)
    [up_id] = upstream_state(a, task_id)["videos"].values()
    with b.client(OTHER_KEY) as c:
        assert c.get(f"/v1/videos/{up_id}").json()["status"] in ("queued", "in_progress")
    with a.client() as c:
        assert c.delete(f"/v1/videos/{task_id}").status_code == 200
    deadline = time.time() + 30
    with b.client(OTHER_KEY) as c:
        while time.time() < deadline and c.get(f"/v1/videos/{up_id}").status_code != 404:
            time.sleep(0.1)
        assert c.get(f"/v1/videos/{up_id}").status_code == 404  # deleted at B too


def test_shot_by_shot_joins_one_upstream_video_per_shot(make_server: Any, file_server: str) -> None:
    b = make_server()
    a = make_server(**videos_front(b, upstream_shots="each"))
    body = flash([f"{file_server}/object.png", f"{file_server}/person1.mp4"], seed=3, audio=False, duration=3)
    body["input"]["prompt"] = ("Shot 1 [0-1.5s]: character1 spins on a table. "
                               "Shot 2 [1.5-3s]: close-up of character2 laughing.")
    task_id = submit(a, body)
    done = a.wait(task_id, timeout=240)
    assert done["output"]["task_status"] == "SUCCEEDED", done
    video = httpx.get(done["output"]["video_url"], timeout=60).content
    assert_contract_mp4(video, 1280, 720, 3, audio=False)
    ups = sorted(b_tasks(b), key=lambda t: t.submit_time)
    assert len(ups) == 2  # one per shot, each with the references on screen in it, relabelled
    prompts = sorted(t.request.prompt for t in ups)
    assert prompts == ["character1 spins on a table.", "close-up of character1 laughing."], prompts
    kinds = sorted(t.request.references[0].kind for t in ups)
    assert kinds == ["image", "video"] and all(len(t.request.references) == 1 for t in ups)
    assert all(t.request.duration == 2 for t in ups)  # 1.5 s shots ask for the shortest video, then are cut
    notes = upstream_state(a, task_id)
    assert len(notes["videos"]) == 2 and notes["submitting"] == []


def test_vllm_omni_flavor_image_to_video(make_server: Any, file_server: str) -> None:
    b = make_server()
    a = make_server(**videos_front(b, upstream_flavor="vllm-omni"))
    task_id = submit(a, flash([f"{file_server}/face.webp"], seed=11, audio=False))
    done = a.wait(task_id, timeout=240)
    assert done["output"]["task_status"] == "SUCCEEDED", done
    [up] = b_tasks(b)
    # B read vLLM-Omni's fields: input_reference (a file), width/height, num_frames/fps, seed, generate_sound.
    assert up.request.references[0].source.startswith("oss://openai/")
    assert (up.request.size, up.request.duration, up.request.seed, up.request.audio) == ((1280, 720), 2, 11, False)
    video = httpx.get(done["output"]["video_url"], timeout=60).content
    with b.client(OTHER_KEY) as c:
        assert c.get(f"/v1/videos/{up.id}/content").content == video
    assert video_facts(video).frames == 60
