"""Before submitting: the labels a prompt may use, and what a request will cost.

Pure functions over the registry and the billing rules, shared by the plan/estimate endpoints,
the web console (through them) and the CLI (directly, offline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from openr2v.domain.billing import billed_input_seconds, compute_usage
from openr2v.domain.models import ModelSpec, ratio_size, tier_of
from openr2v.errors import InvalidParameter

__all__ = ["Estimate", "PreviewRef", "estimate", "output_size", "reference_labels"]


@dataclass(frozen=True)
class PreviewRef:
    """One reference as far as it is known before submitting."""

    kind: str | None  # image | video | first_frame | None (not known: billed as a video at its cap)
    seconds: float | None = None  # a video's duration, if known
    name: str = ""


def reference_labels(spec: ModelSpec, kinds: list[str | None]) -> list[str]:
    """What the prompt calls each reference (first frames get ``""``: the prompt does not name them).

    wan2.6: ``character1..5`` by position. wan2.7: ``Image N`` / ``Video N`` counted separately,
    and ``reference image`` / ``reference video`` when there is only one.
    """
    if spec.input_style == "reference_urls":
        return [f"character{i + 1}" for i in range(len(kinds))]
    counts = {"image": 0, "video": 0}
    labels: list[str] = []
    for kind in kinds:
        if kind == "first_frame":
            labels.append("")
            continue
        k = kind if kind in counts else "image"
        counts[k] += 1
        labels.append(f"{'Image' if k == 'image' else 'Video'} {counts[k]}")
    named = [i for i, label in enumerate(labels) if label]
    if len(named) == 1:
        only = kinds[named[0]]
        labels[named[0]] = f"reference {only if only in counts else 'image'}"
    return labels


def output_size(spec: ModelSpec, *, size: tuple[int, int] | None = None, resolution: str | None = None,
                ratio: str | None = None) -> tuple[int, int]:
    """The pixel size a request asks for, with the model's defaults; refused like a submit would be."""
    if spec.sizes:
        w, h = size or tuple(int(x) for x in (spec.default_size or "1920*1080").split("*"))
        if f"{w}*{h}" not in spec.sizes:
            raise InvalidParameter(f"size {w}*{h} is not supported; use one of {', '.join(spec.sizes)}.",
                                   param="size")
        return w, h
    if size is not None:
        return size
    resolution = resolution or spec.default_resolution or "1080P"
    ratio = ratio or spec.default_ratio or "16:9"
    if resolution not in spec.resolutions:
        raise InvalidParameter(f"resolution {resolution!r} is not supported; use one of "
                               f"{', '.join(spec.resolutions)}.", param="resolution")
    if ratio not in spec.ratios:
        raise InvalidParameter(f"ratio {ratio!r} is not supported; use one of {', '.join(spec.ratios)}.",
                               param="ratio")
    return ratio_size(resolution, ratio)


@dataclass(frozen=True)
class Estimate:
    model: str
    width: int
    height: int
    duration: int
    audio: bool
    input_seconds: float
    output_seconds: int
    billed_seconds: float
    unit_price_usd: float
    cost_usd: float
    exact: bool  # False when a reference's kind or duration was not known: then this is an upper bound
    references: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "size": f"{self.width}*{self.height}", "SR": tier_of(self.width, self.height),
                "duration": self.duration, "audio": self.audio, "input_video_duration": self.input_seconds,
                "output_video_duration": self.output_seconds, "billed_seconds": self.billed_seconds,
                "unit_price_usd": self.unit_price_usd, "cost_usd": self.cost_usd, "exact": self.exact,
                "references": self.references}


def estimate(spec: ModelSpec, region: str, refs: list[PreviewRef], *, size: tuple[int, int] | None = None,
             resolution: str | None = None, ratio: str | None = None, duration: int | None = None,
             audio: bool | None = None) -> Estimate:
    """Billed seconds and cost of a request, by the same rules that bill the finished task."""
    duration = spec.default_duration if duration is None else duration
    if duration not in spec.durations_for(region):
        allowed = spec.durations_for(region)
        raise InvalidParameter(f"duration {duration} is not supported by {spec.name} here; use "
                               f"{min(allowed)}-{max(allowed)}.", param="duration")
    audio = spec.default_audio if audio is None else audio
    if not audio and not spec.silent_allowed:
        raise InvalidParameter(f"audio=false is not supported by {spec.name}: it always generates audio.",
                               param="audio")
    width, height = output_size(spec, size=size, resolution=resolution, ratio=ratio)
    entities = [r for r in refs if r.kind != "first_frame"]
    labels = reference_labels(spec, [r.kind for r in refs])
    # A video of unknown length (or a reference of unknown kind) is billed at its cap: an upper bound.
    durations = [r.seconds if r.seconds is not None else math.inf for r in entities if r.kind != "image"]
    exact = all(r.kind in ("image", "video") and (r.kind == "image" or r.seconds is not None) for r in entities)
    usage = compute_usage(spec, video_durations=durations, reference_count=len(entities), width=width,
                          height=height, duration=duration, audio=audio)
    price = spec.prices.get(tier_of(width, height)) or spec.prices.get(720)
    unit = (price.audio if audio else price.silent) if price else 0.0
    per_ref = []
    for r, label in zip(refs, labels, strict=True):
        billed = 0.0
        if r.kind not in ("image", "first_frame"):
            split = len(entities) if spec.input_split_by == "references" else len(durations)
            limit = _limit(spec, split)
            billed = round(min(r.seconds, limit), 3) if r.seconds is not None else limit
        per_ref.append({"name": r.name, "kind": r.kind, "label": label, "seconds": r.seconds,
                        "billed_seconds": billed})
    return Estimate(model=spec.name, width=width, height=height, duration=duration, audio=audio,
                    input_seconds=usage.input_video_duration, output_seconds=usage.output_video_duration,
                    billed_seconds=usage.duration, unit_price_usd=unit, cost_usd=usage.cost_usd, exact=exact,
                    references=per_ref)


def _limit(spec: ModelSpec, count: int) -> float:
    """The per-video cap for ``count`` videos (or references), from the billing rules themselves."""
    if count <= 0:
        return 0.0
    if spec.input_split_by == "references":
        return billed_input_seconds(spec, [math.inf], count)
    return billed_input_seconds(spec, [math.inf] * count, count) / count
