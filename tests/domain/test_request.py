"""check_inputs against the registry, without HTTP."""

from __future__ import annotations

import pytest

from openr2v.domain.models import REGISTRY
from openr2v.domain.request import GenerationRequest, Reference, check_inputs, guess_kind
from openr2v.errors import AccessDenied, InvalidParameter


def ref(url: str, i: int = 0) -> Reference:
    return Reference(kind=guess_kind(url), source=url, label=f"character{i + 1}", field=f"input.reference_urls[{i}]")


def test_defaults_are_filled_from_the_registry() -> None:
    req = check_inputs(GenerationRequest(model="wan2.6-r2v", prompt="p", references=[ref("https://e.com/a.png")]),
                       REGISTRY["wan2.6-r2v"], "intl")
    assert req.size == (1920, 1080) and req.duration == 5


def test_wan27_ratio_table_and_first_frame_defers_size() -> None:
    spec = REGISTRY["wan2.7-r2v"]
    req = GenerationRequest(model="wan2.7-r2v", prompt="p", references=[ref("https://e.com/a.png")],
                            resolution="720P", ratio="9:16")
    assert check_inputs(req, spec, "intl").size == (720, 1280)
    req = GenerationRequest(model="wan2.7-r2v", prompt="p", references=[ref("https://e.com/a.png")],
                            first_frame="https://e.com/f.png", resolution="720P", ratio="9:16")
    assert check_inputs(req, spec, "intl").size is None


def test_region_gate() -> None:
    with pytest.raises(AccessDenied):
        check_inputs(GenerationRequest(model="wan2.6-r2v-flash", prompt="p", references=[ref("https://e.com/a.png")]),
                     REGISTRY["wan2.6-r2v-flash"], "us")


@pytest.mark.parametrize("duration", [2, 10])
def test_duration_bounds_inclusive(duration: int) -> None:
    check_inputs(GenerationRequest(model="wan2.6-r2v-flash", prompt="p", duration=duration,
                                   references=[ref("https://e.com/a.png")]), REGISTRY["wan2.6-r2v-flash"], "cn")


def test_silent_only_on_flash() -> None:
    req = GenerationRequest(model="wan2.6-r2v-flash", prompt="p", audio=False, references=[ref("https://e.com/a.png")])
    check_inputs(req, REGISTRY["wan2.6-r2v-flash"], "intl")
    with pytest.raises(InvalidParameter, match="audio"):
        check_inputs(req.model_copy(update={"model": "wan2.6-r2v"}), REGISTRY["wan2.6-r2v"], "intl")
