"""Voice matching: WORLD profiles of reference voices, speech moved to a target F0 and length (Praat)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import pyworld

from openr2v.media.tts import NATIVE_RATE, Voice, synthesize_native, synthesize_timed, trim_silence
from openr2v.media.voice import (
    FORMANT_LIMITS,
    VoiceProfile,
    analyze_voice,
    formant_factor,
    profile_from_file,
    transform,
)
from tests.mediagen import tone

SPEECH = "I'll rely on you tomorrow morning! You can count on me."


def harvest_median(x: np.ndarray, fs: int) -> float:
    f0, _ = pyworld.harvest(x.astype(np.float64), fs, f0_floor=60, f0_ceil=500)
    return float(np.median(f0[f0 > 0]))


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return trim_silence(synthesize_native(SPEECH, Voice("en-us+m3")), NATIVE_RATE)


def profile_at(hz: float) -> VoiceProfile:
    profile = analyze_voice(tone(3.0, hz, seed=1)[0][::3], 16_000)  # 48 kHz -> 16 kHz (the tone is band-limited)
    assert profile is not None
    return profile


@pytest.mark.parametrize("target_hz", [85.0, 140.0, 220.0, 300.0])
def test_transform_hits_the_target_median_f0(speech: np.ndarray, target_hz: float) -> None:
    t0 = time.perf_counter()
    out = transform(speech, NATIVE_RATE, target=profile_at(target_hz))
    elapsed = time.perf_counter() - t0
    got = harvest_median(out, NATIVE_RATE)
    print(f"voice transform to {target_hz:.0f} Hz: {got:.1f} Hz ({abs(got / target_hz - 1) * 100:.1f}% off), "
          f"{elapsed * 1000:.0f} ms for {speech.size / NATIVE_RATE:.1f} s of speech")
    assert got == pytest.approx(target_hz, rel=0.10)
    assert out.size == speech.size and out.dtype == np.float32
    assert elapsed < 3.0  # ~0.2 s on the reference machine


def test_profile_reads_a_reference_pitch() -> None:
    for hz in (110.0, 180.0, 260.0):
        assert profile_at(hz).median_f0 == pytest.approx(hz, rel=0.03)


def test_profile_from_files(media_dir: Path) -> None:
    video = profile_from_file(media_dir / "person1.mp4")  # a video's own track (120 Hz)
    mp3 = profile_from_file(media_dir / "voice.mp3")  # a reference_voice clip (140 Hz)
    assert video is not None and video.median_f0 == pytest.approx(120, rel=0.05)
    assert mp3 is not None and mp3.median_f0 == pytest.approx(140, rel=0.05)
    assert profile_from_file(media_dir / "silent.mov") is None  # no audio stream
    assert profile_from_file(media_dir / "notanimage.png") is None  # undecodable


def test_unvoiced_audio_has_no_profile() -> None:
    rng = np.random.default_rng(0)
    assert analyze_voice(np.zeros(16_000 * 2), 16_000) is None
    assert analyze_voice(0.1 * rng.standard_normal(16_000 * 2), 16_000) is None


def test_time_scale_compresses_and_keeps_pitch(speech: np.ndarray) -> None:
    before = harvest_median(speech, NATIVE_RATE)
    out = transform(speech, NATIVE_RATE, time_scale=0.6)
    assert out.size == round(speech.size * 0.6)
    assert harvest_median(out, NATIVE_RATE) == pytest.approx(before, rel=0.08)
    assert transform(speech, NATIVE_RATE) is not None  # identity: nothing to do
    assert np.array_equal(transform(speech, NATIVE_RATE), speech)


def test_formant_factor_follows_the_envelope_shift() -> None:
    grid = np.linspace(0, 6 * np.pi, 96)
    source = np.sin(grid) + 0.3 * np.sin(2.3 * grid)
    up = np.roll(source, 3)  # the target's formants sit higher
    down = np.roll(source, -3)
    assert formant_factor(source, up, 1.0) > 1.05
    assert formant_factor(source, down, 1.0) < 0.95
    assert FORMANT_LIMITS[0] <= formant_factor(source, np.roll(source, 40), 4.0) <= FORMANT_LIMITS[1]


@pytest.mark.parametrize(("target_hz", "formant"), [(128.0, 0.97), (210.0, 1.15)])
def test_piper_voice_moves_to_a_cast_voice(target_hz: float, formant: float) -> None:
    """The neural voice (median F0 about 107 Hz) lands on a cast voice's median F0, and keeps its length."""
    from openr2v.media import piper_voice

    if not piper_voice.available():
        pytest.skip("Piper or its voice is not installed (the `voices` extra)")
    speech = synthesize_timed(SPEECH, Voice("joe", engine="piper"))
    out = transform(speech.samples, speech.rate, target=VoiceProfile(target_hz, None, formant))
    assert out.size == speech.samples.size
    got = harvest_median(out, speech.rate)
    print(f"Piper moved to {target_hz:.0f} Hz: {got:.1f} Hz (from {harvest_median(speech.samples, speech.rate):.1f})")
    assert got == pytest.approx(target_hz, rel=0.08)
    # And to a measured reference voice (formants from its envelope).
    matched = transform(speech.samples, speech.rate, target=profile_at(target_hz))
    assert harvest_median(matched, speech.rate) == pytest.approx(target_hz, rel=0.08)


def test_transform_is_deterministic(speech: np.ndarray) -> None:
    """Praat's PSOLA draws random numbers: seeded, the same input gives the same samples."""
    target = VoiceProfile(200.0, None, 1.15)
    runs = [transform(speech, NATIVE_RATE, target=target, time_scale=0.9) for _ in range(3)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_equal_profiles_have_the_same_key_and_others_another() -> None:
    envelope = np.linspace(-1.0, 1.0, 96)
    measured = VoiceProfile(median_f0=180.0, envelope=envelope)
    assert measured.key == VoiceProfile(median_f0=180.0, envelope=envelope.copy()).key
    assert hash(measured.key) == hash(VoiceProfile(median_f0=180.0, envelope=envelope.copy()).key)
    assert measured.key != VoiceProfile(median_f0=180.0, envelope=envelope[::-1].copy()).key
    assert VoiceProfile(median_f0=120.0, envelope=None, formant=1.1).key != VoiceProfile(
        median_f0=120.0, envelope=None, formant=1.0).key
