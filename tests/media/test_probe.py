"""probe() identifies files by content and measures them; check_limits() maps limits to domain errors."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from openr2v.domain.models import AUDIO_LIMITS, IMAGE_LIMITS, VIDEO_LIMITS
from openr2v.errors import InputDownloadFailed, InvalidParameter, UnsupportedFileFormat
from openr2v.media.probe import MediaInfo, check_limits, probe, sniff_format
from tests import mediagen


@pytest.mark.parametrize(("name", "kind", "fmt", "size"), [
    ("object.png", "image", "png", (600, 600)),
    ("background.jpg", "image", "jpeg", (1280, 720)),
    ("face.webp", "image", "webp", (512, 512)),
    ("frame.bmp", "image", "bmp", (800, 600)),
])
def test_probe_images(media_dir: Path, name: str, kind: str, fmt: str, size: tuple[int, int]) -> None:
    info = probe(media_dir / name)
    assert (info.kind, info.format, (info.width, info.height)) == (kind, fmt, size)
    assert info.size_bytes == (media_dir / name).stat().st_size
    assert info.duration is None and not info.has_audio


def test_probe_video_with_audio(media_dir: Path) -> None:
    info = probe(media_dir / "person1.mp4")
    assert (info.kind, info.format, info.width, info.height) == ("video", "mp4", 480, 640)
    assert info.duration == pytest.approx(2.5, abs=0.05)
    assert info.fps == pytest.approx(30)
    assert info.has_audio and info.audio_codec == "aac" and info.video_codec == "h264"


def test_probe_mov_without_audio(media_dir: Path) -> None:
    info = probe(media_dir / "silent.mov")
    assert (info.kind, info.format, info.width, info.height) == ("video", "mov", 400, 400)
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert not info.has_audio


@pytest.mark.parametrize(("name", "fmt"), [("voice.wav", "wav"), ("voice.mp3", "mp3")])
def test_probe_audio(media_dir: Path, name: str, fmt: str) -> None:
    info = probe(media_dir / name)
    assert (info.kind, info.format, info.has_audio) == ("audio", fmt, True)
    assert info.duration == pytest.approx(3.0, abs=0.1)
    assert info.width is None


def test_content_wins_over_the_name(media_dir: Path, tmp_path: Path) -> None:
    shutil.copy(media_dir / "object.png", tmp_path / "photo.jpg")
    shutil.copy(media_dir / "person1.mp4", tmp_path / "picture.png")
    shutil.copy(media_dir / "voice.wav", tmp_path / "clip")
    assert probe(tmp_path / "photo.jpg").format == "png"
    assert probe(tmp_path / "picture.png").kind == "video"
    assert probe(tmp_path / "clip").format == "wav"


def _truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _bad_file(case: str, d: Path, media: Path) -> Path:
    """A file that must not probe: empty, not media, cut short, or magic bytes over garbage."""
    if case == "text":
        return media / "notanimage.png"
    if case.startswith("truncated-"):
        src = {"png": "object.png", "jpeg": "background.jpg", "mp4": "person1.mp4"}[case.split("-")[1]]
        data = (media / src).read_bytes()
        out = d / f"cut-{src}"
        out.write_bytes(data[: len(data) // 2])
        return out
    data = {
        "empty": b"",
        "garbage-mp4": b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20,
        "garbage-webp": b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x01" * 64,
        "garbage-wav": b"RIFF\x10\x00\x00\x00WAVEjunk" + b"\x00" * 8,
    }[case]
    out = d / case
    out.write_bytes(data)
    return out


@pytest.mark.parametrize("case", ["empty", "text", "truncated-png", "truncated-jpeg", "truncated-mp4",
                                  "garbage-mp4", "garbage-webp", "garbage-wav"])
def test_unreadable_files_are_unsupported(media_dir: Path, tmp_path: Path, case: str) -> None:
    with pytest.raises(UnsupportedFileFormat) as err:
        probe(_bad_file(case, tmp_path, media_dir), field="input.reference_urls[0]")
    assert err.value.message.startswith("input.reference_urls[0]:")
    assert err.value.param == "input.reference_urls[0]"


def test_decompression_bomb_is_refused_from_the_header(tmp_path: Path) -> None:
    # 50 megapixels of one colour compress to a few KB; decoding them would take ~150 MB.
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10_000, 5_000)).save(bomb)
    assert bomb.stat().st_size < 200_000
    started = time.monotonic()
    with pytest.raises(UnsupportedFileFormat, match="megapixels"):
        probe(bomb)
    assert time.monotonic() - started < 1.0


def test_sniff_bare_mp3_frame_and_mov_atoms() -> None:
    assert sniff_format(b"\xff\xfb\x90\x64" + b"\x00" * 28) == "mp3"
    assert sniff_format(b"\x00\x00\x00\x08wide" + b"\x00" * 24) == "mov"
    assert sniff_format(b"\x00\x00\x00\x14ftypqt  " + b"\x00" * 20) == "mov"
    assert sniff_format(b"GIF89a" + b"\x00" * 26) is None


# -- check_limits --------------------------------------------------------------------------------


def test_limits_accept_a_good_file(media_dir: Path) -> None:
    check_limits(probe(media_dir / "object.png"), IMAGE_LIMITS, "f", "image")
    check_limits(probe(media_dir / "person1.mp4"), VIDEO_LIMITS, "f", "video")
    check_limits(probe(media_dir / "voice.mp3"), AUDIO_LIMITS, "f", "audio")
    check_limits(probe(media_dir / "background.jpg"), IMAGE_LIMITS, "f", None)  # "jpg" in the list means jpeg


def test_limits_wrong_kind(media_dir: Path) -> None:
    with pytest.raises(UnsupportedFileFormat) as err:
        check_limits(probe(media_dir / "object.png"), VIDEO_LIMITS, "input.media[1].url", "video")
    assert "input.media[1].url" in err.value.message and "mp4, mov" in err.value.message
    assert err.value.param == "input.media[1].url"


def test_limits_format_not_accepted(media_dir: Path) -> None:
    limits = dataclasses.replace(IMAGE_LIMITS, formats=("jpeg", "png"))
    with pytest.raises(UnsupportedFileFormat, match=r"f: file format webp .* jpeg, png"):
        check_limits(probe(media_dir / "face.webp"), limits, "f", "image")


def test_limits_too_many_bytes(media_dir: Path) -> None:
    with pytest.raises(InputDownloadFailed, match="limit"):
        check_limits(probe(media_dir / "object.png"), dataclasses.replace(IMAGE_LIMITS, max_bytes=100), "f", "image")


def test_limits_sides(media_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter) as err:
        check_limits(probe(media_dir / "tiny.png"), IMAGE_LIMITS, "input.reference_urls[2]", "image")
    assert "input.reference_urls[2]" in err.value.message and "200x200" in err.value.message
    assert "360" in err.value.message
    wide = mediagen.make_image(tmp_path / "wide.png", 2100, 400, "png", seed=1)
    with pytest.raises(InvalidParameter, match="2100x400.*2000"):
        check_limits(probe(wide), IMAGE_LIMITS, "f", "image")


def test_limits_duration(tmp_path: Path) -> None:
    short = mediagen.make_video(tmp_path / "short.mp4", 320, 320, 1.0, audio=False, seed=1)
    with pytest.raises(InvalidParameter, match=r"f: the video lasts 1\.00 s; the minimum is 2 s"):
        check_limits(probe(short), VIDEO_LIMITS, "f", "video")
    long = MediaInfo(kind="audio", format="wav", size_bytes=10, duration=31.0, has_audio=True)
    with pytest.raises(InvalidParameter, match="31.00 s; the maximum is 30 s"):
        check_limits(long, AUDIO_LIMITS, "f", "audio")
    # Container rounding is tolerated at the edge.
    edge = MediaInfo(kind="video", format="mp4", size_bytes=10, width=480, height=640, duration=1.98)
    check_limits(edge, VIDEO_LIMITS, "f", "video")
