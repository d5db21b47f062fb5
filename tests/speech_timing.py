"""Does a phoneme timeline match the speech it claims to describe? Checks on the audio's energy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openr2v.media.visemes import Phoneme

VOWELS = ("open", "wide", "round", "mid")


def frame_db(x: np.ndarray, rate: int, hop_s: float = 0.005) -> tuple[np.ndarray, np.ndarray]:
    """Level in dB (relative to the loudest frame) of ``hop_s`` frames, and each frame's start time."""
    hop = max(1, round(rate * hop_s))
    n = x.size // hop
    rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(rms + 1e-9)
    return db - db.max(), np.arange(n) * hop / rate


def timing_faults(x: np.ndarray, rate: int, phonemes: Sequence[Phoneme], *, t0: float = 0.0,
                  silence_db: float = -32.0, loud_db: float = -25.0, margin: float = 0.0) -> list[str]:
    """What contradicts the timeline in ``x`` (which starts at ``t0`` on the timeline's clock); [] if nothing.

    Pauses must be quiet (below ``silence_db``: a breathy voice leaves a decaying tail in them),
    loud audio must fall inside a spoken phoneme, and each vowel must be loud somewhere (above
    ``loud_db``). ``margin`` (seconds) forgives edges that far off: WORLD's analysis windows spread
    each edge of re-synthesized speech by 10-15 ms.
    """
    db, starts = frame_db(x, rate)
    starts = starts + t0
    hop_s = float(starts[1] - starts[0]) if starts.size > 1 else 0.005
    ends = starts + hop_s
    faults = []
    spoken = np.zeros(starts.size, bool)
    for p in phonemes:
        inside = (starts >= p.start + margin) & (ends <= p.end - margin)
        touching = (ends > p.start - margin) & (starts < p.end + margin)
        if p.viseme == "rest":
            if inside.any() and db[inside].max() > silence_db:
                faults.append(f"pause {p.start:.3f}-{p.end:.3f} s is not silent ({db[inside].max():.1f} dB)")
        else:
            spoken |= touching
        if p.viseme in VOWELS and p.symbol not in ("w", "j") and p.end - p.start >= 0.03 and touching.any():
            if db[touching].max() < loud_db:
                faults.append(f"vowel {p.symbol} {p.start:.3f}-{p.end:.3f} s is quiet ({db[touching].max():.1f} dB)")
    stray = (db > loud_db) & ~spoken
    if stray.any():
        faults.append(f"loud audio outside every phoneme at {[round(float(t), 3) for t in starts[stray][:5]]} s")
    return faults
