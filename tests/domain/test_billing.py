"""Billing by the documents' formulas."""

from __future__ import annotations

import pytest

from openr2v.domain.billing import billed_input_seconds, compute_usage
from openr2v.domain.models import REGISTRY

W26 = REGISTRY["wan2.6-r2v-flash"]
W27 = REGISTRY["wan2.7-r2v"]


@pytest.mark.parametrize(("refs", "limit"), [(1, 5.0), (2, 2.5), (3, 1.65), (4, 1.25), (5, 1.0)])
def test_wan26_truncation_follows_the_reference_count(refs: int, limit: float) -> None:
    # One long video among `refs` references: billed at the per-reference truncation limit.
    assert billed_input_seconds(W26, [30.0], refs) == limit


def test_wan26_guide_example_three_references() -> None:
    # 1 image + 2 videos: 1.65 s limit per video.
    assert billed_input_seconds(W26, [4.0, 1.0], 3) == pytest.approx(1.65 + 1.0)


def test_wan27_guide_example_two_videos_and_an_image() -> None:
    # wan2.7 splits over videos only: 2 videos -> 2.5 s each, the image is not counted.
    assert billed_input_seconds(W27, [10.0, 10.0], 3) == 5.0
    assert billed_input_seconds(W27, [1.0, 10.0], 3) == 3.5


def test_images_only_bill_nothing_in() -> None:
    assert billed_input_seconds(W26, [], 4) == 0.0
    assert billed_input_seconds(W27, [], 2) == 0.0


def test_usage_shape_and_cost() -> None:
    u = compute_usage(W26, video_durations=[10.0], reference_count=2, width=1280, height=720, duration=10,
                      audio=False)
    d = u.as_dict()
    assert d["input_video_duration"] == 2.5 and d["output_video_duration"] == 10 and d["duration"] == 12.5
    assert d["SR"] == 720 and d["size"] == "1280*720" and d["video_ratio"] == "1280*720"
    assert d["video_count"] == 1
    assert u.cost_usd == pytest.approx(12.5 * W26.prices[720].silent)
    loud = compute_usage(W26, video_durations=[10.0], reference_count=2, width=1920, height=1080, duration=10,
                         audio=True)
    assert loud.sr == 1080 and loud.cost_usd > u.cost_usd
