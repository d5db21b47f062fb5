"""OPENR2V_VACE_DEVICES: one pipeline per device, a task's shots side by side (``cpu,cpu`` stands in for two
GPUs), joined with hard cuts into the same bytes as one device; cancel and failure stop every device; a bad
device list refuses to start, naming the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest

from openr2v.config import Settings
from openr2v.domain.prompt import plan_prompt
from openr2v.engines.base import RenderJob
from openr2v.errors import Canceled, InternalError
from tests.engines.conftest import detect_cuts
from tests.engines.test_vace_render import SMALL, Spy, make_job, options, resolved
from tests.engines.test_vace_render import tiny_model as tiny_model  # fixture
from tests.helpers import assert_contract_mp4

FOUR_SHOTS = ("Shot 1 [0-1s]: Wide shot, character1 walks in the park. "
              "Shot 2 [1-2s]: Close-up of character1, a red car on the street. "
              "Shot 3 [2-3s]: Medium shot, a blue dog runs left at night. "
              "Shot 4 [3-4s]: The camera pans right over a green room.")
CUTS = [30, 60, 90]


@pytest.fixture(scope="module")
def engines(tiny_model: Path) -> dict[str, Any]:
    from openr2v.engines.vace.engine import VaceEngine

    return {"one": VaceEngine(options(tiny_model)), "two": VaceEngine(options(tiny_model, devices=("cpu", "cpu")))}


def four_shot_job(tmp_path: Path, media_dir: Path, name: str, **kw: Any) -> RenderJob:
    return make_job(tmp_path, [resolved("character1", media_dir / "object.png")], FOUR_SHOTS, name, duration=4,
                    plan=plan_prompt(FOUR_SHOTS, ["character1"], 4, "multi", 7).as_dict(), **{**SMALL, **kw})


def keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as box:
        return [i for i, packet in enumerate(p for p in box.demux(video=0) if p.dts is not None) if packet.is_keyframe]


def test_four_shots_on_two_devices_are_the_one_device_bytes(tmp_path: Path, engines: dict[str, Any],
                                                            media_dir: Path) -> None:
    two = engines["two"]
    assert [p.device for p in two.pipelines] == ["cpu", "cpu"] and two.pipelines[0].pipe is not two.pipelines[1].pipe
    serial = engines["one"].render(four_shot_job(tmp_path, media_dir, "one", audio=True), lambda p: None,
                                   lambda: False)
    seen: list[int] = []
    parallel = two.render(four_shot_job(tmp_path, media_dir, "two", audio=True), seen.append, lambda: False)

    assert parallel.path.read_bytes() == serial.path.read_bytes()
    assert_contract_mp4(parallel.path, SMALL["width"], SMALL["height"], 4, audio=True)
    notes = parallel.notes
    assert notes["devices"] == ["cpu", "cpu"] and serial.notes["devices"] == ["cpu"]
    shots = notes["shots"]
    assert [s["frames"] for s in shots] == [[0, 30], [30, 60], [60, 90], [90, 120]]
    # Both devices rendered shots, side by side: some shot starts before the one before it has ended.
    assert {s["pipeline"] for s in shots} == {0, 1} and {s["device"] for s in shots} == {"cpu"}
    windows = [s["seconds"] for s in shots]
    assert any(b[0] < a[1] for a, b in zip(windows, windows[1:], strict=False)), windows
    serial_windows = [s["seconds"] for s in serial.notes["shots"]]
    assert all(b[0] >= a[1] for a, b in zip(serial_windows, serial_windows[1:], strict=False)), serial_windows
    # The work: 4 calls of 2 steps at guidance 5 (2 passes a step), split between the devices.
    work = notes["device_work"]
    assert notes["denoising_steps"] == 8 and notes["transformer_passes"] == {"high": 16}
    assert sum(w["transformer_passes"] for w in work) == 16 and all(w["transformer_passes"] > 0 for w in work)
    assert sorted(i for w in work for i in w["shots"]) == [1, 2, 3, 4]
    assert serial.notes["device_work"][0]["transformer_passes"] == 16
    assert seen[0] == 0 and seen[-1] == 100 and seen == sorted(seen)  # progress from both threads, in order
    # Hard cuts at the planned frames: each shot's segment starts on a keyframe, and the picture changes there.
    assert set(CUTS) <= set(keyframes(parallel.path))
    found = detect_cuts(parallel.path)
    assert all(any(abs(f - c) <= 1 for f in found) for c in CUTS), found
    assert not list(parallel.path.parent.glob(".shot-*.mp4"))  # segments removed after the join


def test_a_cancel_stops_both_devices(tmp_path: Path, engines: dict[str, Any], media_dir: Path) -> None:
    reported: list[int] = []
    job = four_shot_job(tmp_path, media_dir, "cancel")
    with pytest.raises(Canceled):  # asked once a denoising step is done: every device stops at its next step
        engines["two"].render(job, reported.append, lambda: reported[-1] > 5)
    assert reported[-1] < 100
    assert not any(job.workdir.iterdir())  # no output, no segment, no partial file


def test_a_failing_device_fails_the_task_and_stops_the_other(tmp_path: Path, engines: dict[str, Any],
                                                            media_dir: Path) -> None:
    two = engines["two"]
    good, broken = two.pipelines
    real = broken.pipe

    class Lost(Spy):
        def __call__(self, **kwargs: Any) -> Any:
            raise RuntimeError("device lost")

    good.pipe = spy = Spy(good.pipe)
    broken.pipe = Lost(real)
    try:
        job = four_shot_job(tmp_path, media_dir, "broken")
        with pytest.raises(InternalError, match=r"Shot \d failed on cpu \(pipeline 2\): RuntimeError: device lost"):
            two.render(job, lambda p: None, lambda: False)
    finally:
        good.pipe, broken.pipe = spy.pipe, real
    # Unstopped, the good device would have rendered the other three shots; it stops at its next step.
    assert len(spy.calls) <= 1, len(spy.calls)
    assert not any(job.workdir.iterdir())


def test_a_bad_device_list_refuses_to_start(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from openr2v.engines import engine_resolver
    from openr2v.engines.vace import loader
    from openr2v.engines.vace.engine import VaceEngine

    def start(**kw: Any) -> None:
        engine_resolver(Settings(data_dir=tmp_path, engine_overrides="wan2.7-r2v=vace", vace_model=tiny_model, **kw))

    for kw, words in (({"vace_devices": "cpu,gpu7"}, "OPENR2V_VACE_DEVICES=cpu,gpu7: 'gpu7' is not a device"),
                      ({"vace_devices": "cuda,cuda:0"}, "OPENR2V_VACE_DEVICES=cuda,cuda:0: cuda:0 named twice"),
                      ({"vace_devices": "all,cpu"}, "`all` stands alone"),
                      ({"vace_devices": "cpu,cpu", "vace_device": "cuda:1"},
                       "OPENR2V_VACE_DEVICE=cuda:1 and OPENR2V_VACE_DEVICES=cpu,cpu are both set")):
        with pytest.raises(ValueError) as caught:
            start(**kw)
        assert words in str(caught.value), caught.value
    monkeypatch.setenv("OPENR2V_VACE_DEVICES", "cpu;cpu")  # the environment variable is the setting's name
    assert Settings().vace_devices == "cpu;cpu"
    with pytest.raises(ValueError, match="OPENR2V_VACE_DEVICES=cpu;cpu: 'cpu;cpu' is not a device"):
        start()
    monkeypatch.delenv("OPENR2V_VACE_DEVICES")
    # GPUs torch does not see: refused before any weights are read.
    monkeypatch.setattr(loader, "_load", lambda *a: pytest.fail("weights loaded for a device that is not there"))
    for devices in (("cuda:7",), ("all",)):
        with pytest.raises(ValueError, match=rf"OPENR2V_VACE_DEVICES={devices[0]}: .*torch sees no CUDA device"):
            VaceEngine(options(tiny_model, devices=devices))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError) as caught:
        VaceEngine(options(tiny_model, devices=("cuda:0", "cuda:7")))
    assert str(caught.value) == ("OPENR2V_VACE_DEVICES=cuda:0,cuda:7: cuda:7 is not there, torch sees 2 CUDA devices "
                                 "(cuda:0 to cuda:1)")
    assert loader.devices(options(tiny_model, devices=("all",))) == ["cuda:0", "cuda:1"]
    assert loader.devices(options(tiny_model, devices=("cuda", "cuda:1"))) == ["cuda:0", "cuda:1"]
