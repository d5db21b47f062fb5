"""Clients written for vLLM-Omni's ``/v1/videos`` against openr2v: its documented curl shapes (multipart,
``input_reference`` file, ``width``/``height``/``num_frames``/``fps``, JSON-string references), ``/v1/videos/sync``,
and the three multipart spellings of a list field (LiteLLM sends the plain ones)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from openr2v.keys import owner_id
from tests.helpers import KEY, LiveServer, assert_contract_mp4

AUTH = {"Authorization": f"Bearer {KEY}"}


def wait_video(server: LiveServer, video_id: str, timeout: float = 180) -> dict[str, Any]:
    with server.client() as c:
        for _ in range(int(timeout / 0.2)):
            body = c.get(f"/v1/videos/{video_id}").json()
            if body["status"] in ("completed", "failed"):
                return dict(body)
            time.sleep(0.2)
    raise TimeoutError(video_id)


def test_image_to_video_curl_shape_sync(server: LiveServer, media_dir: Path) -> None:
    # curl .../v1/videos/sync -F prompt=... -F input_reference=@input.png -F width=1280 -F height=720
    #   -F num_frames=80 -F fps=16
    fields = {"prompt": "animate this image with subtle camera movement", "width": "1280", "height": "720",
              "num_frames": "32", "fps": "16"}
    with open(media_dir / "object.png", "rb") as f:
        r = httpx.post(f"{server.url}/v1/videos/sync", data=fields, headers=AUTH, timeout=300,
                       files={"input_reference": ("input.png", f, "image/png")})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    assert_contract_mp4(r.content, 1280, 720, 2, audio=True)  # 32 frames at 16 fps: 2 s, rendered at 30 fps
    video_id = r.headers["x-openr2v-video-id"]
    with server.client() as c:  # an ordinary task: its content is the same bytes
        assert c.get(f"/v1/videos/{video_id}/content").content == r.content


def test_image_to_video_curl_shape_async(server: LiveServer, media_dir: Path) -> None:
    fields = {"prompt": "animate this image with subtle camera movement", "width": "1280", "height": "720",
              "num_frames": "80", "fps": "16"}
    with open(media_dir / "object.png", "rb") as f:
        r = httpx.post(f"{server.url}/v1/videos", data=fields, headers=AUTH, timeout=60,
                       files={"input_reference": ("input.png", f, "image/png")})
    assert r.status_code == 200, r.text
    created = r.json()
    assert (created["status"], created["seconds"], created["size"]) == ("queued", "5", "1280x720")
    task = server.app.state.runtime.store.get(created["id"])  # type: ignore[attr-defined]
    assert task.request.duration == 5 and task.request.references[0].source.startswith("oss://openai/")
    server.app.state.runtime.service.delete(task.owner, task.id)  # type: ignore[attr-defined]


def test_speech_to_video_curl_shape(server: LiveServer, file_server: str) -> None:
    # curl .../v1/videos -F prompt=... -F 'image_reference={"image_url": ...}' -F 'audio_reference={"audio_url": ...}'
    #   -F width=832 -F height=480 -F num_inference_steps=40 -F guidance_scale=4.5 -F fps=16
    fields = {"prompt": "A person singing", "image_reference": json.dumps({"image_url": f"{file_server}/face.webp"}),
              "audio_reference": json.dumps({"audio_url": f"{file_server}/voice.mp3"}),
              "width": "832", "height": "480", "num_inference_steps": "40", "guidance_scale": "4.5", "fps": "16",
              "seconds": "2"}
    r = httpx.post(f"{server.url}/v1/videos", data=fields, files={"_": ("", b"")}, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    video = wait_video(server, r.json()["id"])
    assert video["status"] == "completed", video
    assert (video["model"], video["size"]) == ("wan2.7-r2v", "1280x720")  # the 16:9 size nearest 832x480
    req = server.app.state.runtime.store.get(video["id"]).request  # type: ignore[attr-defined]
    [ref] = req.references
    assert (ref.kind, ref.source, ref.voice) == ("image", f"{file_server}/face.webp", f"{file_server}/voice.mp3")
    assert req.extensions["sampling"] == {"num_inference_steps": 40, "guidance_scale": 4.5}
    with server.client() as c:
        assert_contract_mp4(c.get(f"/v1/videos/{video['id']}/content").content, 1280, 720, 2, audio=True)


def test_list_field_spellings(server: LiveServer, file_server: str, media_dir: Path) -> None:
    png, mp4 = f"{file_server}/object.png", f"{file_server}/person1.mp4"
    base = [("prompt", "character1 waves at character2."), ("seconds", "2"), ("size", "1280x720"),
            ("parameters[audio]", "false")]
    spelled = {"brackets": [("references[]", png), ("references[]", mp4)],
               "plain-repeated": [("references", png), ("references", mp4)],
               "plain-single": [("references", mp4)]}
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as c:
        for name, refs in spelled.items():
            # LiteLLM's shape: a file attached, so the form is multipart, and the list spelled plainly
            with open(media_dir / "face.webp", "rb") as f:
                r = c.post("/v1/videos", data=_multi(base + refs), files={"input_reference": ("f.webp", f,
                                                                                              "image/webp")})
            assert r.status_code == 200, (name, r.text)
            task = server.app.state.runtime.store.get(r.json()["id"])  # type: ignore[attr-defined]
            assert [x.source for x in task.request.references][1:] == [v for _, v in refs], name
            server.app.state.runtime.service.delete(task.owner, task.id)  # type: ignore[attr-defined]
        # Reference files in the list (openr2v's own extension), in the order they come.
        with open(media_dir / "object.png", "rb") as a, open(media_dir / "person1.mp4", "rb") as b:
            r = c.post("/v1/videos", data=_multi(base), files=[("references[]", ("a.png", a, "image/png")),
                                                                ("references[]", ("b.mp4", b, "video/mp4"))])
        assert r.status_code == 200, r.text
        task = server.app.state.runtime.store.get(r.json()["id"])  # type: ignore[attr-defined]
        assert [x.kind for x in task.request.references] == ["image", "video"]
        assert all(x.source.startswith("oss://openai/") for x in task.request.references)
        server.app.state.runtime.service.delete(task.owner, task.id)  # type: ignore[attr-defined]
        r = c.post("/v1/videos", data=_multi(base + [("references", png), ("references[]", mp4)]),
                   files={"_": ("", b"")})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == "references" and "references[]=" in err["message"] and "references=" in err["message"]


def _multi(fields: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in fields:
        out.setdefault(k, []).append(v)
    return out


def test_sync_failure_and_hang_up(make_server: Any, file_server: str) -> None:
    fields = {"prompt": "character1 waves.", "seconds": "2", "size": "1280x720",
              "references": f"{file_server}/object.png"}
    failing = make_server(engine="tests.engines.upstream_engines:failing_engine")
    r = httpx.post(f"{failing.url}/v1/videos/sync", data=fields, files={"_": ("", b"")}, headers=AUTH, timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "DataInspectionFailed" and "inappropriate" in r.json()["error"]["message"]

    slow = make_server(engine="tests.engines.upstream_engines:slow_engine")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{slow.url}/v1/videos/sync", data=fields, files={"_": ("", b"")}, headers=AUTH, timeout=1.5)
    store = slow.app.state.runtime.store  # type: ignore[attr-defined]
    deadline = time.time() + 20
    while time.time() < deadline and store.list(owner_id(KEY))[1]:
        time.sleep(0.1)
    assert store.list(owner_id(KEY))[1] == 0  # the client hung up: its video was deleted (and its render stopped)
