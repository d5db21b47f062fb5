"""Mp4Writer writes exactly the contract's MP4, byte-identical for identical input."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from openr2v.media.encode import Mp4Writer, rgb_to_yuv420, yuv420_planes
from tests.mediagen import tone

ROOT = Path(__file__).resolve().parents[2]


def _frames(w: int, h: int, n: int, seed: int = 0) -> list[np.ndarray]:
    """Sliding 16-px blocks of random colour: moving content that 4:2:0 can still represent well."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 16, 2 * w // 16, 3), dtype=np.uint8).repeat(16, 0).repeat(16, 1)
    return [np.ascontiguousarray(base[:, (4 * i) % w:(4 * i) % w + w]) for i in range(n)]


def _write(path: Path, frames: list[np.ndarray], audio: np.ndarray | None, fps: int = 30) -> Path:
    h, w = frames[0].shape[:2]
    with Mp4Writer(path, w, h, len(frames), fps=fps, audio=audio, preset="ultrafast") as writer:
        for f in frames:
            writer.write(f)
    return path


def _streams(path: Path) -> dict[str, object]:
    raw = path.read_bytes()
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        return {
            "codec": v.codec_context.name, "pix_fmt": v.codec_context.pix_fmt,
            "size": (v.codec_context.width, v.codec_context.height), "fps": float(v.average_rate),
            "frames": sum(1 for _ in c.decode(video=0)), "video_seconds": float(v.duration * v.time_base),
            "audio": None if a is None else (a.codec_context.name, a.codec_context.sample_rate, a.layout.name,
                                             float(a.duration * a.time_base)),
            "faststart": raw.find(b"moov") < raw.find(b"mdat"),
        }


@pytest.mark.parametrize("seconds", [2, 5])
def test_exact_video_with_audio(tmp_path: Path, seconds: int) -> None:
    frames = _frames(320, 240, 30 * seconds)
    facts = _streams(_write(tmp_path / "a.mp4", frames, tone(seconds + 1.0, 220.0)))
    assert facts["codec"] == "h264" and facts["pix_fmt"] == "yuv420p" and facts["size"] == (320, 240)
    assert facts["fps"] == 30 and facts["frames"] == 30 * seconds
    assert facts["video_seconds"] == pytest.approx(seconds, abs=1e-6)
    codec, rate, layout, audio_seconds = facts["audio"]  # type: ignore[misc]
    assert (codec, rate, layout) == ("aac", 48000, "stereo")
    assert audio_seconds == pytest.approx(seconds, abs=1e-6)  # trimmed to the video, not AAC-frame rounded
    assert facts["faststart"]


def test_no_audio_stream_without_audio(tmp_path: Path) -> None:
    facts = _streams(_write(tmp_path / "s.mp4", _frames(320, 240, 45), None))
    assert facts["audio"] is None and facts["frames"] == 45


def test_short_audio_is_padded(tmp_path: Path) -> None:
    facts = _streams(_write(tmp_path / "p.mp4", _frames(160, 120, 60), tone(0.5, 300.0)))
    assert facts["audio"][3] == pytest.approx(2.0, abs=1e-6)  # type: ignore[index]


def test_identical_input_gives_identical_bytes(tmp_path: Path) -> None:
    frames = _frames(320, 240, 40, seed=3)
    audio = tone(2.0, 180.0)
    a = _write(tmp_path / "a.mp4", frames, audio).read_bytes()
    b = _write(tmp_path / "b.mp4", frames, audio).read_bytes()
    assert a == b


_ENCODE_IN_CHILD = """
import sys, hashlib, av, numpy as np
from pathlib import Path
from openr2v.media.encode import Mp4Writer
with av.open(sys.argv[1]) as c:
    frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)][:45]
out = Path(sys.argv[2])
with Mp4Writer(out, 480, 640, len(frames), preset="veryfast") as w:
    for f in frames:
        w.write(f)
print(hashlib.sha256(out.read_bytes()).hexdigest())
"""


def test_bytes_do_not_depend_on_heap_contents(tmp_path: Path) -> None:
    """x264's mb-tree once made the bytes follow uninitialised memory; MALLOC_PERTURB_ exposes that."""
    source = ROOT / "assets" / "demo" / "role2.mp4"
    digests = set()
    for perturb in ("1", "170"):
        env = dict(os.environ, MALLOC_PERTURB_=perturb)
        out = subprocess.run([sys.executable, "-c", _ENCODE_IN_CHILD, str(source), str(tmp_path / f"{perturb}.mp4")],
                             env=env, capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_yuv420_roundtrip(tmp_path: Path) -> None:
    frames = _frames(320, 240, 30, seed=5)
    with Mp4Writer(tmp_path / "y.mp4", 320, 240, 30, preset="ultrafast", crf=12) as writer:
        for f in frames:
            writer.write_yuv420(rgb_to_yuv420(f))
    with av.open(str(tmp_path / "y.mp4")) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 30
    mse = np.mean((decoded[10].astype(float) - frames[10].astype(float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30
    y, u, v = yuv420_planes(rgb_to_yuv420(frames[0]))
    assert y.shape == (240, 320) and u.shape == v.shape == (120, 160)


def test_misuse_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        Mp4Writer(tmp_path / "odd.mp4", 321, 240, 10)
    writer = Mp4Writer(tmp_path / "short.mp4", 320, 240, 10, preset="ultrafast")
    writer.write(_frames(320, 240, 1)[0])
    with pytest.raises(ValueError, match="1 of 10 frames"):
        writer.close()
    with pytest.raises(ValueError, match="320"):
        Mp4Writer(tmp_path / "x.mp4", 320, 240, 1).write(np.zeros((10, 10, 3), np.uint8))


def test_abort_removes_the_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "gone.mp4"
    with pytest.raises(RuntimeError), Mp4Writer(path, 320, 240, 30, preset="ultrafast") as writer:
        writer.write(_frames(320, 240, 1)[0])
        raise RuntimeError("stop")
    assert not path.exists()


def test_a_writer_closed_early_or_aborted_leaves_no_audio_thread(tmp_path: Path) -> None:
    long_audio = tone(30.0, 220.0)
    writer = Mp4Writer(tmp_path / "short.mp4", 320, 240, 900, audio=long_audio, preset="ultrafast")
    writer.write(_frames(320, 240, 1)[0])
    with pytest.raises(ValueError, match="1 of 900 frames"):
        writer.close()
    with pytest.raises(RuntimeError), Mp4Writer(tmp_path / "gone.mp4", 320, 240, 900, audio=long_audio,
                                                preset="ultrafast") as w:
        w.write(_frames(320, 240, 1)[0])
        raise RuntimeError("stop")
    assert not (tmp_path / "gone.mp4").exists()
    assert not [t for t in threading.enumerate() if t.name == "openr2v-aac"]


def test_an_audio_the_encoder_refuses_fails_the_writer(tmp_path: Path) -> None:
    """The AAC is encoded in a thread of its own: its failure still reaches the caller, as the writer's."""
    audio = np.zeros((2, 96_000), np.float32)
    audio[:, 5000:] = np.nan  # FFmpeg's AAC encoder refuses NaN input
    with pytest.raises(av.FFmpegError), Mp4Writer(tmp_path / "nan.mp4", 320, 240, 60, audio=audio,
                                                  preset="ultrafast") as writer:
        for frame in _frames(320, 240, 60):
            writer.write(frame)
    assert not (tmp_path / "nan.mp4").exists()


def test_a_buffer_refilled_after_each_write_gives_the_same_video(tmp_path: Path) -> None:
    """``write_yuv420`` hands x264 the caller's buffer itself (no copy): it must be free again on return, as
    the compositor refills its few buffers in turn."""
    frames = [rgb_to_yuv420(f) for f in _frames(320, 240, 40)]
    outputs = []
    for name, reuse in (("own.mp4", False), ("reused.mp4", True)):
        shared = np.empty_like(frames[0])
        with Mp4Writer(tmp_path / name, 320, 240, len(frames), preset="ultrafast", audio=tone(2.0, 220.0)) as w:
            for f in frames:
                if reuse:
                    shared[:] = f
                w.write_yuv420(shared if reuse else f.copy())
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
