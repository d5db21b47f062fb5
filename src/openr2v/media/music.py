"""A synthesized music cue: when a prompt names music, the previz plays a simple instrument-like bed.

Two instruments, both additive synthesis (vectorized, no per-sample Python loop): a plucked string
(harmonics with frequency-dependent decay, like a guitar) playing a fingerpicked arpeggio, for
guitar, folk, country and other plucked words; and a soft pad (detuned, low-harmonic chord tones
with slow swells) for every other music word. Both follow a I-V-vi-IV progression in a key and
tempo picked by the seed, so a render is deterministic.
"""

from __future__ import annotations

import functools
import random
import re

import numpy as np

from openr2v.media.encode import AUDIO_RATE
from openr2v.media.kept import kept_arrays

__all__ = ["music_bed", "music_kind"]

_PLUCK_WORDS = re.compile(r"\b(?:guitars?|guitarist|banjo|ukulele|harp|mandolin|lute|sitar|strum\w*|fingerpick\w*)\b",
                          re.I)
_PLUCK_STYLES = re.compile(r"\b(?:folk|country|bluegrass|acoustic)\b", re.I)
_MUSIC_WORDS = re.compile(
    r"\b(?:music|musical|musician|songs?|sings?|singing|sang|melod(?:y|ies)|tunes?|piano|violin|cello|"
    r"orchestra|symphony|jazz|choir|concert|drums?|drummer|flute|saxophone|trumpet|lullaby|ballad|dj)\b", re.I)

# I - V - vi - IV as semitone offsets of each chord's triad from the key's tonic.
_PROGRESSION = [(0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12)]
_KEYS = [55, 57, 60, 62, 64]  # G3, A3, C4, D4, E4 (MIDI)


def music_kind(text: str) -> str | None:
    """``"pluck"`` for plucked strings (or folk/country music), ``"pad"`` for other music words, else None."""
    if _PLUCK_WORDS.search(text) or (_PLUCK_STYLES.search(text) and _MUSIC_WORDS.search(text)):
        return "pluck"
    return "pad" if _MUSIC_WORDS.search(text) else None


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


@functools.lru_cache(maxsize=64)
def _pluck_note(midi: int, rate: int) -> np.ndarray:
    """One plucked note, 1.6 s: harmonics decaying faster the higher they are, plucked near the bridge."""
    f = _hz(midi)
    t = np.arange(int(1.6 * rate)) / rate
    out = np.zeros_like(t)
    for k in range(1, 10):
        if k * f > 0.45 * rate:
            break
        amp = abs(np.sin(np.pi * k * 0.18)) / k  # the pluck position shapes the harmonic series
        decay = np.exp(-t * (1.8 + 1.1 * (k - 1)))
        out += amp * decay * np.sin(2 * np.pi * k * f * (1 + 0.0004 * k * k) * t)  # a touch of stiffness
    attack = np.minimum(1.0, t / 0.003)
    release = np.minimum(1.0, (t[-1] - t) / 0.05)
    return (out * attack * release).astype(np.float32)


def _pluck(seconds: float, key: int, bpm: float, rate: int, rng: random.Random) -> np.ndarray:
    n = int(round(seconds * rate))
    out = np.zeros((2, n), dtype=np.float32)
    eighth = 60.0 / bpm / 2
    # Fingerpicking: bass on the beat, chord tones above it.
    pattern = [0, 2, 1, 2, 3, 2, 1, 2]
    step = 0
    t = 0.0
    while t < seconds:
        chord = _PROGRESSION[(step // 8) % len(_PROGRESSION)]
        voices = [key - 12 + chord[0], key + chord[1], key + chord[2], key + 12 + chord[0]]
        which = pattern[step % 8]
        note = _pluck_note(voices[which], rate)
        start = int(round((t + rng.uniform(-0.006, 0.006)) * rate))  # a human's timing, seeded
        start = max(0, start)
        end = min(n, start + note.size)
        if end > start:
            gain = (1.0 if which == 0 else 0.6) * rng.uniform(0.85, 1.0)
            pan = -0.3 if which in (0, 1) else 0.3  # bass a little left, treble a little right
            seg = note[: end - start] * gain
            out[0, start:end] += seg * (1 - pan) / 2
            out[1, start:end] += seg * (1 + pan) / 2
        step += 1
        t += eighth
    return out


def _pad(seconds: float, key: int, bpm: float, rate: int) -> np.ndarray:
    n = int(round(seconds * rate))
    bar = 4 * 60.0 / bpm
    out = np.zeros((2, n))
    bars = int(np.ceil(seconds / bar)) + 1
    for b in range(bars):
        chord = _PROGRESSION[b % len(_PROGRESSION)]
        # A bar's chord swells in and overlaps the next by half a bar: it sounds only over those 1.5 bars.
        t0 = b * bar - bar / 4
        first, last = max(0, int(np.floor(t0 * rate))), min(n, int(np.ceil((t0 + 1.5 * bar) * rate)) + 1)
        if last <= first:
            continue
        t = np.arange(first, last) / rate
        env = np.clip((t - t0) / (bar / 2), 0, 1) * np.clip((t0 + 1.5 * bar - t) / (bar / 2), 0, 1)
        if not env.any():
            continue
        env = np.sin(env * np.pi / 2) ** 2
        for semis in (chord[0] - 12, *chord):
            f = _hz(key + semis)
            for ch, detune in ((0, 0.997), (1, 1.003)):  # detuned per side: width without phasiness
                # Harmonics 1-3 at 1/k^2 from one sine and one cosine: sin 2x = 2 sin x cos x,
                # sin 3x = sin x (3 - 4 sin^2 x).
                phase = 2 * np.pi * f * detune * t
                s, c = np.sin(phase), np.cos(phase)
                out[ch, first:last] += env * (s + s * c / 2 + s * (3 - 4 * s * s) / 9)
    return out.astype(np.float32)


def music_bed(kind: str, seconds: float, *, seed: int, level_dbfs: float = -28.0,
              rate: int = AUDIO_RATE) -> np.ndarray:
    """A stereo (2, n) music bed of ``kind`` (pluck | pad) at ``level_dbfs`` RMS, faded in and out (the caller's own
    copy: the soundtrack shapes it in place)."""
    return _music_bed(kind, float(seconds), seed, float(level_dbfs), rate).copy()


# Kept: a job seen again (a CI suite's prompts, a seed given) has the same cue, made before its first frame.
@kept_arrays(maxsize=4)
def _music_bed(kind: str, seconds: float, seed: int, level_dbfs: float, rate: int) -> np.ndarray:
    rng = random.Random(f"music:{seed}")
    key = rng.choice(_KEYS)
    bpm = rng.uniform(84, 100) if kind == "pluck" else rng.uniform(64, 76)
    out = _pluck(seconds, key, bpm, rate, rng) if kind == "pluck" else _pad(seconds, key, bpm, rate)
    n = out.shape[1]
    if n == 0:
        return out
    fade = min(n // 2, int(0.3 * rate))
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    out[:, :fade] *= ramp
    out[:, n - fade:] *= ramp[::-1]
    rms = float(np.sqrt(np.mean(out.astype(np.float64) ** 2))) or 1.0
    return (out * (10 ** (level_dbfs / 20) / rms)).astype(np.float32)
