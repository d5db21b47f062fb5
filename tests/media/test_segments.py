"""Shot segments joined without re-encoding, with the audio encoded once in the join."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from openr2v.media.encode import Mp4Writer, rgb_to_yuv420
from openr2v.media.segments import join_segments
from tests.helpers import video_facts
from tests.mediagen import tone


def _segment(path: Path, frames: int, shade: int) -> tuple[Path, int]:
    buf = rgb_to_yuv420(np.full((240, 320, 3), shade, np.uint8))
    with Mp4Writer(path, 320, 240, frames, preset="ultrafast") as writer:
        for _ in range(frames):
            writer.write_yuv420(buf)
    return path, frames


def test_segments_join_into_one_video_with_its_audio(tmp_path: Path) -> None:
    segments = [_segment(tmp_path / "a.mp4", 30, 40), _segment(tmp_path / "b.mp4", 45, 200)]
    out = join_segments(segments, tmp_path / "out.mp4", 30, audio=tone(3.0, 220.0))
    facts = video_facts(out)
    assert facts.frames == 75 and (facts.audio_codec, facts.sample_rate) == ("aac", 48000)


def test_a_segment_short_of_its_frames_fails_the_join_and_stops_its_audio(tmp_path: Path) -> None:
    segments = [_segment(tmp_path / "a.mp4", 30, 40), (_segment(tmp_path / "b.mp4", 20, 200)[0], 45)]
    with pytest.raises(ValueError, match="holds 20 frames, not 45"):
        join_segments(segments, tmp_path / "out.mp4", 30, audio=tone(60.0, 220.0))
    assert not [t for t in threading.enumerate() if t.name == "openr2v-aac"]
