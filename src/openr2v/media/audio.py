"""Audio as numpy: decode anything to float32 48 kHz, a room-tone bed, fitting, mixing.

Arrays are planar, shape (channels, samples), float32 in [-1, 1] — PyAV's ``fltp`` layout,
so frames go in and out without reshuffling.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from openr2v.errors import UnsupportedFileFormat
from openr2v.media.encode import AUDIO_RATE
from openr2v.media.kept import kept_arrays
from openr2v.media.probe import open_container

__all__ = ["decode_audio", "fit_length", "loop_to", "mix", "rms_dbfs", "room_tone"]

def decode_audio(path: Path, *, channels: int = 2, rate: int = AUDIO_RATE,
                 max_seconds: float | None = None) -> np.ndarray:
    """The first audio stream of ``path`` (wav, mp3, or a video's track), resampled.

    Returns shape (channels, n); n is 0 when the file has no audio stream. Decoding stops
    after ``max_seconds`` so a long file costs no more than what will be used.
    """
    layout = {1: "mono", 2: "stereo"}[channels]
    limit = None if max_seconds is None else int(max_seconds * rate)
    chunks: list[np.ndarray] = []
    got = 0
    try:
        with open_container(path) as container:
            if not container.streams.audio:
                return np.zeros((channels, 0), dtype=np.float32)
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            for frame in container.decode(audio=0):
                frame.pts = None  # samples are concatenated in order; the file's timestamps play no part
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
                    got += out.samples
                if limit is not None and got >= limit:
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray())
    except (av.FFmpegError, OSError) as exc:
        raise UnsupportedFileFormat(f"the audio of {path.name} cannot be decoded ({exc}).") from None
    audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((channels, 0), dtype=np.float32)
    if limit is not None:
        audio = audio[:, :limit]
    return np.ascontiguousarray(audio, dtype=np.float32)


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Trim to ``n`` samples or pad the end with silence."""
    if audio.shape[1] >= n:
        return audio[:, :n]
    out = np.zeros((audio.shape[0], n), dtype=np.float32)
    out[:, :audio.shape[1]] = audio
    return out


def loop_to(audio: np.ndarray, n: int) -> np.ndarray:
    """Repeat ``audio`` end to end until it is ``n`` samples long (silence if it is empty)."""
    if audio.shape[1] == 0:
        return np.zeros((audio.shape[0], n), dtype=np.float32)
    reps = -(-n // audio.shape[1])
    return np.tile(audio, (1, reps))[:, :n]


def room_tone(seconds: float, *, seed: int, channels: int = 2, rate: int = AUDIO_RATE,
              level_dbfs: float = -45.0) -> np.ndarray:
    """A quiet seeded room-ambience bed at ``level_dbfs`` RMS (read-only: the last few are kept and shared).

    Brown-ish noise (a 1/f^1.5 spectrum, rolled off below 40 Hz and above 8 kHz) sounds like
    air and distant traffic rather than hiss; it keeps an "audio" video from being
    digitally silent where nobody speaks.
    """
    return _room_tone(float(seconds), seed, channels, rate, float(level_dbfs))


# Kept: a job seen again (a CI suite's prompts, a seed given) has the same bed, and making it is on the way to a
# render's first frame (~50 ms for 10 s). 10 s of stereo is 3.8 MB.
@kept_arrays(maxsize=4)
def _room_tone(seconds: float, seed: int, channels: int, rate: int, level_dbfs: float) -> np.ndarray:
    n = int(round(seconds * rate))
    if n == 0:
        return np.zeros((channels, 0), dtype=np.float32)
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((channels, n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    shape = np.zeros_like(freqs)
    band = (freqs >= 40.0) & (freqs <= 8000.0)
    shape[band] = freqs[band] ** -0.75  # amplitude ~ f^-0.75, i.e. power ~ f^-1.5
    shaped = np.fft.irfft(np.fft.rfft(white, axis=1) * shape, n=n, axis=1)
    rms = float(np.sqrt(np.mean(shaped**2))) or 1.0
    return (shaped * (10 ** (level_dbfs / 20) / rms)).astype(np.float32)


def mix(tracks: Sequence[np.ndarray], gains: Sequence[float] | None = None, *, n: int | None = None,
        ceiling_dbfs: float = -1.0, rate: int = AUDIO_RATE) -> np.ndarray:
    """Sum ``tracks`` (each fitted to ``n`` samples, mono spread to all channels) under a peak limiter.

    The limiter works on 5 ms blocks: each block's gain is the smallest any block within
    +-10 ms needs (so the gain is down before a peak arrives) and is interpolated per sample,
    which avoids the distortion of hard clipping; a final clip catches rounding.
    """
    if not tracks:
        raise ValueError("mix needs at least one track")
    n = max(t.shape[1] for t in tracks) if n is None else n
    channels = max(t.shape[0] for t in tracks)
    out = np.zeros((channels, n), dtype=np.float32)
    for i, track in enumerate(tracks):
        gain = 1.0 if gains is None else gains[i]
        out += np.broadcast_to(fit_length(track, n), (channels, n)) * np.float32(gain)
    return _limit(out, 10 ** (ceiling_dbfs / 20), rate)


def _limit(audio: np.ndarray, ceiling: float, rate: int) -> np.ndarray:
    n = audio.shape[1]
    block = max(1, rate // 200)
    blocks = -(-n // block)
    peak = np.zeros(blocks * block, dtype=np.float32)
    peak[:n] = np.abs(audio).max(axis=0)
    peak = peak.reshape(blocks, block).max(axis=1)
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-9))
    reach = 2  # blocks of look-ahead and hold on each side
    padded = np.pad(need, reach, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1)
    gain_blocks = windows.min(axis=1)
    centres = (np.arange(blocks) + 0.5) * block
    gain = np.interp(np.arange(n), centres, gain_blocks).astype(np.float32)
    return np.clip(audio * gain, -ceiling, ceiling).astype(np.float32)


def rms_dbfs(audio: np.ndarray) -> float:
    """RMS level in dBFS (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20 * np.log10(rms) if rms > 0 else float("-inf")
