"""The compositor's soundtrack: room tone, the video references' voices, the client's soundtrack."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openr2v.engines.base import RenderJob
from openr2v.media.audio import decode_audio, fit_length, loop_to, mix, room_tone
from openr2v.media.encode import AUDIO_RATE

__all__ = ["Soundtrack", "build_soundtrack"]

VOICE_GAIN = 0.8
MUSIC_GAIN = 0.7


@dataclass
class Soundtrack:
    samples: np.ndarray  # (2, duration * 48000) float32
    sources: list[str]  # what was mixed, for the task's notes


def build_soundtrack(job: RenderJob, loop_seconds: dict[str, float]) -> Soundtrack:
    """Mix for ``job`` (which wants audio). ``loop_seconds`` maps a video reference's label to its picture loop.

    A video's own track loops with its pictures so lips and sound stay together; a separate
    ``reference_voice`` plays once from the start.
    """
    n = job.duration * AUDIO_RATE
    # Room tone first: a video with audio must never be digitally silent.
    tracks = [room_tone(job.duration, seed=job.seed)]
    gains = [1.0]
    sources = ["room tone"]
    for ref in job.references:
        if ref.kind != "video" and ref.voice_path is None:
            continue
        if ref.voice_path is not None:
            track = fit_length(decode_audio(ref.voice_path, max_seconds=job.duration), n)
            sources.append(f"{ref.label} reference voice")
        elif ref.info.has_audio:
            period = loop_seconds.get(ref.label, float(job.duration))
            # Padded to exactly one picture loop, so sound and picture restart together.
            one_loop = fit_length(decode_audio(ref.path, max_seconds=period), round(period * AUDIO_RATE))
            track = loop_to(one_loop, n)
            sources.append(f"{ref.label} audio track")
        else:
            continue
        tracks.append(track)
        gains.append(VOICE_GAIN)
    if job.soundtrack is not None:
        tracks.append(fit_length(decode_audio(job.soundtrack, max_seconds=job.duration), n))
        gains.append(MUSIC_GAIN)
        sources.append("soundtrack")
    return Soundtrack(samples=mix(tracks, gains, n=n), sources=sources)
