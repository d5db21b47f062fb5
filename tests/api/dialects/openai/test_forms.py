"""Bracketed multipart fields -> JSON, as the openai SDK flattens extra_body."""

from __future__ import annotations

import pytest
from openai._qs import Querystring

from openr2v.api.dialects.openai.forms import coerce, unflatten
from openr2v.errors import InvalidParameter


def sdk_fields(body: dict[str, object]) -> list[tuple[str, str]]:
    """What the SDK sends: its "brackets" items, then grouped by name as its multipart encoder does."""
    grouped: dict[str, list[str]] = {}
    for key, value in Querystring().stringify_items(body, array_format="brackets"):  # type: ignore[arg-type]
        grouped.setdefault(key, []).append(value)
    return [(k, v) for k, values in grouped.items() for v in values]


def test_round_trip_of_what_the_sdk_sends() -> None:
    body = {"prompt": "p", "seconds": "4", "references": ["https://a/1.png", "https://a/2.mp4"],
            "parameters": {"audio": False, "seed": 5, "shot_type": "multi"},
            "input_reference": {"image_url": "https://a/f.png"}}
    assert coerce(unflatten(sdk_fields(body))) == body


def test_lists_of_objects_rebuild_by_position() -> None:
    objects = [{"url": "https://a/1.mp4", "type": "video", "reference_voice": "none"},
               {"url": "https://a/2.png", "type": "image", "reference_voice": "https://a/v.mp3"}]
    got = unflatten(sdk_fields({"references": objects}))
    assert got == {"references": [{"url": "https://a/1.mp4", "type": "video"},
                                  {"url": "https://a/2.png", "type": "image", "reference_voice": "https://a/v.mp3"}]}
    # Interleaved, as a person writes curl -F fields: the same result.
    interleaved = [("references[][url]", "https://a/1.mp4"), ("references[][type]", "video"),
                   ("references[][url]", "https://a/2.png"), ("references[][type]", "image")]
    assert unflatten(interleaved)["references"][1] == {"url": "https://a/2.png", "type": "image"}


@pytest.mark.parametrize("fields", [
    [("references[][url]", "a"), ("references[][url]", "b"), ("references[][type]", "image")],
    [("a[b", "1")],
    [("x", "1"), ("x", "2")],
    [("x[]", "1"), ("x", "2")],
    [("x[y]", "1"), ("x", "2")],
    [("a[][b][c]", "1")],
    [("a[b][c][d][e]", "1")],
])
def test_refused_shapes(fields: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidParameter):
        unflatten(fields)


def test_coerce_leaves_what_it_cannot_read() -> None:
    assert coerce({"parameters": {"audio": "TRUE", "seed": "-3", "watermark": "maybe"}}) == {
        "parameters": {"audio": True, "seed": -3, "watermark": "maybe"}}


def test_list_spellings() -> None:
    assert unflatten([("references[]", "a"), ("references[]", "b")]) == {"references": ["a", "b"]}
    assert unflatten([("references", "a"), ("references", "b")]) == {"references": ["a", "b"]}
    assert unflatten([("references", "a")]) == {"references": ["a"]}
    assert unflatten([("parameters[references]", "a")]) == {"parameters": {"references": "a"}}  # top level only
    with pytest.raises(InvalidParameter, match=r"references\[\]=.*references=") as e:
        unflatten([("references", "a"), ("references[]", "b")])
    assert e.value.param == "references"


def test_coerce_reads_vllm_omni_numbers() -> None:
    assert coerce({"width": "1280", "fps": "16", "guidance_scale": "4.5", "flow_shift": "3", "generate_sound": "true",
                   "seed": "x"}) == {"width": 1280, "fps": 16, "guidance_scale": 4.5, "flow_shift": 3.0,
                                     "generate_sound": True, "seed": "x"}
