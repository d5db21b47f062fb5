"""The synthesized music cue: a chord progression in a seeded key, at its level, made once per job."""

from __future__ import annotations

import random

import numpy as np
import pytest

from openr2v.media import music as music_module
from openr2v.media.audio import rms_dbfs
from openr2v.media.music import music_bed, music_kind

RATE = 48_000


def test_music_words_pick_the_instrument() -> None:
    assert music_kind("plays a soothing American country folk song") == "pluck"
    assert music_kind("dancing spontaneously to the music") == "pad"
    assert music_kind("walks to the door") is None


@pytest.mark.parametrize("kind", ["pad", "pluck"])
def test_a_bed_is_at_its_level_faded_in_and_out_and_the_same_for_a_seed(kind: str) -> None:
    bed = music_bed(kind, 6, seed=4, level_dbfs=-28.0)
    assert bed.shape == (2, 6 * RATE) and bed.dtype == np.float32
    assert rms_dbfs(bed) == pytest.approx(-28.0, abs=0.5)
    assert np.abs(bed[:, :100]).max() < 0.01 and np.abs(bed[:, -100:]).max() < 0.01
    music_module._music_bed.cache_clear()  # made again, not handed the kept one
    assert np.array_equal(bed, music_bed(kind, 6, seed=4, level_dbfs=-28.0))
    assert not np.array_equal(bed, music_bed(kind, 6, seed=5, level_dbfs=-28.0))


def test_the_pad_plays_the_chord_of_each_bar() -> None:
    """The first bar's strong partials are the tonic chord's tones (with the bass an octave below the root, and their
    octave harmonics); the third bar's are the relative minor's."""
    rng = random.Random("music:9")
    key, bpm = rng.choice(music_module._KEYS), rng.uniform(64, 76)
    bar = 4 * 60.0 / bpm
    bed = music_bed("pad", 4 * bar + 1, seed=9)

    def peaks(t0: float, t1: float) -> set[int]:
        x = bed[0, int(t0 * RATE):int(t1 * RATE)].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
        freqs = np.fft.rfftfreq(x.size, 1 / RATE)
        strong = [i for i in np.argsort(spectrum)[::-1][:200]
                  if spectrum[i] >= spectrum[max(0, i - 3):i + 4].max() and spectrum[i] > 0.2 * spectrum.max()]
        return {round(12 * np.log2(freqs[i] / 0.997 / 440) + 69) - key for i in strong}

    # Where one chord sounds alone: the middle of its bar.
    first, third = peaks(0.3 * bar, 0.7 * bar), peaks(2.3 * bar, 2.7 * bar)
    assert {p % 12 for p in first} == {0, 4, 7} and {-12, 0, 4, 7} <= first
    assert {p % 12 for p in third} == {9, 0, 4} and {-3, 9, 12, 16} <= third


def test_a_bed_made_before_is_kept_but_every_caller_gets_its_own_copy() -> None:
    music_module._music_bed.cache_clear()
    first = music_bed("pad", 3, seed=2)
    first *= 0  # the soundtrack shapes its bed in place
    again = music_bed("pad", 3, seed=2)
    assert music_module._music_bed.cache_info().hits == 1
    assert np.abs(again).max() > 0.01
