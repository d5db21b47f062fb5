"""Table-driven: invalid submits to /v1/video/generations, each with its exact HTTP status and gateway code."""

from __future__ import annotations

import copy
import random
from typing import Any

import httpx
import pytest

from tests.api.dialects.dashscope.test_validation import DELETE, _random_json, edit
from tests.helpers import CN_KEY, KEY, LiveServer

SUBMIT = "/v1/video/generations"
BODY = {
    "prompt": "character1 and character2 talk to each other in an office.",
    "model": "wan2.6-r2v",
    "metadata": {
        "input": {"reference_video_urls": ["https://example.com/character1-video.mp4",
                                           "https://example.com/character2-video.mp4"],
                  "negative_prompt": "white walls"},
        "parameters": {"size": "1280*720", "duration": 10, "shot_type": "multi", "watermark": True},
    },
}
REFS = "metadata.input.reference_video_urls"
PARAMS = "metadata.parameters"
MP4 = "https://example.com/x.mp4"
BAD, KEYS = "invalid_request", "invalid_api_key"

# (id, body (dict or raw bytes), key, status, code)
CASES: list[tuple[str, Any, str | None, int, str]] = [
    ("no-key", BODY, None, 401, KEYS),
    ("bad-key", BODY, "sk-nope", 401, KEYS),
    ("cross-region-key", BODY, CN_KEY, 401, KEYS),
    ("not-json", b"{not json", KEY, 400, BAD),
    ("json-array", b"[1, 2]", KEY, 400, BAD),
    ("invalid-utf8", b'{"model": "\xff\xfe"}', KEY, 400, BAD),
    ("no-model", edit(BODY, "model", DELETE), KEY, 400, BAD),
    ("flash-model", edit(BODY, "model", "wan2.6-r2v-flash"), KEY, 400, BAD),
    ("wan27-model", edit(BODY, "model", "wan2.7-r2v"), KEY, 400, BAD),
    ("aggregator-model", edit(BODY, "model", "wan26_r2v"), KEY, 400, BAD),
    ("model-not-string", edit(BODY, "model", ["wan2.6-r2v"]), KEY, 400, BAD),
    ("no-prompt", edit(BODY, "prompt", DELETE), KEY, 400, BAD),
    ("blank-prompt", edit(BODY, "prompt", " "), KEY, 400, BAD),
    ("prompt-not-string", edit(BODY, "prompt", 1), KEY, 400, BAD),
    ("prompt-too-long", edit(BODY, "prompt", "p" * 1501), KEY, 400, BAD),
    ("no-metadata", edit(BODY, "metadata", DELETE), KEY, 400, BAD),
    ("metadata-string", edit(BODY, "metadata", "input"), KEY, 400, BAD),
    ("metadata-input-list", edit(BODY, "metadata.input", [MP4]), KEY, 400, BAD),
    ("metadata-parameters-string", edit(BODY, "metadata.parameters", "hd"), KEY, 400, BAD),
    ("no-reference-videos", edit(BODY, REFS, DELETE), KEY, 400, BAD),
    ("empty-reference-videos", edit(BODY, REFS, []), KEY, 400, BAD),
    ("reference-videos-string", edit(BODY, REFS, MP4), KEY, 400, BAD),
    ("four-reference-videos", edit(BODY, REFS, [MP4] * 4), KEY, 400, BAD),
    ("image-reference", edit(BODY, REFS, ["https://example.com/a.png"]), KEY, 400, BAD),
    ("gif-reference", edit(BODY, REFS, ["https://example.com/a.gif"]), KEY, 400, BAD),
    ("video-data-uri", edit(BODY, REFS, ["data:video/mp4;base64,AAAA"]), KEY, 400, BAD),
    ("image-data-uri", edit(BODY, REFS, ["data:image/png;base64,AAAA"]), KEY, 400, BAD),
    ("ftp-url", edit(BODY, REFS, ["ftp://example.com/a.mp4"]), KEY, 400, BAD),
    ("file-url", edit(BODY, REFS, ["file:///etc/passwd"]), KEY, 400, BAD),
    ("oss-url", edit(BODY, REFS, ["oss://dashscope-instant/a.mp4"]), KEY, 400, BAD),
    ("reference-int", edit(BODY, REFS, [3]), KEY, 400, BAD),
    ("negative-too-long", edit(BODY, "metadata.input.negative_prompt", "n" * 501), KEY, 400, BAD),
    ("negative-not-string", edit(BODY, "metadata.input.negative_prompt", ["walls"]), KEY, 400, BAD),
    ("size-not-in-table", edit(BODY, f"{PARAMS}.size", "832*480"), KEY, 400, BAD),
    ("size-words", edit(BODY, f"{PARAMS}.size", "1080P"), KEY, 400, BAD),
    ("size-x", edit(BODY, f"{PARAMS}.size", "1280x720"), KEY, 400, BAD),
    ("duration-2", edit(BODY, f"{PARAMS}.duration", 2), KEY, 400, BAD),
    ("duration-7", edit(BODY, f"{PARAMS}.duration", 7), KEY, 400, BAD),
    ("duration-15", edit(BODY, f"{PARAMS}.duration", 15), KEY, 400, BAD),
    ("duration-string", edit(BODY, f"{PARAMS}.duration", "5"), KEY, 400, BAD),
    ("duration-fraction", edit(BODY, f"{PARAMS}.duration", 5.0), KEY, 400, BAD),
    ("shot-type", edit(BODY, f"{PARAMS}.shot_type", "triple"), KEY, 400, BAD),
    ("watermark-string", edit(BODY, f"{PARAMS}.watermark", "yes"), KEY, 400, BAD),
    ("seed-negative", edit(BODY, f"{PARAMS}.seed", -1), KEY, 400, BAD),
    ("seed-too-big", edit(BODY, f"{PARAMS}.seed", 2147483648), KEY, 400, BAD),
    ("silent", edit(BODY, f"{PARAMS}.audio", False), KEY, 400, BAD),
    ("prompt-extend-string", edit(BODY, f"{PARAMS}.prompt_extend", "true"), KEY, 400, BAD),
]


def post(server: LiveServer, body: Any, key: str | None, client: httpx.Client | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    raw = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    return (client or httpx).post(server.url + SUBMIT, content=raw, headers=headers, timeout=30)


def test_table_size() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(("body", "key", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_submit(server: LiveServer, body: Any, key: str | None, status: int, code: str) -> None:
    r = post(server, body, key)
    assert r.status_code == status, r.text
    got = r.json()
    assert set(got) == {"code", "message", "data"}, got
    assert got["code"] == code and got["message"] and got["data"] is None, got
    assert r.headers["x-request-id"]


def test_messages_name_the_field_and_limit(server: LiveServer) -> None:
    cases = {
        f"{PARAMS}.duration": edit(BODY, f"{PARAMS}.duration", 7),
        f"{PARAMS}.size": edit(BODY, f"{PARAMS}.size", "832*480"),
        f"{REFS}[0]": edit(BODY, REFS, ["https://example.com/a.png"]),
        REFS: edit(BODY, REFS, [MP4] * 4),
        "metadata.input.negative_prompt": edit(BODY, "metadata.input.negative_prompt", "n" * 501),
    }
    for field, body in cases.items():
        msg = post(server, body, KEY).json()["message"]
        assert field in msg, (field, msg)
    assert "5 or 10" in post(server, edit(BODY, f"{PARAMS}.duration", 7), KEY).json()["message"]


def test_defaults_and_official_fields(make_server: Any) -> None:
    idle = make_server(render_threads=0)
    body = edit(edit(BODY, f"{PARAMS}", {}), "metadata.input.reference_video_urls", [MP4])
    r = post(idle, body, KEY)
    assert r.status_code == 200, r.text
    stored = idle.app.state.runtime.store.get(r.json()["id"])  # type: ignore[attr-defined]
    req = stored.request
    assert (req.size, req.duration, req.shot_type, req.watermark) == ((1920, 1080), 5, "single", False)
    assert [ref.kind for ref in req.references] == ["video"] and req.references[0].label == "character1"


def test_unknown_task_is_task_not_exist(server: LiveServer) -> None:
    with server.client() as c:
        r = c.get(f"{SUBMIT}/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 400 and r.json()["code"] == "task_not_exist" and r.json()["data"] is None


def test_no_shape_yields_500(make_server: Any) -> None:
    server = make_server(submit_rate_per_second=0, max_concurrent_tasks=0, render_threads=0)
    rng = random.Random(3003)
    bodies: list[Any] = [_random_json(rng) for _ in range(100)]
    for _ in range(200):
        base = copy.deepcopy(BODY)
        where = rng.choice([base, base["metadata"], base["metadata"]["input"], base["metadata"]["parameters"]])
        where[rng.choice(list(where) + ["extra", "seed", "audio", "prompt_extend"])] = _random_json(rng, 1)
        bodies.append(base)
    with httpx.Client() as client:
        responses = [(body, post(server, body, KEY, client)) for body in bodies]
    for body, r in responses:
        assert r.status_code < 500, (body, r.text)
        if r.status_code != 200:
            assert set(r.json()) == {"code", "message", "data"}


def test_size_digits_that_int_refuses_are_400(server: LiveServer) -> None:
    # Found by tests/api/test_fuzz.py: "1²" passed str.isdigit and int() refused it (a 500).
    body = edit(BODY, "metadata.parameters.size", "1²*720")
    r = httpx.post(server.url + SUBMIT, json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert r.status_code == 400, r.text
