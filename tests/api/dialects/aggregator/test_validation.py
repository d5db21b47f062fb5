"""Table-driven: invalid submits to /model/v1/generation, each with its exact HTTP status and seed-002 code."""

from __future__ import annotations

import copy
import random
from typing import Any

import httpx
import pytest

from tests.api.dialects.dashscope.test_validation import DELETE, _random_json, edit
from tests.helpers import CN_KEY, KEY, LiveServer

SUBMIT = "/model/v1/generation"

BODY = {
    "model": "wan26_r2v",
    "input": {"prompt": "character1 is talking with character2 in the garden",
              "reference_urls": ["https://example.com/char1.jpg", "https://example.com/char2.jpg"]},
    "parameters": {"size": "1280*720", "duration": 5},
}
PNG = "https://example.com/x.png"
MP4 = "https://example.com/x.mp4"
COUNT, IMAGES, VIDEOS, URL, CREATE = "001028001", "001028002", "001028003", "001028004", "001028099"

# (id, body (dict or raw bytes), key, status, code)
CASES: list[tuple[str, Any, str | None, int, str]] = [
    ("no-key", BODY, None, 401, "401"),
    ("bad-key", BODY, "sk-nope", 401, "401"),
    ("cross-region-key", BODY, CN_KEY, 401, "401"),
    ("not-json", b"{not json", KEY, 400, CREATE),
    ("json-array", b"[1, 2]", KEY, 400, CREATE),
    ("invalid-utf8", b'{"model": "\xff\xfe"}', KEY, 400, CREATE),
    ("no-model", edit(BODY, "model", DELETE), KEY, 400, CREATE),
    ("dashscope-model-name", edit(BODY, "model", "wan2.6-r2v"), KEY, 400, CREATE),
    ("model-not-string", edit(BODY, "model", 26), KEY, 400, CREATE),
    ("no-input", edit(BODY, "input", DELETE), KEY, 400, CREATE),
    ("input-not-object", edit(BODY, "input", "hello"), KEY, 400, CREATE),
    ("parameters-not-object", edit(BODY, "parameters", [1]), KEY, 400, CREATE),
    ("no-prompt", edit(BODY, "input.prompt", DELETE), KEY, 400, CREATE),
    ("blank-prompt", edit(BODY, "input.prompt", "  "), KEY, 400, CREATE),
    ("prompt-not-string", edit(BODY, "input.prompt", 5), KEY, 400, CREATE),
    ("no-reference-urls", edit(BODY, "input.reference_urls", DELETE), KEY, 400, COUNT),
    ("empty-reference-urls", edit(BODY, "input.reference_urls", []), KEY, 400, COUNT),
    ("reference-urls-string", edit(BODY, "input.reference_urls", PNG), KEY, 400, COUNT),
    ("six-mixed-references", edit(BODY, "input.reference_urls", [PNG] * 3 + [MP4] * 3), KEY, 400, COUNT),
    ("six-unknown-kind", edit(BODY, "input.reference_urls", ["https://example.com/r"] * 6), KEY, 400, COUNT),
    ("six-images", edit(BODY, "input.reference_urls", [PNG] * 6), KEY, 400, IMAGES),
    ("four-videos", edit(BODY, "input.reference_urls", [MP4] * 4), KEY, 400, VIDEOS),
    ("reference-url-int", edit(BODY, "input.reference_urls", [7]), KEY, 400, URL),
    ("reference-url-blank", edit(BODY, "input.reference_urls", [PNG, ""]), KEY, 400, URL),
    ("ftp-url", edit(BODY, "input.reference_urls", ["ftp://example.com/a.mp4"]), KEY, 400, URL),
    ("file-url", edit(BODY, "input.reference_urls", ["file:///etc/passwd"]), KEY, 400, URL),
    ("oss-url", edit(BODY, "input.reference_urls", ["oss://dashscope-instant/a.png"]), KEY, 400, URL),
    ("not-a-url", edit(BODY, "input.reference_urls", ["just words"]), KEY, 400, URL),
    ("gif-reference", edit(BODY, "input.reference_urls", ["https://example.com/a.gif"]), KEY, 400, URL),
    ("data-uri-bad-base64", edit(BODY, "input.reference_urls", ["data:image/png;base64,@@@@"]), KEY, 400, URL),
    ("data-uri-video", edit(BODY, "input.reference_urls", ["data:video/mp4;base64,AAAA"]), KEY, 400, URL),
    ("data-uri-text", edit(BODY, "input.reference_urls", ["data:text/plain;base64,aGVsbG8="]), KEY, 400, URL),
    ("data-uri-no-base64", edit(BODY, "input.reference_urls", ["data:image/png,rawbytes"]), KEY, 400, URL),
    ("audio-url-int", edit(BODY, "input.audio_url", 3), KEY, 400, CREATE),
    ("audio-url-ogg", edit(BODY, "input.audio_url", "https://example.com/a.ogg"), KEY, 400, CREATE),
    ("audio-url-ftp", edit(BODY, "input.audio_url", "ftp://example.com/a.mp3"), KEY, 400, CREATE),
    ("audio-url-with-silent", edit(edit(BODY, "input.audio_url", "https://example.com/a.mp3"),
                                   "parameters.audio", False), KEY, 400, CREATE),
    ("negative-too-long", edit(BODY, "input.negative_prompt", "n" * 501), KEY, 400, CREATE),
    ("size-ratio", edit(BODY, "parameters.size", "1:1"), KEY, 400, CREATE),
    ("size-480p", edit(BODY, "parameters.size", "480P"), KEY, 400, CREATE),
    ("size-not-in-table", edit(BODY, "parameters.size", "832*480"), KEY, 400, CREATE),
    ("size-x", edit(BODY, "parameters.size", "1280x720"), KEY, 400, CREATE),
    ("size-int", edit(BODY, "parameters.size", 1280), KEY, 400, CREATE),
    ("duration-1", edit(BODY, "parameters.duration", 1), KEY, 400, CREATE),
    ("duration-16", edit(BODY, "parameters.duration", 16), KEY, 400, CREATE),
    ("duration-string", edit(BODY, "parameters.duration", "5"), KEY, 400, CREATE),
    ("duration-fraction", edit(BODY, "parameters.duration", 5.5), KEY, 400, CREATE),
    ("audio-string", edit(BODY, "parameters.audio", "no"), KEY, 400, CREATE),
    ("watermark-string", edit(BODY, "parameters.watermark", "yes"), KEY, 400, CREATE),
    ("prompt-extend-int", edit(BODY, "parameters.prompt_extend", 1), KEY, 400, CREATE),
    ("shot-type", edit(BODY, "parameters.shot_type", "triple"), KEY, 400, CREATE),
    ("shot-type-without-extend", edit(edit(BODY, "parameters.shot_type", "triple"), "parameters.prompt_extend",
                                      False), KEY, 400, CREATE),
    ("seed-negative", edit(BODY, "parameters.seed", -1), KEY, 400, CREATE),
    ("seed-too-big", edit(BODY, "parameters.seed", 2147483648), KEY, 400, CREATE),
]


def post(server: LiveServer, body: Any, key: str | None, client: httpx.Client | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    raw = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    return (client or httpx).post(server.url + SUBMIT, content=raw, headers=headers, timeout=30)


def test_every_code_of_the_seed_is_in_the_table() -> None:
    assert {c[4] for c in CASES} >= {COUNT, IMAGES, VIDEOS, URL, CREATE}
    assert len(CASES) >= 40


@pytest.mark.parametrize(("body", "key", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_submit(server: LiveServer, body: Any, key: str | None, status: int, code: str) -> None:
    r = post(server, body, key)
    assert r.status_code == status, r.text
    got = r.json()
    assert got["error"]["code"] == code, got
    assert got["error"]["message"] and got["metadata"]["request_id"]
    assert set(got) == {"error", "metadata"}


def test_messages_name_the_field_and_limit(server: LiveServer) -> None:
    cases = {
        "parameters.duration": edit(BODY, "parameters.duration", 16),
        "parameters.size": edit(BODY, "parameters.size", "1:1"),
        "input.reference_urls[1]": edit(BODY, "input.reference_urls", [PNG, "ftp://x/y.png"]),
        "input.audio_url": edit(BODY, "input.audio_url", "https://example.com/a.ogg"),
    }
    for field, body in cases.items():
        msg = post(server, body, KEY).json()["error"]["message"]
        assert field in msg, (field, msg)
    assert "2 to 15" in post(server, edit(BODY, "parameters.duration", 16), KEY).json()["error"]["message"]


def test_private_addresses_refused_at_submit(make_server: Any) -> None:
    strict = make_server(allow_private_urls=False, render_threads=0)
    for field, url in (("input.reference_urls", ["http://127.0.0.1/a.png"]),
                       ("input.reference_urls", [PNG, "http://169.254.169.254/latest/meta-data"]),
                       ("input.audio_url", "http://10.0.0.1/a.mp3")):
        r = post(strict, edit(BODY, field, url), KEY)
        expected = URL if field == "input.reference_urls" else CREATE
        assert (r.status_code, r.json()["error"]["code"]) == (400, expected), (url, r.text)


def test_no_shape_yields_500(make_server: Any) -> None:
    server = make_server(submit_rate_per_second=0, max_concurrent_tasks=0, render_threads=0)
    rng = random.Random(2002)
    bodies: list[Any] = [_random_json(rng) for _ in range(100)]
    for _ in range(200):
        base = copy.deepcopy(BODY)
        section = rng.choice(["input", "parameters", None])
        if section is None:
            base[rng.choice(["model", "input", "parameters", "extra"])] = _random_json(rng, 1)
        else:
            keys = list(base[section]) + ["audio_url", "seed", "audio", "shot_type", "prompt_extend", "extra"]
            base[section][rng.choice(keys)] = _random_json(rng, 1)
        bodies.append(base)
    with httpx.Client() as client:
        responses = [(body, post(server, body, KEY, client)) for body in bodies]
    for body, r in responses:
        assert r.status_code < 500, (body, r.text)
        if r.status_code != 200:
            assert set(r.json()) == {"error", "metadata"}


def test_size_digits_that_int_refuses_are_400(server: LiveServer) -> None:
    # Found by tests/api/test_fuzz.py: "1²" passed str.isdigit and int() refused it (a 500).
    body = edit(BODY, "parameters.size", "1²*720")
    r = httpx.post(server.url + SUBMIT, json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert r.status_code == 400, r.text
