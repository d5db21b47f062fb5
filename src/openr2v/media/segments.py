"""Join video-only MP4 segments into one MP4 without re-encoding: packets copied, hard cuts.

The segments must come from one encoder configuration (same size, fps, codec settings: one
``Mp4Writer`` setup each) so that one set of stream headers serves them all; each starts with a
keyframe, so the cut is clean. The audio is the whole video's, encoded here once, interleaved with
the video as it goes. Same segments and audio in, same bytes out, whatever rendered the segments
and in whichever order they were finished.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from openr2v.media.encode import AUDIO_RATE, AudioTrack, fit_audio

__all__ = ["join_segments"]


def join_segments(segments: list[tuple[Path, int]], out: Path, fps: int, *, audio: np.ndarray | None = None,
                  audio_bitrate: int = 128_000) -> Path:
    """``segments`` ((path, frames), in order) -> ``out`` at ``fps``, with ``audio`` (channels, samples at
    48 kHz) fitted to the total length."""
    total = sum(frames for _, frames in segments)
    with av.open(str(out), mode="w", format="mp4", options={"movflags": "+faststart"}) as dst:
        with av.open(str(segments[0][0])) as first:
            template = first.streams.video[0]
            video = dst.add_stream_from_template(template)
            video.time_base = template.time_base
        track = (AudioTrack(dst, fit_audio(audio, total * AUDIO_RATE // fps), audio_bitrate)
                 if audio is not None else None)
        try:
            _copy_segments(segments, dst, video, fps, track)
        finally:
            if track is not None:
                track.close(stop=True)  # the container is not closed under its encoding thread
    return out


def _copy_segments(segments: list[tuple[Path, int]], dst: av.container.OutputContainer, video: av.VideoStream,
                   fps: int, track: AudioTrack | None) -> None:
    done = 0
    for path, frames in segments:
        with av.open(str(path)) as src:
            stream = src.streams.video[0]
            tb = stream.time_base
            if tb is None:
                raise ValueError(f"{path}: the video stream has no time base")
            offset = round(done / fps / tb)
            count = 0
            for packet in src.demux(stream):
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                packet.pts = None if packet.pts is None else packet.pts + offset
                packet.dts += offset
                packet.stream = video
                packet.time_base = tb
                dst.mux(packet)
                count += 1
        if count != frames:
            raise ValueError(f"segment {path.name} holds {count} frames, not {frames}")
        done += frames
        if track is not None:
            track.feed(done * AUDIO_RATE // fps)
    if track is not None:
        track.finish()
