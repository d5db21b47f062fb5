"""Media: bring references in (fetch), identify and bound them (probe), sound (audio), write MP4s (encode).

Errors raised here are the domain's (``openr2v.errors``): ``InvalidURL`` and
``InputDownloadFailed`` from fetching, ``UnsupportedFileFormat`` and ``InvalidParameter``
from probing and limits. ``ValueError`` means a caller bug (e.g. odd frame sizes).
"""

from __future__ import annotations

from openr2v.media.audio import decode_audio, fit_length, loop_to, mix, rms_dbfs, room_tone
from openr2v.media.encode import AUDIO_RATE, Mp4Writer, rgb_to_yuv420, yuv420_planes
from openr2v.media.fetch import Fetcher, check_url_host, forbidden_reason, parse_ip_host
from openr2v.media.probe import MAX_PIXELS, MediaInfo, check_limits, open_container, probe, sniff_format

__all__ = [
    "AUDIO_RATE",
    "MAX_PIXELS",
    "Fetcher",
    "MediaInfo",
    "Mp4Writer",
    "check_limits",
    "check_url_host",
    "decode_audio",
    "fit_length",
    "forbidden_reason",
    "loop_to",
    "mix",
    "open_container",
    "parse_ip_host",
    "probe",
    "rgb_to_yuv420",
    "rms_dbfs",
    "room_tone",
    "sniff_format",
    "yuv420_planes",
]
