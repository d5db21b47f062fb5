"""CompositorEngine renders the contract's MP4 from real references: spec, watermark, first frame,
determinism, audio, cancellation."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from openr2v.domain.request import GenerationRequest
from openr2v.engines.base import RenderJob, ResolvedReference
from openr2v.engines.common.sources import fit_still, load_still
from openr2v.engines.compositor import CompositorEngine
from openr2v.errors import Canceled
from openr2v.media.audio import decode_audio, rms_dbfs
from openr2v.media.probe import probe
from tests.helpers import assert_contract_mp4

FAST = CompositorEngine(preset="ultrafast")


def resolved(label: str, path: Path, voice: Path | None = None) -> ResolvedReference:
    info = probe(path)
    return ResolvedReference(label=label, kind=info.kind, path=path, info=info, voice_path=voice,
                             voice_info=probe(voice) if voice else None)


@pytest.fixture(scope="module")
def four_refs(media_dir: Path) -> list[ResolvedReference]:
    """The wan2.6-r2v guide's four-reference shape: two people (videos), an object, a background."""
    return [resolved("character1", media_dir / "person1.mp4"), resolved("character2", media_dir / "person2.mp4"),
            resolved("character3", media_dir / "object.png"), resolved("character4", media_dir / "background.jpg")]


def make_job(tmp_path: Path, refs: list[ResolvedReference], name: str = "job", **kw: object) -> RenderJob:
    workdir = tmp_path / name
    workdir.mkdir()
    values: dict[str, object] = dict(task_id=name, request=GenerationRequest(model="wan2.6-r2v", prompt="p"),
                                     references=refs, width=1280, height=720, duration=2, fps=30, audio=True,
                                     watermark=False, seed=1, workdir=workdir)
    values.update(kw)
    return RenderJob(**values)  # type: ignore[arg-type]


def render(job: RenderJob, engine: CompositorEngine = FAST) -> tuple[Path, dict]:
    result = engine.render(job, lambda p: None, lambda: False)
    return result.path, result.notes


def decoded_frame(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24").astype(np.float64)
    raise IndexError(index)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255**2 / mse) if mse else float("inf")


def test_exact_spec_with_audio(tmp_path: Path, four_refs: list[ResolvedReference]) -> None:
    job = make_job(tmp_path, four_refs)
    result = FAST.render(job, lambda p: None, lambda: False)
    assert result.path == job.workdir / "output.mp4"
    assert (result.width, result.height, result.fps, result.frames, result.has_audio) == (1280, 720, 30, 60, True)
    assert_contract_mp4(result.path, 1280, 720, 2, audio=True)
    sound = decode_audio(result.path)
    assert sound.shape[1] == pytest.approx(2 * 48_000, abs=0.03 * 48_000)
    assert rms_dbfs(sound) > -50  # the room-tone bed (the prompt gives nobody a line)
    assert result.notes["background"] == "character4"
    roles = {label: c["role"] for label, c in result.notes["casting"].items()}
    assert roles == {"character1": "character", "character2": "character", "character3": "object",
                     "character4": "background"}
    # A reference's own audio is a voice model, never replayed (engines/common/sound.py).
    assert result.notes["audio_sources"] == ["room tone"]
    assert not list(job.workdir.glob(".*partial*"))


def test_exact_spec_silent(tmp_path: Path, four_refs: list[ResolvedReference]) -> None:
    result = FAST.render(make_job(tmp_path, four_refs, audio=False), lambda p: None, lambda: False)
    assert not result.has_audio
    assert_contract_mp4(result.path, 1280, 720, 2, audio=False)


def test_audio_is_never_silent(tmp_path: Path, media_dir: Path) -> None:
    """Images only: no voice anywhere, yet an audio video carries an audible room-tone bed."""
    refs = [resolved("character1", media_dir / "object.png"), resolved("character2", media_dir / "face.webp")]
    path, notes = render(make_job(tmp_path, refs, width=720, height=1280))
    assert notes["background"] == "derived from character1" and notes["audio_sources"] == ["room tone"]
    assert -55 < rms_dbfs(decode_audio(path)) < -35
    assert_contract_mp4(path, 720, 1280, 2, audio=True)


def test_voice_and_soundtrack_are_mixed(tmp_path: Path, media_dir: Path) -> None:
    refs = [resolved("Video 1", media_dir / "silent.mov", voice=media_dir / "voice.wav"),
            resolved("Image 1", media_dir / "object.png")]
    _, notes = render(make_job(tmp_path, refs, soundtrack=media_dir / "voice.mp3"))
    assert notes["audio_sources"] == ["room tone", "soundtrack"]  # the voice speaks only lines the prompt gives


def test_watermark_only_when_asked(tmp_path: Path, four_refs: list[ResolvedReference]) -> None:
    plain, _ = render(make_job(tmp_path, four_refs, "plain", audio=False))
    marked, notes = render(make_job(tmp_path, four_refs, "marked", audio=False, watermark=True))
    assert notes["watermark"] is True
    a, b = decoded_frame(plain, 30), decoded_frame(marked, 30)
    corner = (slice(int(0.88 * 720), 720), slice(int(0.8 * 1280), 1280))
    assert np.abs(a[corner] - b[corner]).mean() > 8
    assert (b[corner].mean(axis=2) > 200).sum() > 200  # white (semi-opaque) text
    assert (b[corner].max(axis=2) < 60).sum() > 200  # its dark outline and shadow
    elsewhere = (slice(0, 500), slice(0, 900))
    assert np.abs(a[elsewhere] - b[elsewhere]).mean() < 1.0


def test_frame_zero_is_the_first_frame(tmp_path: Path, media_dir: Path, four_refs: list[ResolvedReference]) -> None:
    first = resolved("first frame", media_dir / "frame.bmp")  # 800x600: cover-cropped to 16:9
    path, notes = render(make_job(tmp_path, four_refs, first_frame=first))
    assert notes["background"] == "first frame"  # shot 1's plate; later shots move to the background
    expected = np.asarray(fit_still(load_still(first.path), 1280, 720))
    assert psnr(decoded_frame(path, 0), expected) > 30
    assert psnr(decoded_frame(path, 45), expected) < 25  # the actors have faded in


def test_same_job_same_bytes(tmp_path: Path, four_refs: list[ResolvedReference]) -> None:
    engine = CompositorEngine()  # the default preset: the one whose rate control once broke determinism
    a, _ = render(make_job(tmp_path, four_refs, "a", watermark=True), engine)
    b, _ = render(make_job(tmp_path, four_refs, "b", watermark=True), engine)
    c, _ = render(make_job(tmp_path, four_refs, "c", watermark=True, seed=2), engine)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_progress_runs_from_0_to_100(tmp_path: Path, four_refs: list[ResolvedReference]) -> None:
    seen: list[int] = []
    FAST.render(make_job(tmp_path, four_refs, audio=False), seen.append, lambda: False)
    assert seen[0] == 0 and seen[-1] == 100 and seen == sorted(seen) and len(seen) > 5


def test_cancel_stops_the_render(tmp_path: Path, four_refs: list[ResolvedReference]) -> None:
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        return calls > 4  # after the preparation stages and a couple of frame batches

    job = make_job(tmp_path, four_refs)
    with pytest.raises(Canceled):
        FAST.render(job, lambda p: None, cancelled)
    assert list(job.workdir.iterdir()) == []  # neither an output nor a partial file
