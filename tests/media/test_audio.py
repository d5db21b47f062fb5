"""Audio helpers: decoding to 48 kHz float, room tone, fitting and mixing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openr2v.errors import UnsupportedFileFormat
from openr2v.media import audio as audio_module
from openr2v.media.audio import decode_audio, fit_length, loop_to, mix, rms_dbfs, room_tone


@pytest.mark.parametrize(("name", "seconds"), [("voice.wav", 3.0), ("voice.mp3", 3.0), ("person1.mp4", 2.5)])
def test_decode_to_48k_float(media_dir: Path, name: str, seconds: float) -> None:
    audio = decode_audio(media_dir / name)
    assert audio.dtype == np.float32 and audio.shape[0] == 2
    assert audio.shape[1] == pytest.approx(seconds * 48_000, abs=0.06 * 48_000)
    assert -25 < rms_dbfs(audio) < -10  # the generated tone, not silence and not clipped


def test_decode_mono_and_cap(media_dir: Path) -> None:
    audio = decode_audio(media_dir / "voice.wav", channels=1, max_seconds=1.0)
    assert audio.shape == (1, 48_000)


def test_video_without_audio_decodes_to_nothing(media_dir: Path) -> None:
    assert decode_audio(media_dir / "silent.mov").shape == (2, 0)


def test_decode_refuses_non_media(media_dir: Path) -> None:
    with pytest.raises(UnsupportedFileFormat):
        decode_audio(media_dir / "notanimage.png")


def test_room_tone_is_quiet_but_not_silent() -> None:
    bed = room_tone(2.0, seed=7)
    assert bed.shape == (2, 96_000) and bed.dtype == np.float32
    assert rms_dbfs(bed) == pytest.approx(-45.0, abs=0.5)
    assert np.abs(bed).max() < 0.1
    assert np.array_equal(bed, room_tone(2.0, seed=7))
    assert not np.array_equal(bed, room_tone(2.0, seed=8))


def test_room_tone_made_before_is_kept_and_cannot_be_changed() -> None:
    """A job seen again gets the bed made for it before: the same array, which nobody can write into."""
    audio_module._room_tone.cache_clear()
    bed = room_tone(3, seed=11)
    assert room_tone(3.0, seed=11) is bed
    assert room_tone(3, seed=12) is not bed and room_tone(3, seed=11, channels=1).shape == (1, 144_000)
    with pytest.raises(ValueError):
        bed[0, 0] = 1.0
    audio_module._room_tone.cache_clear()
    made_again = room_tone(3, seed=11)
    assert made_again is not bed and np.array_equal(made_again, bed)


def test_fit_and_loop() -> None:
    a = np.arange(10, dtype=np.float32)[None, :]
    assert fit_length(a, 4).tolist() == [[0, 1, 2, 3]]
    assert fit_length(a, 12)[0, 10:].tolist() == [0, 0]
    assert loop_to(a[:, :3], 7).tolist() == [[0, 1, 2, 0, 1, 2, 0]]
    assert loop_to(np.zeros((2, 0), np.float32), 5).shape == (2, 5)


def test_mix_sums_quiet_tracks_unchanged() -> None:
    a = np.full((2, 4800), 0.1, np.float32)
    b = np.full((1, 4800), 0.2, np.float32)  # mono spreads to both channels
    out = mix([a, b], [1.0, 0.5], n=4800)
    assert out.shape == (2, 4800)
    assert np.allclose(out, 0.2)


def test_mix_limits_peaks_without_hard_clipping_everything() -> None:
    t = np.arange(48_000) / 48_000
    loud = (0.9 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None, :]
    quiet_then_loud = np.concatenate([loud[:, :24_000] * 0.1, loud[:, 24_000:]], axis=1)
    out = mix([quiet_then_loud, quiet_then_loud], n=48_000)
    ceiling = 10 ** (-1 / 20)
    assert np.abs(out).max() <= ceiling + 1e-6
    # The quiet first half (peak 0.18) passes untouched, far from the limiter's attack.
    assert np.allclose(out[:, :20_000], 2 * quiet_then_loud[:, :20_000], atol=1e-6)
    # The loud half is turned down, not squared off: few samples sit at the ceiling.
    assert np.mean(np.abs(out[:, 26_000:]) > ceiling - 1e-4) < 0.05
