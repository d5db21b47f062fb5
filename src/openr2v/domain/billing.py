"""Billing: billed input video seconds, output seconds, and cost from the price table.

The wan2.6-r2v guide (wan2.6): the 5 s input cap is split evenly over all references, per its table
(1: 5 s, 2: 2.5 s, 3: 1.65 s, 4: 1.25 s, 5: 1 s). The wan2.7-r2v guide (wan2.7): the cap is split over
reference videos only, with the same table. Images and first frames are free; failed
tasks bill nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openr2v.domain.models import ModelSpec, tier_of

__all__ = ["TRUNCATION_TABLE", "ReportedUsage", "Usage", "billed_input_seconds", "compute_usage", "reported_usage",
           "unit_price"]

# The documents' own table; note 3 -> 1.65 s, not 5/3.
TRUNCATION_TABLE: dict[int, float] = {1: 5.0, 2: 2.5, 3: 1.65, 4: 1.25, 5: 1.0}


def _truncation(count: int, cap: float) -> float:
    if count <= 0:
        return 0.0
    if cap == 5.0 and count in TRUNCATION_TABLE:
        return TRUNCATION_TABLE[count]
    return round(cap / count, 2)


def billed_input_seconds(spec: ModelSpec, video_durations: list[float], reference_count: int) -> float:
    """Sum over reference videos of min(duration, truncation limit)."""
    split = reference_count if spec.input_split_by == "references" else len(video_durations)
    limit = _truncation(split, spec.input_cap_seconds)
    return round(sum(min(d, limit) for d in video_durations), 3)


@dataclass(frozen=True)
class Usage:
    input_video_duration: float
    output_video_duration: int
    width: int
    height: int
    audio: bool
    cost_usd: float

    @property
    def duration(self) -> float:
        return round(self.input_video_duration + self.output_video_duration, 3)

    @property
    def sr(self) -> int:
        return tier_of(self.width, self.height)

    def as_dict(self) -> dict[str, object]:
        size = f"{self.width}*{self.height}"
        return {
            "duration": _num(self.duration),
            "input_video_duration": _num(self.input_video_duration),
            "output_video_duration": self.output_video_duration,
            "video_duration": self.output_video_duration,
            "SR": self.sr,
            "size": size,
            "video_count": 1,
            "video_ratio": size,
            "audio": self.audio,
        }


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def unit_price(spec: ModelSpec, width: int, height: int, audio: bool) -> float:
    """USD per billed second of ``spec`` at this size's tier, with or without audio."""
    price = spec.prices.get(tier_of(width, height)) or spec.prices.get(720)
    return (price.audio if audio else price.silent) if price else 0.0


def compute_usage(spec: ModelSpec, *, video_durations: list[float], reference_count: int, width: int,
                  height: int, duration: int, audio: bool) -> Usage:
    billed_in = billed_input_seconds(spec, video_durations, reference_count)
    cost = round((billed_in + duration) * unit_price(spec, width, height, audio), 4)
    return Usage(input_video_duration=billed_in, output_video_duration=duration, width=width, height=height,
                 audio=audio, cost_usd=cost)


@dataclass(frozen=True)
class ReportedUsage:
    """Usage a renderer reported (an upstream service's ``usage``), completed and priced here."""

    usage: dict[str, Any]  # the reported keys as they came, plus the canonical keys it lacked
    input_seconds: float
    output_seconds: float
    billed_seconds: float
    cost_usd: float


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def reported_usage(spec: ModelSpec, reported: Mapping[str, Any], *, width: int, height: int, audio: bool,
                   duration: int) -> ReportedUsage:
    """The task's usage and bill from what the renderer measured.

    The reported numbers win (the upstream billed them); keys it left out are derived from the ones
    it gave: billed = ``duration``, else input + output seconds; output = ``output_video_duration``,
    else ``video_duration`` (what the Model Studio guide shows), else the requested duration. The
    cost is openr2v's own price for the model, tier and audio times the billed seconds.
    """
    out_s = _seconds(reported.get("output_video_duration"))
    if out_s is None:
        out_s = _seconds(reported.get("video_duration"))
    out_s = float(duration) if out_s is None else out_s
    in_s = _seconds(reported.get("input_video_duration")) or 0.0
    billed = _seconds(reported.get("duration"))
    billed = round(in_s + out_s, 3) if billed is None else billed
    size = f"{width}*{height}"
    usage = dict(reported)
    for key, value in (("duration", _num(billed)), ("input_video_duration", _num(in_s)),
                       ("output_video_duration", _num(out_s)), ("video_duration", _num(out_s)),
                       ("SR", tier_of(width, height)), ("size", size), ("video_count", 1), ("video_ratio", size),
                       ("audio", audio)):
        usage.setdefault(key, value)
    cost = round(billed * unit_price(spec, width, height, audio), 4)
    return ReportedUsage(usage=usage, input_seconds=in_s, output_seconds=out_s, billed_seconds=billed,
                         cost_usd=cost)
