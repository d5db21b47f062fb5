"""The official dashscope SDK (pinned in the test extras) against a live openr2v, unchanged."""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from pathlib import Path

import dashscope
import pytest
from dashscope import VideoSynthesis
from dashscope.aigc.video_synthesis import AioVideoSynthesis

from tests.api.dialects.dashscope.conftest import download
from tests.helpers import KEY, LiveServer, assert_contract_mp4


def test_call_wan26_flash_reference_urls_over_http(sdk: LiveServer, file_server: str) -> None:
    rsp = VideoSynthesis.call(
        model="wan2.6-r2v-flash",
        prompt="character1 says to character2: 'hello there'. character2 holds character3.",
        reference_urls=[f"{file_server}/person1.mp4", f"{file_server}/person2.mp4", f"{file_server}/object.png"],
        size="1280*720", duration=2, audio=True, shot_type="multi", watermark=True, seed=7)
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert rsp.output.task_status == "SUCCEEDED", rsp
    assert rsp.output.orig_prompt.startswith("character1 says")
    usage = rsp.usage
    # Three references -> 1.65 s cap per video; both videos are longer than that.
    assert usage["input_video_duration"] == pytest.approx(3.3)
    assert usage["output_video_duration"] == 2 and usage["duration"] == pytest.approx(5.3)
    assert usage["SR"] == 720 and usage["size"] == "1280*720" and usage["video_count"] == 1
    assert_contract_mp4(download(rsp.output.video_url), 1280, 720, 2, audio=True)


def test_call_wan26_flash_with_local_files_uploads_them(sdk: LiveServer, media_dir: Path) -> None:
    rsp = VideoSynthesis.call(
        model="wan2.6-r2v-flash", prompt="character1 dances next to character2.",
        reference_urls=[f"file://{media_dir / 'person1.mp4'}", f"file://{media_dir / 'background.jpg'}"],
        size="720*1280", duration=2, audio=False)
    assert rsp.status_code == HTTPStatus.OK and rsp.output.task_status == "SUCCEEDED", rsp
    assert rsp.usage["input_video_duration"] == 2.5  # 2 references -> 2.5 s cap; the video is 2.5 s
    assert_contract_mp4(download(rsp.output.video_url), 720, 1280, 2, audio=False)


def test_call_wan27_media_over_http(sdk: LiveServer, file_server: str) -> None:
    media = [
        {"type": "first_frame", "url": f"{file_server}/frame.bmp"},
        {"type": "reference_video", "url": f"{file_server}/person1.mp4"},
        {"type": "reference_image", "url": f"{file_server}/face.webp",
         "reference_voice": f"{file_server}/voice.mp3"},
    ]
    rsp = VideoSynthesis.call(model="wan2.7-r2v", media=media, resolution="720P", ratio="9:16", duration=2,
                              prompt_extend=False, watermark=True,
                              prompt="Video 1 walks in. Image 1 says: 'Why did you still come?'")
    assert rsp.status_code == HTTPStatus.OK and rsp.output.task_status == "SUCCEEDED", rsp
    # The first frame is 800x600 (4:3): the ratio parameter is ignored, the output follows the frame.
    assert rsp.usage["size"] == "1088*832"
    assert rsp.usage["input_video_duration"] == 2.5  # wan2.7: one video -> 5 s cap; it lasts 2.5 s
    assert_contract_mp4(download(rsp.output.video_url), 1088, 832, 2, audio=True)


def test_call_wan27_media_with_local_files(sdk: LiveServer, media_dir: Path) -> None:
    media = [
        {"type": "reference_video", "url": f"file://{media_dir / 'person2.mp4'}",
         "reference_voice": f"file://{media_dir / 'voice.wav'}"},
        {"type": "reference_image", "url": f"file://{media_dir / 'object.png'}"},
        {"type": "first_frame", "url": f"file://{media_dir / 'background.jpg'}"},
    ]
    rsp = VideoSynthesis.call(model="wan2.7-r2v", media=media, resolution="720P", duration=2,
                              prompt="Video 1 holds Image 1.")
    assert rsp.status_code == HTTPStatus.OK and rsp.output.task_status == "SUCCEEDED", rsp
    assert_contract_mp4(download(rsp.output.video_url), 1280, 720, 2, audio=True)


def test_async_call_wait_fetch_and_list(sdk: LiveServer, file_server: str) -> None:
    task = VideoSynthesis.async_call(model="wan2.6-r2v-flash", prompt="character1 smiles.",
                                     reference_urls=[f"{file_server}/face.webp"], size="960*960", duration=2)
    assert task.status_code == HTTPStatus.OK and task.output.task_status == "PENDING"
    fetched = VideoSynthesis.fetch(task)
    assert fetched.output.task_id == task.output.task_id
    assert fetched.output.task_status in ("PENDING", "RUNNING", "SUCCEEDED")
    done = VideoSynthesis.wait(task)
    assert done.output.task_status == "SUCCEEDED" and done.output.video_url
    listed = VideoSynthesis.list(model_name="wan2.6-r2v-flash", status="SUCCEEDED", page_size=100)
    assert listed.status_code == HTTPStatus.OK
    ids = [item["task_id"] for item in listed.output["data"]]
    assert task.output.task_id in ids


def test_cancel_pending_only(sdk: LiveServer, make_server, file_server: str) -> None:
    # An API-only server (no workers) keeps tasks PENDING; the shared server runs them.
    idle = make_server(render_threads=0)
    dashscope.base_http_api_url = idle.api
    task = VideoSynthesis.async_call(model="wan2.6-r2v-flash", prompt="character1 waves.",
                                     reference_urls=[f"{file_server}/object.png"], size="1280*720", duration=2)
    rsp = VideoSynthesis.cancel(task)
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert VideoSynthesis.fetch(task).output.task_status == "CANCELED"
    again = VideoSynthesis.cancel(task)
    assert again.status_code == 400 and again.code == "UnsupportedOperation"
    # A RUNNING or finished task cannot be canceled either.
    dashscope.base_http_api_url = sdk.api
    done = VideoSynthesis.call(model="wan2.6-r2v-flash", prompt="character1 waves.",
                               reference_urls=[f"{file_server}/object.png"], size="1280*720", duration=2)
    refused = VideoSynthesis.cancel(done.output.task_id)
    assert refused.status_code == 400 and refused.code == "UnsupportedOperation"


def test_aio_video_synthesis(sdk: LiveServer, file_server: str) -> None:
    async def go() -> None:
        rsp = await AioVideoSynthesis.call(model="wan2.6-r2v-flash", prompt="character1 nods.",
                                           reference_urls=[f"{file_server}/person2.mp4"], size="1280*720",
                                           duration=2, audio=True, seed=3)
        assert rsp.output.task_status == "SUCCEEDED", rsp
        assert_contract_mp4(download(rsp.output.video_url), 1280, 720, 2, audio=True)
        task = await AioVideoSynthesis.async_call(model="wan2.6-r2v-flash", prompt="character1 nods.",
                                                  reference_urls=[f"{file_server}/face.webp"], size="1280*720",
                                                  duration=2)
        fetched = await AioVideoSynthesis.fetch(task)
        assert fetched.output.task_id == task.output.task_id
        done = await AioVideoSynthesis.wait(task)
        assert done.output.task_status == "SUCCEEDED"

    asyncio.run(go())


def test_v2_client_videos(server: LiveServer, file_server: str, media_dir: Path) -> None:
    client = dashscope.Client(api_key=KEY, base_url=server.api)
    job = client.videos.jobs.create(
        model="wan2.7-r2v", prompt="Video 1 talks to Image 1.",
        media=[{"type": "reference_video", "url": f"{file_server}/person1.mp4"},
               {"type": "reference_image", "url": f"file://{media_dir / 'face.webp'}"}],
        resolution="720P", ratio="16:9", duration=2, prompt_extend=False, watermark=False, seed=1)
    job = client.videos.jobs.wait(job)
    assert job.status == "SUCCEEDED", job
    assert_contract_mp4(download(job.video_url), 1280, 720, 2, audio=True)
    listed = client.videos.jobs.list(page_size=50)
    assert job.task_id in [t.task_id for t in listed.tasks]
