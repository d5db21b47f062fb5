"""Fixtures of the aggregator dialect tests: media that meets the aggregator docs' own limits (videos >= 3 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import mediagen


@pytest.fixture(scope="session")
def agg_media(media_dir: Path) -> Path:
    """Adds to the served media: a 4 s video with sound, a 4 s MP3 soundtrack. Returns media_dir."""
    if not (media_dir / "agg_person_4s.mp4").exists():
        mediagen.make_video(media_dir / "agg_person_4s.mp4", 480, 640, 4.0, audio=True, seed=11, pitch_hz=160)
        mediagen.make_audio(media_dir / "agg_music_4s.mp3", 4.0, "mp3", pitch_hz=330)
    return media_dir
