"""What the ``videos`` engine sends to each kind of server, and what it makes of what comes back, against a stand-in
GPU server speaking their ``/v1/videos`` over a socket (tests/engines/fake_videos_server.py): vLLM-Omni's
image-to-video and speech-to-video shapes, SGLang's multipart-with-extra_body and JSON, FastVideo's JSON; Wan's
4k+1 frames conformed to the contract; shot by shot, one reference a request, a failing shot stopping the rest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openr2v.config import Settings
from openr2v.domain.prompt import plan_prompt
from openr2v.engines import engine_resolver
from openr2v.engines.base import RenderJob
from openr2v.engines.upstream.engine import UpstreamError
from openr2v.engines.upstream.videos import VideosEngine
from openr2v.errors import Canceled
from tests.engines.fake_videos_server import FakeVideos, fake_videos_server
from tests.engines.test_dashscope_upstream_engine import Recorder, after, make_job
from tests.helpers import assert_contract_mp4


@pytest.fixture
def gpu(tmp_path: Path) -> Iterator[FakeVideos]:
    with fake_videos_server(tmp_path / "gpu") as server:
        yield server


def run(gpu: FakeVideos, job: RenderJob, **kw: Any) -> Any:
    engine = VideosEngine(gpu.url, "gpu-key", poll_seconds=0.05, max_poll_seconds=0.2, **kw)
    return engine.render(job, lambda p: None, lambda: False)


def test_vllm_omni_image_to_video_is_conformed(gpu: FakeVideos, tmp_path: Path, media_dir: Path,
                                               file_server: str) -> None:
    job = make_job(tmp_path, media_dir, file_server, names=("object.png", "person1.mp4"), audio=True)
    job.request.negative_prompt = "blurry"
    job.request.extensions["sampling"] = {"num_inference_steps": 40, "guidance_scale": 4.5, "lora": {"name": "x"}}
    result = run(gpu, job)
    [sent] = gpu.creates
    f = sent["fields"]
    assert (f["prompt"], f["size"], f["seconds"], f["width"], f["height"], f["num_frames"], f["fps"], f["seed"]) == (
        "character1 waves.", "1280x720", "2", "1280", "720", "60", "30", "3")
    assert (f["negative_prompt"], f["generate_sound"], f["num_inference_steps"], f["guidance_scale"]) == (
        "blurry", "true", "40", "4.5")
    assert json.loads(f["lora"]) == {"name": "x"} and "model" not in f  # the server's own model
    assert sent["files"]["input_reference"][1] == "image/png"  # the first image, as a file
    # Wan answers 61 frames: cut to the contract's 60, with the audio
    assert_contract_mp4(result.path, 1280, 720, 2, audio=True)
    assert result.notes["upstream_conformed"] is True and result.notes["upstream_flavor"] == "vllm-omni"


def test_vllm_omni_speech_to_video(gpu: FakeVideos, tmp_path: Path, media_dir: Path, file_server: str) -> None:
    job = make_job(tmp_path, media_dir, file_server, model="wan2.7-r2v", names=("face.webp",), audio=True)
    job.references[0].voice_path = media_dir / "voice.mp3"
    run(gpu, job)
    [sent] = gpu.creates
    assert sent["files"] == {}  # image_reference is not combined with input_reference
    image = json.loads(sent["fields"]["image_reference"])["image_url"]
    audio = json.loads(sent["fields"]["audio_reference"])["audio_url"]
    assert image.startswith("data:image/webp;base64,") and audio.startswith("data:audio/mpeg;base64,")


def test_sglang_and_fastvideo_shapes(gpu: FakeVideos, tmp_path: Path, media_dir: Path, file_server: str) -> None:
    run(gpu, make_job(tmp_path, media_dir, file_server), flavor="sglang")
    run(gpu, make_job(tmp_path, media_dir, file_server, names=("person1.mp4",)), flavor="sglang")
    run(gpu, make_job(tmp_path, media_dir, file_server), flavor="fastvideo")
    with_file, json_body, fastvideo = gpu.creates
    assert "input_reference" in with_file["files"] and with_file["fields"]["seed"] == 3  # extra_body, decoded
    assert with_file["fields"]["width"] == 1280 and with_file["fields"]["num_frames"] == 60
    assert json_body["files"] == {} and json_body["fields"]["num_frames"] == 60 and json_body["fields"]["seed"] == 3
    assert fastvideo["fields"]["input_reference"].startswith("data:image/png;base64,")


def test_shot_by_shot_sends_one_reference_a_shot(gpu: FakeVideos, tmp_path: Path, media_dir: Path,
                                                 file_server: str) -> None:
    job = make_job(tmp_path, media_dir, file_server, names=("object.png", "face.webp"))
    job.request.prompt = "Shot 1 [0-1s]: character1 on a table. Shot 2 [1-2s]: character2 smiles."
    job.plan = plan_prompt(job.request.prompt, ["character1", "character2"], 2).as_dict()
    recorder = Recorder()
    job.save_extra = recorder
    result = run(gpu, job, shots="each")
    assert sorted(c["fields"]["prompt"] for c in gpu.creates) == ["character1 on a table.", "character1 smiles."]
    assert sorted(c["files"]["input_reference"][1] for c in gpu.creates) == ["image/png", "image/webp"]
    assert_contract_mp4(result.path, 1280, 720, 2, audio=False)
    assert len(recorder.saved[-1]["videos"]) == 2


def test_a_failing_shot_fails_the_task_and_deletes_the_others(gpu: FakeVideos, tmp_path: Path, media_dir: Path,
                                                              file_server: str) -> None:
    job = make_job(tmp_path, media_dir, file_server, names=("object.png", "face.webp"))
    job.request.prompt = "Shot 1 [0-1s]: character1 on a table. Shot 2 [1-2s]: character2 FAILS."
    job.plan = plan_prompt(job.request.prompt, ["character1", "character2"], 2).as_dict()
    with pytest.raises(UpstreamError, match="CUDA OOM") as e:
        run(gpu, job, shots="each")
    assert e.value.code == "engine_error"
    assert sorted(gpu.deleted) == sorted(c["id"] for c in gpu.creates)  # every upstream video of the task


@pytest.mark.parametrize(("overrides", "message"), [
    ({}, "OPENR2V_UPSTREAM_URL"),
    ({"upstream_url": "gpu-host:8091"}, "OPENR2V_UPSTREAM_URL"),
    ({"upstream_url": "http://gpu:8091", "upstream_flavor": "comfyui"}, "OPENR2V_UPSTREAM_FLAVOR"),
    ({"upstream_url": "http://gpu:8091", "upstream_shots": "some"}, "OPENR2V_UPSTREAM_SHOTS"),
])
def test_configuration_is_checked_at_start_up(tmp_path: Path, overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        engine_resolver(Settings(data_dir=tmp_path, engine="videos", **overrides))
    engine_resolver(Settings(data_dir=tmp_path, engine="videos", upstream_url="http://gpu:8091/v1"))


def test_a_lost_lease_leaves_the_videos_and_an_owner_cancel_deletes_them(gpu: FakeVideos, tmp_path: Path,
                                                                          media_dir: Path, file_server: str) -> None:
    engine = VideosEngine(gpu.url, poll_seconds=0.05, max_poll_seconds=0.2)
    recorder = Recorder()
    job = make_job(tmp_path, media_dir, file_server, recorder=recorder, owner_canceled=lambda: False)
    with pytest.raises(Canceled):  # this worker lost its lease after the create: the video stays for the next one
        engine.render(job, lambda p: None, after(2))
    [created] = gpu.creates
    assert gpu.deleted == [] and recorder.saved[-1]["videos"] == {"0": created["id"]}
    # The next worker resumes it (no second create) ...
    again = make_job(tmp_path, media_dir, file_server, extra={"upstream": recorder.saved[-1]})
    assert_contract_mp4(engine.render(again, lambda p: None, lambda: False).path, 1280, 720, 2, audio=False)
    assert len(gpu.creates) == 1
    # ... and an owner's cancel deletes upstream.
    job = make_job(tmp_path, media_dir, file_server, owner_canceled=lambda: True)
    with pytest.raises(Canceled):
        engine.render(job, lambda p: None, after(2))
    assert gpu.deleted == [gpu.creates[-1]["id"]]
