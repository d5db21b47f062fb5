"""The eSpeak NG binding: voices differ, output is deterministic, calls are thread-safe, resampling is clean."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import pyworld

from openr2v.media.tts import NATIVE_RATE, TTSError, Voice, resample, synthesize, synthesize_native, trim_silence

TEXT = "I'll rely on you tomorrow morning!"


def median_f0(x: np.ndarray, fs: int) -> float:
    f0, _ = pyworld.harvest(x.astype(np.float64), fs, f0_floor=60, f0_ceil=500)
    return float(np.median(f0[f0 > 0]))


def test_speech_comes_out_at_48k() -> None:
    native = synthesize_native(TEXT)
    out = synthesize(TEXT)
    assert native.dtype == out.dtype == np.float32
    assert 0.8 < native.size / NATIVE_RATE < 3.0  # a short sentence
    assert out.size == round(native.size * 48_000 / NATIVE_RATE)
    assert 0.05 < np.abs(out).max() <= 1.0


def test_same_input_same_samples() -> None:
    voice = Voice("en-us+f3", pitch=62, rate=170)
    assert np.array_equal(synthesize_native(TEXT, voice), synthesize_native(TEXT, voice))


def test_voices_differ() -> None:
    male, female = Voice("en-us+m3"), Voice("en-us+f3")
    a, b = synthesize_native(TEXT, male), synthesize_native(TEXT, female)
    assert a.size != b.size or not np.array_equal(a, b)
    assert median_f0(b, NATIVE_RATE) > 1.4 * median_f0(a, NATIVE_RATE)
    # Pitch and rate settings are applied too.
    high = synthesize_native(TEXT, Voice("en-us+m3", pitch=90))
    assert median_f0(high, NATIVE_RATE) > 1.15 * median_f0(a, NATIVE_RATE)
    fast = synthesize_native(TEXT, Voice("en-us+m3", rate=300))
    assert fast.size < 0.75 * a.size


def test_unknown_voice_is_refused_not_silently_replaced() -> None:
    with pytest.raises(TTSError, match="no voice"):
        synthesize_native(TEXT, Voice("xx-nowhere"))
    assert synthesize_native("   ").size == 0


def test_concurrent_calls_match_serial_ones() -> None:
    """libespeak-ng is not reentrant: the lock must keep threads from mixing their audio."""
    jobs = [(f"Line number {i} of the test.", Voice(v)) for i, v in
            enumerate(["en-us+m1", "en-us+f2", "en-us+m7", "en-us+f5"] * 3)]
    serial = [synthesize_native(t, v) for t, v in jobs]
    with ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(pool.map(lambda tv: synthesize_native(*tv), jobs))
    assert all(np.array_equal(a, b) for a, b in zip(serial, parallel, strict=True))


def test_synthesis_is_fast() -> None:
    synthesize_native("warm up")
    lines = [f"Sentence {i}: you can count on me, my friend." for i in range(20)]
    t0 = time.perf_counter()
    for line in lines:
        synthesize(line, Voice("en-us+f1"))
    per_line_ms = (time.perf_counter() - t0) / len(lines) * 1000
    print(f"TTS: {per_line_ms:.1f} ms per line (48 kHz)")
    assert per_line_ms < 150  # a few ms on the reference machine; generous for a loaded CI box


def test_resample_keeps_a_tone() -> None:
    t = np.arange(NATIVE_RATE) / NATIVE_RATE
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    y = resample(x, NATIVE_RATE, 48_000)
    assert y.size == 48_000
    spectrum = np.abs(np.fft.rfft(y[4800:-4800] * np.hanning(y.size - 9600)))
    peak_hz = np.argmax(spectrum) * 48_000 / (y.size - 9600)
    assert peak_hz == pytest.approx(1000, abs=3)
    assert np.sqrt(np.mean(y[4800:-4800] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_trim_silence_keeps_the_speech() -> None:
    speech = synthesize_native(TEXT)
    padded = np.concatenate([np.zeros(NATIVE_RATE), speech, np.zeros(NATIVE_RATE)])
    trimmed = trim_silence(padded, NATIVE_RATE)
    assert trimmed.size <= speech.size + NATIVE_RATE // 10
    assert np.sum(trimmed**2) > 0.99 * np.sum(speech**2)
