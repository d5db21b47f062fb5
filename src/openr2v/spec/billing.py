"""Billing: billed input video seconds, output seconds, and cost from the price table.

Seed 000 (wan2.6): the 5 s input cap is split evenly over all references, per its table
(1: 5 s, 2: 2.5 s, 3: 1.65 s, 4: 1.25 s, 5: 1 s). Seed 001 (wan2.7): the cap is split over
reference videos only, with the same table. Images and first frames are free; failed
tasks bill nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from openr2v.spec.models import ModelSpec, tier_of

__all__ = ["TRUNCATION_TABLE", "Usage", "billed_input_seconds", "compute_usage"]

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


def compute_usage(spec: ModelSpec, *, video_durations: list[float], reference_count: int, width: int,
                  height: int, duration: int, audio: bool) -> Usage:
    billed_in = billed_input_seconds(spec, video_durations, reference_count)
    tier = tier_of(width, height)
    price = spec.prices.get(tier) or spec.prices.get(720)
    unit = (price.audio if audio else price.silent) if price else 0.0
    cost = round((billed_in + duration) * unit, 4)
    return Usage(input_video_duration=billed_in, output_video_duration=duration, width=width, height=height,
                 audio=audio, cost_usd=cost)
