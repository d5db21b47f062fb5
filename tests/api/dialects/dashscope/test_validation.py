"""Table-driven: invalid submits, one or more per documented rule, each with its exact status and code."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.helpers import CN_KEY, KEY, LiveServer

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
ASYNC = {"X-DashScope-Async": "enable"}

V26 = {
    "model": "wan2.6-r2v-flash",
    "input": {"prompt": "character1 waves at character2.",
              "reference_urls": ["https://example.com/a.mp4", "https://example.com/b.png"]},
    "parameters": {"size": "1280*720", "duration": 5},
}
V27 = {
    "model": "wan2.7-r2v",
    "input": {"prompt": "Video 1 talks to Image 1.",
              "media": [{"type": "reference_video", "url": "https://example.com/a.mp4"},
                        {"type": "reference_image", "url": "https://example.com/b.png",
                         "reference_voice": "https://example.com/v.mp3"}]},
    "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 5},
}


def edit(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of base with path (dotted) set to value, or deleted when value is DELETE."""
    body = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = body
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return body


DELETE = object()
PNG = "https://example.com/x.png"
MP4 = "https://example.com/x.mp4"

# (id, body (dict or raw bytes), headers override, key, status, code)
CASES: list[tuple[str, Any, dict[str, str] | None, str | None, int, str]] = [
    ("no-async-header", V26, {}, KEY, 403, "AccessDenied"),
    ("async-disabled", V26, {"X-DashScope-Async": "disable"}, KEY, 403, "AccessDenied"),
    ("no-key", V26, None, None, 401, "InvalidApiKey"),
    ("bad-key", V26, None, "sk-nope", 401, "InvalidApiKey"),
    ("cross-region-key", V26, None, CN_KEY, 401, "InvalidApiKey"),
    ("not-json", b"{not json", None, KEY, 400, "InvalidParameter"),
    ("json-array", b"[1, 2]", None, KEY, 400, "InvalidParameter"),
    ("invalid-utf8", b'{"model": "\xff\xfe"}', None, KEY, 400, "InvalidParameter"),
    ("no-model", edit(V26, "model", DELETE), None, KEY, 400, "BadRequest.EmptyModel"),
    ("empty-model", edit(V26, "model", ""), None, KEY, 400, "BadRequest.EmptyModel"),
    ("model-not-string", edit(V26, "model", 26), None, KEY, 400, "InvalidParameter"),
    ("unknown-model", edit(V26, "model", "wan9-r2v"), None, KEY, 400, "InvalidParameter"),
    ("other-dialects-model", edit(V26, "model", "wan26_r2v"), None, KEY, 400, "InvalidParameter"),
    ("no-input", edit(V26, "input", DELETE), None, KEY, 400, "BadRequest.EmptyInput"),
    ("empty-input", edit(V26, "input", {}), None, KEY, 400, "BadRequest.EmptyInput"),
    ("parameters-not-object", edit(V26, "parameters", "fast"), None, KEY, 400, "BadRequest.EmptyParameters"),
    ("no-prompt", edit(V26, "input.prompt", DELETE), None, KEY, 400, "InvalidParameter"),
    ("blank-prompt", edit(V26, "input.prompt", "   "), None, KEY, 400, "InvalidParameter"),
    ("prompt-not-string", edit(V26, "input.prompt", 123), None, KEY, 400, "InvalidParameter"),
    ("prompt-too-long", edit(V26, "input.prompt", "a" * 1501), None, KEY, 400, "InvalidParameter"),
    ("negative-too-long", edit(V26, "input.negative_prompt", "a" * 501), None, KEY, 400, "InvalidParameter"),
    ("no-reference-urls", edit(V26, "input.reference_urls", DELETE), None, KEY, 400, "InvalidParameter"),
    ("empty-reference-urls", edit(V26, "input.reference_urls", []), None, KEY, 400, "InvalidParameter"),
    ("six-references", edit(V26, "input.reference_urls", [PNG] * 6), None, KEY, 400, "InvalidParameter"),
    ("four-videos", edit(V26, "input.reference_urls", [MP4] * 4), None, KEY, 400, "InvalidParameter"),
    ("reference-urls-string", edit(V26, "input.reference_urls", MP4), None, KEY, 400, "InvalidParameter"),
    ("reference-url-int", edit(V26, "input.reference_urls", [7]), None, KEY, 400, "InvalidParameter"),
    ("ftp-url", edit(V26, "input.reference_urls", ["ftp://example.com/a.mp4"]), None, KEY, 400, "InvalidURL"),
    ("file-url", edit(V26, "input.reference_urls", ["file:///etc/passwd"]), None, KEY, 400, "InvalidURL"),
    ("not-a-url", edit(V26, "input.reference_urls", ["just words"]), None, KEY, 400, "InvalidURL"),
    ("gif-reference", edit(V26, "input.reference_urls", ["https://example.com/a.gif"]), None, KEY, 400,
     "InvalidParameter"),
    ("media-on-wan26", edit(V26, "input.media", [{"type": "reference_image", "url": PNG}]), None, KEY, 400,
     "InvalidParameter"),
    ("size-not-in-table", edit(V26, "parameters.size", "1280*721"), None, KEY, 400, "InvalidParameter"),
    ("size-words", edit(V26, "parameters.size", "big"), None, KEY, 400, "InvalidParameter"),
    ("size-480p", edit(V26, "parameters.size", "832*480"), None, KEY, 400, "InvalidParameter"),
    ("size-int", edit(V26, "parameters.size", 1280), None, KEY, 400, "InvalidParameter"),
    ("size-with-x", edit(V26, "parameters.size", "1280x720"), None, KEY, 400, "InvalidParameter"),
    ("size-with-capital-x", edit(V26, "parameters.size", "1280X720"), None, KEY, 400, "InvalidParameter"),
    ("wan27-size-with-x", edit(V27, "parameters.size", "1280x720"), None, KEY, 400, "InvalidParameter"),
    ("duration-1", edit(V26, "parameters.duration", 1), None, KEY, 400, "InvalidParameter"),
    ("duration-11", edit(V26, "parameters.duration", 11), None, KEY, 400, "InvalidParameter"),
    ("duration-string", edit(V26, "parameters.duration", "5"), None, KEY, 400, "InvalidParameter"),
    ("duration-fraction", edit(V26, "parameters.duration", 5.5), None, KEY, 400, "InvalidParameter"),
    ("silent-wan26", edit(edit(V26, "model", "wan2.6-r2v"), "parameters.audio", False), None, KEY, 400,
     "InvalidParameter"),
    ("audio-string", edit(V26, "parameters.audio", "no"), None, KEY, 400, "InvalidParameter"),
    ("shot-type", edit(V26, "parameters.shot_type", "triple"), None, KEY, 400, "InvalidParameter"),
    ("watermark-string", edit(V26, "parameters.watermark", "yes"), None, KEY, 400, "InvalidParameter"),
    ("seed-negative", edit(V26, "parameters.seed", -1), None, KEY, 400, "InvalidParameter"),
    ("seed-too-big", edit(V26, "parameters.seed", 2147483648), None, KEY, 400, "InvalidParameter"),
    ("prompt-extend-string", edit(V26, "parameters.prompt_extend", "true"), None, KEY, 400, "InvalidParameter"),
    ("wan27-reference-urls", edit(V27, "input.reference_urls", [PNG]), None, KEY, 400, "InvalidParameter"),
    ("wan27-no-media", edit(V27, "input.media", DELETE), None, KEY, 400, "InvalidParameter"),
    ("wan27-empty-media", edit(V27, "input.media", []), None, KEY, 400, "InvalidParameter"),
    ("wan27-media-type", edit(V27, "input.media", [{"type": "audio", "url": PNG}]), None, KEY, 400,
     "InvalidParameter"),
    ("wan27-media-no-url", edit(V27, "input.media", [{"type": "reference_image"}]), None, KEY, 400,
     "InvalidParameter"),
    ("wan27-two-first-frames", edit(V27, "input.media", [{"type": "first_frame", "url": PNG},
                                                          {"type": "first_frame", "url": PNG},
                                                          {"type": "reference_image", "url": PNG}]),
     None, KEY, 400, "InvalidParameter"),
    ("wan27-only-first-frame", edit(V27, "input.media", [{"type": "first_frame", "url": PNG}]), None, KEY, 400,
     "InvalidParameter"),
    ("wan27-six-references", edit(V27, "input.media", [{"type": "reference_image", "url": PNG}] * 3
                                  + [{"type": "reference_video", "url": MP4}] * 3), None, KEY, 400,
     "InvalidParameter"),
    ("wan27-voice-on-first-frame", edit(V27, "input.media", [
        {"type": "first_frame", "url": PNG, "reference_voice": "https://example.com/v.mp3"},
        {"type": "reference_image", "url": PNG}]), None, KEY, 400, "InvalidParameter"),
    ("wan27-voice-format", edit(V27, "input.media", [
        {"type": "reference_image", "url": PNG, "reference_voice": "https://example.com/v.ogg"}]), None, KEY,
     400, "InvalidParameter"),
    ("wan27-resolution", edit(V27, "parameters.resolution", "480P"), None, KEY, 400, "InvalidParameter"),
    ("wan27-ratio", edit(V27, "parameters.ratio", "21:9"), None, KEY, 400, "InvalidParameter"),
    ("wan27-duration-16", edit(V27, "parameters.duration", 16), None, KEY, 400, "InvalidParameter"),
    ("wan27-size-not-in-table", edit(V27, "parameters.size", "1000*1000"), None, KEY, 400, "InvalidParameter"),
    ("wan27-silent", edit(V27, "parameters.audio", False), None, KEY, 400, "InvalidParameter"),
    ("wan27-video-data-uri", edit(V27, "input.media", [{"type": "reference_video",
                                                         "url": "data:video/mp4;base64,AAAA"}]),
     None, KEY, 400, "InvalidURL"),
    ("wan27-bad-base64", edit(V27, "input.media", [{"type": "reference_image",
                                                     "url": "data:image/png;base64,@@@@"}]),
     None, KEY, 400, "InvalidURL"),
    ("wan27-data-uri-mime", edit(V27, "input.media", [{"type": "reference_image",
                                                        "url": "data:text/plain;base64,aGVsbG8="}]),
     None, KEY, 400, "InvalidParameter"),
    ("oss-without-resolve-header", edit(V26, "input.reference_urls", ["oss://dashscope-instant/x/a.png"]),
     None, KEY, 400, "InvalidURL"),
    ("oss-unknown-key", edit(V26, "input.reference_urls", ["oss://dashscope-instant/x/a.png"]),
     {**ASYNC, "X-DashScope-OssResourceResolve": "enable"}, KEY, 400, "InvalidURL"),
]


def post(server: LiveServer, body: Any, headers: dict[str, str] | None, key: str | None):
    h = dict(ASYNC if headers is None else headers)
    if key is not None:
        h["Authorization"] = f"Bearer {key}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    import httpx

    return httpx.post(server.url + SUBMIT, content=raw, headers={**h, "Content-Type": "application/json"},
                      timeout=30)


def test_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(("body", "headers", "key", "status", "code"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_invalid_submit(server: LiveServer, body: Any, headers: Any, key: str | None, status: int,
                        code: str) -> None:
    r = post(server, body, headers, key)
    assert r.status_code == status, r.text
    got = r.json()
    assert got["code"] == code, got
    assert got["request_id"] and got["message"]
    assert r.headers["content-type"].startswith("application/json")


def test_messages_name_the_field(server: LiveServer) -> None:
    cases = {
        "parameters.duration": edit(V26, "parameters.duration", 11),
        "parameters.size": edit(V26, "parameters.size", "1280*721"),
        "parameters.size '1280x720' must be WIDTH*HEIGHT": edit(V26, "parameters.size", "1280x720"),
        "input.reference_urls": edit(V26, "input.reference_urls", [PNG] * 6),
        "input.prompt": edit(V26, "input.prompt", "a" * 1501),
        "parameters.seed": edit(V26, "parameters.seed", -5),
        "input.media[1].reference_voice": edit(V27, "input.media", [
            V27["input"]["media"][0], {"type": "reference_image", "url": PNG, "reference_voice": "https://e.com/v.ogg"}]),
    }
    for field, body in cases.items():
        msg = post(server, body, None, KEY).json()["message"]
        assert field in msg, (field, msg)
    msg = post(server, edit(V26, "parameters.duration", 11), None, KEY).json()["message"]
    assert "2" in msg and "10" in msg  # names the limit


def test_region_rules(make_server: Any) -> None:
    us = make_server(region="us", api_keys="sk-us:us")
    # wan2.6-r2v-flash is not offered in the Global (us) region.
    r = post(us, V26, None, "sk-us")
    assert (r.status_code, r.json()["code"]) == (403, "AccessDenied")
    # wan2.6-r2v there offers 5 s or 10 s only.
    body = edit(edit(V26, "model", "wan2.6-r2v"), "parameters.duration", 3)
    r = post(us, body, None, "sk-us")
    assert (r.status_code, r.json()["code"]) == (400, "InvalidParameter")
    assert "5 or 10" in r.json()["message"]


def test_private_addresses_refused_at_submit(make_server: Any) -> None:
    strict = make_server(allow_private_urls=False)
    for url in ("http://127.0.0.1/a.png", "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/a.mp4",
                "http://[::1]/a.png", "http://localhost/a.png"):
        r = post(strict, edit(V26, "input.reference_urls", [url]), None, KEY)
        assert (r.status_code, r.json()["code"]) == (400, "InvalidURL"), (url, r.text)


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    choices = ["int", "str", "float", "bool", "null", "list", "dict"] if depth < 3 else ["int", "str", "null"]
    kind = rng.choice(choices)
    if kind == "int":
        return rng.choice([0, -1, 1, 5, 10, 2**31, 2**63, -(2**40)])
    if kind == "str":
        return rng.choice(["", "x", "1280*720", "wan2.7-r2v", "720P", "https://example.com/a.png", "\u0000",
                           "character1", "oss://x", "data:image/png;base64,AAAA", "\ud7ff" * 3])
    if kind == "float":
        return rng.choice([0.5, 1e308, -0.0])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["model", "input", "parameters", "prompt", "reference_urls", "media", "type", "url", "size",
            "duration", "audio", "resolution", "ratio", "seed", "reference_voice"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def test_no_shape_yields_500(make_server: Any) -> None:
    server = make_server(submit_rate_per_second=0, max_concurrent_tasks=0, render_threads=1)
    rng = random.Random(1234)
    bodies: list[Any] = [_random_json(rng) for _ in range(150)]
    # Mutations of valid bodies reach deeper validation.
    for _ in range(150):
        base = copy.deepcopy(rng.choice([V26, V27]))
        section = rng.choice(["input", "parameters"])
        base[section][rng.choice(list(base[section]) + ["extra"])] = _random_json(rng, 1)
        bodies.append(base)
    for body in bodies:
        r = post(server, body, None, KEY)
        assert r.status_code < 500, (body, r.text)
        if r.status_code != 200:
            assert set(r.json()) >= {"request_id", "code", "message"}


# Found by tests/api/test_fuzz.py: str.isdigit takes "²" and any length, which int() refuses (each was a 500).
NOT_NUMBERS = ["1²", "٣" * 3 + "x", "9" * 5000]


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_numbers_that_int_refuses_are_400(server: LiveServer, text: str) -> None:
    assert post(server, edit(V26, "parameters.size", f"{text}*720"), None, KEY).status_code == 400
    with server.client() as c:
        assert c.get("/api/v1/tasks", params={"page_no": text}).status_code == 400
        assert c.post("/api/v1/openr2v/estimate", json={"model": "wan2.6-r2v", "parameters": {"size": f"{text}*2"}}
                      ).status_code == 400
        assert c.get("/files/outputs/x.mp4", params={"Expires": text, "Signature": "x"}).status_code == 404


def test_forged_upload_with_non_ascii_signature_is_403(server: LiveServer) -> None:
    # Found by fuzzing: hmac.compare_digest refuses non-ASCII str (a 500).
    r = httpx.post(f"{server.url}/oss-upload", data={"policy": "e30=", "Signature": "é", "key": "k"},
                   files={"file": ("a.png", b"x")})
    assert r.status_code == 403 and r.json()["code"] == "AccessDenied"


def test_cancel_answers_the_request_id_alone(make_server: Callable[..., LiveServer]) -> None:
    # The OpenAPI document said cancel returns a task body; a cancel that took answers {request_id}.
    # Only a PENDING task can be canceled: with no render threads nothing leaves PENDING.
    api_only = make_server(render_threads=0)
    with api_only.client() as c:
        task_id = c.post(SUBMIT, json=V26, headers=ASYNC).json()["output"]["task_id"]
        r = c.post(f"/api/v1/tasks/{task_id}/cancel")
        assert r.status_code == 200, r.text
        assert list(r.json()) == ["request_id"]
        assert c.get(f"/api/v1/tasks/{task_id}").json()["output"]["task_status"] == "CANCELED"
        again = c.post(f"/api/v1/tasks/{task_id}/cancel")
    assert again.status_code == 400 and again.json()["code"] == "UnsupportedOperation", again.text


@pytest.mark.parametrize("body", [b"--B\r\n3.8e-38--B--\r\n",  # no part headers at all
                                  b"--B\r\nContent-Disposition: attachment\r\n\r\nx\r\n--B--\r\n"])  # no name
def test_broken_upload_form_is_400(server: LiveServer, body: bytes) -> None:
    # Found by fuzzing: request.form() raised Starlette's HTTPException(400), which surfaced as a 500.
    r = httpx.post(f"{server.url}/oss-upload", content=body,
                   headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameter", r.text
    assert r.json()["message"].startswith("The request cannot be read")
