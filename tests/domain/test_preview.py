"""Labels and cost before submitting: the same rules as the prompt grammar and the bill."""

from __future__ import annotations

import pytest

from openr2v.domain.billing import compute_usage
from openr2v.domain.models import REGISTRY
from openr2v.domain.preview import PreviewRef, estimate, reference_labels
from openr2v.errors import InvalidParameter

W26, W27 = REGISTRY["wan2.6-r2v"], REGISTRY["wan2.7-r2v"]


def test_labels_per_family() -> None:
    assert reference_labels(W26, ["video", "image", None]) == ["character1", "character2", "character3"]
    assert reference_labels(W27, ["image", "video", "image", "video"]) == ["Image 1", "Video 1", "Image 2",
                                                                           "Video 2"]
    assert reference_labels(W27, ["first_frame", "video"]) == ["", "reference video"]


@pytest.mark.parametrize(("spec", "refs", "billed_in"), [
    # The wan2.6-r2v guide: the cap is split over all references (3 -> 1.65 s).
    (W26, [PreviewRef("video", 4.0), PreviewRef("video", 1.0), PreviewRef("image")], 1.65 + 1.0),
    # The wan2.7-r2v guide: over reference videos only (2 -> 2.5 s); the first frame and images are free.
    (W27, [PreviewRef("first_frame"), PreviewRef("video", 4.0), PreviewRef("video", 1.0), PreviewRef("image")],
     2.5 + 1.0),
])
def test_estimate_matches_the_bill(spec: object, refs: list[PreviewRef], billed_in: float) -> None:
    est = estimate(spec, "intl", refs, duration=5)  # type: ignore[arg-type]
    assert est.exact and est.input_seconds == pytest.approx(billed_in)
    bill = compute_usage(spec, video_durations=[r.seconds for r in refs if r.kind == "video"],  # type: ignore[misc]
                         reference_count=sum(r.kind != "first_frame" for r in refs), width=est.width,
                         height=est.height, duration=5, audio=True)
    assert (est.billed_seconds, est.cost_usd) == (bill.duration, bill.cost_usd)
    assert sum(r["billed_seconds"] for r in est.references) == pytest.approx(billed_in)


def test_unknown_lengths_give_an_upper_bound_and_limits_are_enforced() -> None:
    est = estimate(W26, "intl", [PreviewRef("video"), PreviewRef(None)], size=(1280, 720), duration=2)
    assert not est.exact and est.input_seconds == 5.0 and (est.width, est.height) == (1280, 720)
    with pytest.raises(InvalidParameter, match="duration"):
        estimate(W26, "us", [PreviewRef("image")], duration=7)  # the us region offers 5 or 10 s only
    with pytest.raises(InvalidParameter, match="size"):
        estimate(W26, "intl", [PreviewRef("image")], size=(100, 100))
    with pytest.raises(InvalidParameter, match="ratio"):
        estimate(W27, "intl", [PreviewRef("image")], ratio="2:1")
