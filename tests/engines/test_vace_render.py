"""The vace engine on a tiny, randomly initialised WanVACE pipeline (CPU, seconds): offline loading,
the request mapping (references, first frame, shots, long shots), the contract MP4, seeds,
cancellation, and a two-shot DashScope request through a live server."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openr2v.domain.prompt import plan_prompt
from openr2v.domain.request import GenerationRequest
from openr2v.engines.base import RenderJob, ResolvedReference
from openr2v.engines.vace.loader import OFFLINE_ENV
from openr2v.engines.vace.options import VaceOptions
from openr2v.errors import Canceled
from openr2v.media.audio import decode_audio, room_tone
from openr2v.media.probe import probe
from openr2v.media.visemes import Phoneme
from tests.helpers import assert_contract_mp4
from tests.speech_timing import timing_faults

TWO_SHOTS = ("Shot 1 [0-1s]: Wide shot, character1 says to character2: 'Hello there.' "
             "Shot 2 [1-2s]: Close-up of character2 in front of character3.")
TINY_AREA = 48 * 32  # the 16:9 contract sizes render at 48x32, then scale to the contract
SMALL = {"width": 320, "height": 180}  # engine tests that check no size: less to scale and encode


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tiny pipeline in diffusers format, built without any download (needs the `vace` extra)."""
    try:
        import torch
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("torch is missing: install the `vace` extra (make venv does)")
        pytest.skip("torch is missing: pip install -e '.[vace]'")
    from tests.engines.tiny_vace import build_tiny_vace

    # One intra-op thread: the tiny model's ops are far too small to share, and on a busy 2-core machine
    # OpenMP workers spin against other processes (10-30x slower with 2 threads under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield build_tiny_vace(tmp_path_factory.mktemp("weights") / "tiny-wan-vace")
    torch.set_num_threads(threads)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail any connect or name lookup that leaves the machine (loopback stays open for our servers)."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def local(host: object) -> bool:
        if host in (None, "localhost", b"localhost"):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def guarded(address: Any, family: int) -> None:
        if family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
            attempts.append(f"connect {address}")
            raise OSError(errno.ENETUNREACH, f"network disabled by the test: connect to {address}")

    def connect(self: socket.socket, address: Any) -> None:
        guarded(address, self.family)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guarded(address, self.family)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not local(host):
            attempts.append(f"lookup {host}")
            raise socket.gaierror(socket.EAI_NONAME, f"network disabled by the test: lookup of {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    # The guard guards: a hub lookup and a direct connect are both refused (and nothing leaves).
    for probe_call in (lambda: socket.create_connection(("huggingface.co", 443), timeout=1),
                       lambda: socket.create_connection(("192.0.2.1", 443), timeout=1)):
        with pytest.raises(OSError):
            probe_call()
    assert len(attempts) == 2
    attempts.clear()
    yield attempts
    assert attempts == [], f"network touched: {attempts}"


class Spy:
    """Wraps the pipeline and records each call's arguments and frames."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.calls: list[tuple[dict[str, Any], np.ndarray]] = []

    def __call__(self, **kwargs: Any) -> Any:
        out = self.pipe(**kwargs)
        self.calls.append((kwargs, np.asarray(out.frames[0])))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipe, name)


def options(model: Path, **kw: Any) -> VaceOptions:
    values: dict[str, Any] = dict(model=model, max_area=TINY_AREA, steps=2, preset="ultrafast")
    values.update(kw)
    return VaceOptions(**values)


def resolved(label: str, path: Path) -> ResolvedReference:
    info = probe(path)
    return ResolvedReference(label=label, kind=info.kind, path=path, info=info)


def make_job(tmp_path: Path, refs: list[ResolvedReference], prompt: str, name: str = "job", **kw: Any) -> RenderJob:
    (tmp_path / name).mkdir()
    values: dict[str, Any] = dict(task_id=name, request=GenerationRequest(model="wan2.6-r2v", prompt=prompt),
                                  references=refs, width=1280, height=720, duration=2, fps=30, audio=False,
                                  watermark=False, seed=7, workdir=tmp_path / name,
                                  plan=plan_prompt(prompt, [r.label for r in refs], 2, "multi", 7).as_dict())
    values.update(kw)
    return RenderJob(**values)


def uint8(frame: Any) -> np.ndarray:
    return np.asarray(frame.convert("RGB"), dtype=np.int16)


def test_loads_offline_and_maps_the_request(tmp_path: Path, tiny_model: Path, media_dir: Path,
                                            no_network: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from openr2v.engines.vace.engine import VaceEngine

    for name in OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    engine = VaceEngine(options(tiny_model))
    assert {k: os.environ.get(k) for k in OFFLINE_ENV} == OFFLINE_ENV  # set before diffusers looked
    spy = engine.loaded.pipe = Spy(engine.loaded.pipe)
    refs = [resolved("character1", media_dir / "person1.mp4"), resolved("character2", media_dir / "object.png"),
            resolved("character3", media_dir / "background.jpg")]
    first = resolved("first frame", media_dir / "frame.bmp")
    job = make_job(tmp_path, refs, TWO_SHOTS, audio=True, watermark=True, first_frame=first,
                   request=GenerationRequest(model="wan2.6-r2v", prompt=TWO_SHOTS, negative_prompt="blurry, dark"))
    seen: list[int] = []
    result = engine.render(job, seen.append, lambda: False)

    assert_contract_mp4(result.path, 1280, 720, 2, audio=True)
    notes = result.notes
    assert notes["internal_size"] == [48, 32] and "scaled and centre-cropped to 1280x720" in notes["size_adjustment"]
    assert job.extra["vace"]["internal_size"] == [48, 32]  # what the worker keeps on the task
    assert notes["watermark"] is True and notes["audio_sources"][0] == "room tone"
    assert notes["references"]["character3"]["role"] == "background"
    assert [s["frames"] for s in notes["shots"]] == [[0, 30], [30, 60]]
    # The line's phoneme timeline (for a lip-sync stage) matches the speech in the output's audio.
    (line,) = notes["lines"]
    assert line["speaker"] == "character1" and 0 <= line["start"] < line["end"] <= 1.0
    phonemes = [Phoneme(a, b, sym) for a, b, sym, _ in line["phonemes"]]
    assert [p.symbol for p in phonemes if p.viseme != "rest"][:3] == ["h", "ə", "l"]  # "Hello"
    audio = decode_audio(result.path, channels=1)[0, :96_000] - room_tone(2, seed=job.seed)[0]
    window = audio[int(line["start"] * 48_000):int(line["end"] * 48_000)]
    assert timing_faults(window, 48_000, phonemes, t0=line["start"], margin=0.03) == []  # AAC frames: ~21 ms
    assert seen[0] == 0 and seen[-1] == 100 and seen == sorted(seen) and len(seen) > 4
    # One call per shot, 4k+1 frames at 16 fps covering 1 s each, the same references each time.
    assert len(spy.calls) == 2
    (one, _), (two, _) = spy.calls
    assert one["num_frames"] == two["num_frames"] == 17 and (one["width"], one["height"]) == (48, 32)
    assert one["negative_prompt"] == "blurry, dark" and one["num_inference_steps"] == 2
    assert one["reference_images"] == two["reference_images"] and len(one["reference_images"]) == 3
    assert "character1" not in one["prompt"] and "Hello there" not in one["prompt"]
    assert one["prompt"] == notes["shots"][0]["prompt"] and two["prompt"] != one["prompt"]
    # The object is cut out on white; the background stays whole.
    obj, background = one["reference_images"][1], one["reference_images"][2]
    corners = uint8(obj)[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners >= 250).all(), corners
    assert background.size == (1024, 576)
    # The first frame is conditioning frame 0 of shot 1 only: known (black mask), the rest to generate.
    video, mask = one["video"], one["mask"]
    assert len(video) == len(mask) == 17 and video[0].size == (48, 32)
    assert uint8(mask[0]).max() == 0 and all(uint8(m).min() == 255 for m in mask[1:])
    assert two["video"] is None and two["mask"] is None
    from openr2v.engines.common.sources import fit_still, load_still

    expected = np.asarray(fit_still(load_still(first.path).convert("RGB"), 48, 32), dtype=np.int16)
    assert np.abs(uint8(video[0]) - expected).max() <= 2


def test_a_long_shot_continues_from_its_last_frame(tmp_path: Path, tiny_model: Path, media_dir: Path) -> None:
    from openr2v.engines.vace.engine import VaceEngine

    engine = VaceEngine(options(tiny_model, max_frames=9, interpolation="nearest"))
    spy = engine.loaded.pipe = Spy(engine.loaded.pipe)
    job = make_job(tmp_path, [resolved("character1", media_dir / "object.png")], "character1 spins slowly.",
                   plan=plan_prompt("character1 spins slowly.", ["character1"], 2, "single", 7).as_dict(),
                   **SMALL)
    result = engine.render(job, lambda p: None, lambda: False)
    assert_contract_mp4(result.path, 320, 180, 2, audio=False)
    # 2 s need 33 model frames: four calls of 9, each after the first starting on the last frame before it.
    assert [kw["num_frames"] for kw, _ in spy.calls] == [9, 9, 9, 9]
    assert spy.calls[0][0]["video"] is None
    for (_, before), (kw, _) in zip(spy.calls, spy.calls[1:], strict=False):
        last = (np.clip(before[-1], 0, 1) * 255 + 0.5).astype(np.int16)
        assert np.abs(uint8(kw["video"][0]) - last).max() <= 1
        assert uint8(kw["mask"][0]).max() == 0
    assert result.notes["shots"][0]["calls"] == 4 and result.notes["shots"][0]["model_frames"] == 33


def test_seeds_and_cancellation(tmp_path: Path, tiny_model: Path, media_dir: Path) -> None:
    from openr2v.engines.vace.engine import VaceEngine

    engine = VaceEngine(options(tiny_model))
    refs = [resolved("character1", media_dir / "object.png")]
    prompt = "character1 rolls across the room."

    def render(name: str, seed: int) -> bytes:
        result = engine.render(make_job(tmp_path, refs, prompt, name, seed=seed, **SMALL), lambda p: None,
                               lambda: False)
        return result.path.read_bytes()

    first = render("a", 5)
    assert render("b", 5) == first and render("c", 6) != first

    reported: list[int] = []
    job = make_job(tmp_path, refs, prompt, "cancel", **SMALL)
    with pytest.raises(Canceled):  # asked once the first denoising step is done: the render stops at the next
        engine.render(job, reported.append, lambda: reported[-1] > 5)
    assert reported[-1] < 100
    assert not any(job.workdir.iterdir())  # no output, no partial file


def test_memory_options_and_scheduler_shift(tiny_model: Path) -> None:
    from openr2v.engines.vace.engine import VaceEngine

    engine = VaceEngine(options(tiny_model, offload="model", vae_tiling=True, flow_shift=3.0))
    notes = engine.loaded.notes
    assert notes["device"] == "cpu" and notes["dtype"] == "float32" and notes["offload"] == "model ignored on cpu"
    assert engine.loaded.pipe.vae.use_tiling and engine.loaded.pipe.scheduler.config.shift == 3.0
    assert not engine.loaded.pipe.transformer.training  # weights in eval mode (dropout off)


def test_two_shot_request_through_the_api(make_server: Any, file_server: str, tiny_model: Path,
                                          no_network: list[str]) -> None:
    import httpx

    srv = make_server(engine="vace", vace_model=tiny_model, vace_max_area=TINY_AREA, vace_steps=2, render_threads=1)
    body = {"model": "wan2.6-r2v-flash",
            "input": {"prompt": TWO_SHOTS, "negative_prompt": "low quality",
                      "reference_urls": [f"{file_server}/person1.mp4", f"{file_server}/object.png",
                                         f"{file_server}/background.jpg"]},
            "parameters": {"size": "1280*720", "duration": 2, "audio": True, "watermark": True, "seed": 11}}
    with srv.client() as c:
        r = c.post("/api/v1/services/aigc/video-generation/video-synthesis", json=body,
                   headers={"X-DashScope-Async": "enable"})
    assert r.status_code == 200, r.text
    done = srv.wait(r.json()["output"]["task_id"])
    assert done["output"]["task_status"] == "SUCCEEDED", done
    video = httpx.get(done["output"]["video_url"], timeout=60)
    assert video.status_code == 200
    assert_contract_mp4(video.content, 1280, 720, 2, audio=True)
    engine = srv.app.state.runtime.runner.engine_for("wan2.6-r2v-flash")
    assert engine.name == "vace" and engine.loaded.notes["model"] == "tiny-wan-vace"
    # What the model really rendered is kept on the task.
    task = srv.app.state.runtime.store.get(done["output"]["task_id"])
    assert task.extra["vace"]["internal_size"] == [48, 32] and task.extra["vace"]["model_frames"] == [17, 17]
    assert "centre-cropped to 1280x720" in task.extra["vace"]["size_adjustment"]
