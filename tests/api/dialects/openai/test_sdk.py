"""The real ``openai`` SDK against a live openr2v: create, retrieve, poll, list, download_content, delete."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from tests.helpers import KEY, OTHER_KEY, LiveServer, assert_contract_mp4

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK marks videos.* deprecated


def sdk(server: LiveServer, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture
def client(server: LiveServer) -> Iterator[openai.OpenAI]:
    c = sdk(server)
    yield c
    c.close()


def test_create_and_poll_with_upload_and_extras(client: openai.OpenAI, server: LiveServer, file_server: str,
                                                 media_dir: Path) -> None:
    with open(media_dir / "object.png", "rb") as f:
        video = client.videos.create_and_poll(
            model="wan2.6-r2v-flash", prompt="character1 floats past character2 while character2 dances.",
            seconds="4", size="1280x720", input_reference=f, poll_interval_ms=200,
            extra_body={"references": [f"{file_server}/person1.mp4"],
                        "parameters": {"audio": False, "seed": 7, "shot_type": "multi", "watermark": True}})
    assert video.status == "completed", video
    assert (video.object, video.model, video.seconds, video.size, video.progress) == (
        "video", "wan2.6-r2v-flash", "4", "1280x720", 100)
    assert video.completed_at and video.expires_at and video.expires_at > video.completed_at
    assert video.error is None
    req = server.app.state.runtime.store.get(video.id).request  # type: ignore[attr-defined]
    assert [(r.label, r.kind) for r in req.references] == [("character1", "image"), ("character2", "video")]
    assert req.references[0].source.startswith("oss://openai/")
    assert (req.audio, req.seed, req.shot_type, req.watermark) == (False, 7, "multi", True)
    content = client.videos.download_content(video.id)
    assert_contract_mp4(content.content, 1280, 720, 4, audio=False)


def test_wan27_references_and_voices_through_extra_body(client: openai.OpenAI, server: LiveServer,
                                                        file_server: str) -> None:
    f = file_server
    video = client.videos.create(
        model="wan2.7-r2v", prompt="Video 1 says to Image 1: 'hello there'. Image 1 replies: 'hi'.",
        seconds="4", size="720x1280",
        # A multipart form keeps only the order of each key's values, so every object names every key.
        extra_body={"references": [{"url": f"{f}/person2.mp4", "type": "video", "reference_voice": "none"},
                                   {"url": f"{f}/face.webp", "type": "image",
                                    "reference_voice": f"{f}/voice.mp3"}],
                    "negative_prompt": "blur"})
    assert video.status == "queued" and video.size == "720x1280" and video.seconds == "4"
    req = server.app.state.runtime.store.get(video.id).request  # type: ignore[attr-defined]
    assert [(r.label, r.kind, r.voice) for r in req.references] == [
        ("Video 1", "video", None), ("Image 1", "image", f"{f}/voice.mp3")]
    assert (req.resolution, req.ratio, req.negative_prompt) == ("720P", "9:16", "blur")
    done = client.videos.poll(video.id, poll_interval_ms=200)
    assert done.status == "completed", done
    assert_contract_mp4(client.videos.download_content(video.id).content, 720, 1280, 4, audio=True)


def test_list_pages_by_cursor(server: LiveServer, file_server: str) -> None:
    c = sdk(server, OTHER_KEY)
    ids = [c.videos.create(prompt=f"character1 waves {i}.", seconds="4", size="1280x720",
                           extra_body={"references": [f"{file_server}/object.png"]}).id for i in range(3)]
    newest_first = [v.id for v in c.videos.list(limit=2)]  # the SDK follows last_id / has_more
    assert newest_first[:3] == ids[::-1]
    page = c.videos.list(limit=2, order="asc")
    assert page.has_more is True and len(page.data) == 2 and page.last_id == page.data[-1].id
    oldest_first = [v.id for v in c.videos.list(order="asc", limit=100)]
    assert [i for i in oldest_first if i in ids] == ids
    after = c.videos.list(after=ids[2], limit=1)
    assert [v.id for v in after.data] == [ids[1]] and after.has_more is True
    for video_id in ids:
        assert c.videos.poll(video_id, poll_interval_ms=200).status == "completed"
    mine = [v.id for v in sdk(server).videos.list(limit=100)]
    assert not set(ids) & set(mine)  # a key sees only its own videos


def test_retrieve_and_delete(client: openai.OpenAI, file_server: str) -> None:
    video = client.videos.create_and_poll(prompt="character1 waves.", seconds="4", size="1280x720",
                                          extra_body={"references": [f"{file_server}/object.png"]},
                                          poll_interval_ms=200)
    assert client.videos.retrieve(video.id).status == "completed"
    gone = client.videos.delete(video.id)
    assert (gone.id, gone.deleted, gone.object) == (video.id, True, "video.deleted")
    with pytest.raises(openai.NotFoundError) as e:
        client.videos.retrieve(video.id)
    assert e.value.code == "not_found" and e.value.param == "video_id"
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content(video.id)


def test_failed_video_carries_the_error(client: openai.OpenAI, file_server: str) -> None:
    video = client.videos.create_and_poll(prompt="character1 waves.", seconds="4", size="1280x720",
                                          extra_body={"references": [f"{file_server}/tiny.png"]},
                                          poll_interval_ms=200)
    assert video.status == "failed" and video.error is not None
    assert video.error.code == "InvalidParameter" and "360" in video.error.message
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.download_content(video.id)
    assert e.value.code == "video_not_ready"


def test_sdk_errors(server: LiveServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as auth:
        sdk(server, "sk-nope").videos.list()
    assert auth.value.code == "invalid_api_key"
    assert auth.value.body == {"message": "Invalid API-key provided.", "type": "invalid_request_error",
                               "code": "invalid_api_key", "param": None}
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="character1 waves.", size="1024x1792",
                             extra_body={"references": ["https://example.com/a.png"]})
    assert (bad.value.code, bad.value.param) == ("invalid_value", "size")
    with pytest.raises(openai.BadRequestError) as model:
        client.videos.create(prompt="hello", model="sora-2")
    assert model.value.param == "model" and "wan2.6-r2v-flash" in model.value.message


def test_json_create_and_previews(server: LiveServer, file_server: str) -> None:
    with server.client() as c:
        r = c.post("/v1/videos", json={"prompt": "character1 waves.", "model": "wan2.6-r2v", "seconds": 4,
                                       "size": "1280x720",
                                       "input_reference": {"image_url": f"{file_server}/object.png"}})
        assert r.status_code == 200, r.text
        video_id = r.json()["id"]
    done = sdk(server).videos.poll(video_id, poll_interval_ms=200)
    assert done.status == "completed" and done.seconds == "4" and done.model == "wan2.6-r2v"
    with server.client() as c:
        thumb = c.get(f"/v1/videos/{video_id}/content", params={"variant": "thumbnail"})
        sheet = c.get(f"/v1/videos/{video_id}/content", params={"variant": "spritesheet"})
        bad = c.get(f"/v1/videos/{video_id}/content", params={"variant": "gif"})
    assert thumb.headers["content-type"] == "image/webp" and Image.open(io.BytesIO(thumb.content)).size == (1280, 720)
    assert sheet.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(sheet.content)).size == (
        256 * 5, 144 * 2)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "variant"


def test_queued_video_has_no_content(make_server: Any, file_server: str) -> None:
    idle = make_server(render_threads=0)
    c = sdk(idle)
    video = c.videos.create(prompt="character1 waves.", extra_body={"references": [f"{file_server}/object.png"]})
    assert (video.status, video.progress, video.seconds, video.size) == ("queued", 0, "5", "1920x1080")
    with pytest.raises(openai.BadRequestError) as e:
        c.videos.download_content(video.id)
    assert e.value.code == "video_not_ready"
    # Deleting a queued video removes it: the worker never starts it.
    assert c.videos.delete(video.id).deleted
    r = httpx.get(f"{idle.url}/v1/videos/{video.id}", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
