"""Table-driven: invalid creates on /v1/videos (JSON and multipart), each with status, error type, code, param."""

from __future__ import annotations

import copy
import random
from typing import Any

import httpx
import pytest

from tests.api.dialects.dashscope.test_validation import DELETE, _random_json, edit
from tests.helpers import CN_KEY, KEY, LiveServer

PNG = "https://example.com/a.png"
MP4 = "https://example.com/a.mp4"
BODY = {"prompt": "character1 waves at character2.", "model": "wan2.6-r2v-flash", "seconds": "4",
        "size": "1280x720", "references": [PNG, MP4], "parameters": {"seed": 1}}
W27 = {"prompt": "Video 1 waves at Image 1.", "model": "wan2.7-r2v", "seconds": "4", "size": "1280x720",
       "references": [{"url": MP4, "type": "video"}, {"url": PNG}]}


class Form(list[tuple[str, str]]):
    """Fields of a multipart body, in order."""


FORM = Form([("prompt", "character1 waves."), ("seconds", "4"), ("size", "1280x720"), ("references[]", PNG)])
IRE = "invalid_request_error"

# (id, body: dict (JSON) | list (form fields) | bytes (raw JSON), key, status, code, param)
CASES: list[tuple[str, Any, str | None, int, str, str | None]] = [
    ("no-key", BODY, None, 401, "invalid_api_key", None),
    ("bad-key", BODY, "sk-nope", 401, "invalid_api_key", None),
    ("cross-region-key", BODY, CN_KEY, 401, "invalid_api_key", None),
    ("not-json", b"{nope", KEY, 400, "invalid_value", None),
    ("json-array", b"[]", KEY, 400, "invalid_value", None),
    ("no-prompt", edit(BODY, "prompt", DELETE), KEY, 400, "missing_required_parameter", "prompt"),
    ("blank-prompt", edit(BODY, "prompt", "  "), KEY, 400, "invalid_value", "prompt"),
    ("prompt-not-string", edit(BODY, "prompt", 3), KEY, 400, "invalid_value", "prompt"),
    ("prompt-too-long", edit(BODY, "prompt", "p" * 1501), KEY, 400, "invalid_value", "prompt"),
    ("sora-model", edit(BODY, "model", "sora-2"), KEY, 400, "invalid_value", "model"),
    ("aggregator-model", edit(BODY, "model", "wan26_r2v"), KEY, 400, "invalid_value", "model"),
    ("model-not-string", edit(BODY, "model", 2), KEY, 400, "invalid_type", "model"),
    ("seconds-fraction", edit(BODY, "seconds", "4.5"), KEY, 400, "invalid_value", "seconds"),
    ("seconds-words", edit(BODY, "seconds", "four"), KEY, 400, "invalid_value", "seconds"),
    ("seconds-1", edit(BODY, "seconds", "1"), KEY, 400, "invalid_value", "seconds"),
    ("seconds-12-wan26", edit(BODY, "seconds", "12"), KEY, 400, "invalid_value", "seconds"),
    ("seconds-bool", edit(BODY, "seconds", True), KEY, 400, "invalid_type", "seconds"),
    ("size-sora-portrait", edit(BODY, "size", "1024x1792"), KEY, 400, "invalid_value", "size"),
    ("size-words", edit(BODY, "size", "big"), KEY, 400, "invalid_value", "size"),
    ("size-asterisk", edit(BODY, "size", "1280*720"), KEY, 400, "invalid_value", "size"),
    ("size-capital-x", edit(BODY, "size", "1280X720"), KEY, 400, "invalid_value", "size"),
    ("size-wan27-not-in-tiers", edit(W27, "size", "1792x1024"), KEY, 400, "invalid_value", "size"),
    ("references-string", edit(BODY, "references", PNG), KEY, 400, "invalid_type", "references"),
    ("reference-int", edit(BODY, "references", [7]), KEY, 400, "invalid_type", "references[0]"),
    ("reference-no-url", edit(BODY, "references", [{"type": "image"}]), KEY, 400, "invalid_type",
     "references[0]"),
    ("no-references", edit(BODY, "references", DELETE), KEY, 400, "invalid_value", "references"),
    ("six-references", edit(BODY, "references", [PNG] * 6), KEY, 400, "invalid_value", "references"),
    ("ftp-reference", edit(BODY, "references", ["ftp://example.com/a.png"]), KEY, 400, "invalid_url",
     "references[0]"),
    ("oss-reference", edit(BODY, "references", ["oss://openai/x/a.png"]), KEY, 400, "invalid_url",
     "references[0]"),
    ("file-reference", edit(BODY, "references", ["file:///etc/passwd"]), KEY, 400, "invalid_url", "references[0]"),
    ("reference-type", edit(BODY, "references", [{"url": PNG, "type": "audio"}]), KEY, 400, "invalid_value",
     "references[0].type"),
    ("first-frame-wan26", edit(BODY, "references", [PNG, {"url": PNG, "type": "first_frame"}]), KEY, 400,
     "invalid_value", "references"),
    ("two-first-frames", edit(W27, "references", [{"url": PNG, "type": "first_frame"}] * 2 + [PNG]), KEY, 400,
     "invalid_value", "references[1].url"),
    ("wan27-kind-unknown", edit(W27, "references", ["https://example.com/r"]), KEY, 400, "invalid_value",
     "references[0]"),
    ("voice-on-wan26", edit(BODY, "references", [{"url": PNG, "reference_voice": "https://e.com/v.mp3"}]), KEY,
     400, "invalid_value", "references[0].url"),
    ("input-reference-file-id", edit(BODY, "input_reference", {"file_id": "file-1"}), KEY, 400, "invalid_value",
     "input_reference"),
    ("input-reference-string", edit(BODY, "input_reference", PNG), KEY, 400, "invalid_type", "input_reference"),
    ("parameters-string", edit(BODY, "parameters", "fast"), KEY, 400, "invalid_type", "parameters"),
    ("silent-wan26", edit(edit(BODY, "model", "wan2.6-r2v"), "parameters.audio", False), KEY, 400,
     "invalid_value", "parameters.audio"),
    ("seed-negative", edit(BODY, "parameters.seed", -1), KEY, 400, "invalid_value", "parameters.seed"),
    ("seed-string-in-json", edit(BODY, "parameters.seed", "5"), KEY, 400, "invalid_type", "parameters.seed"),
    ("shot-type", edit(BODY, "parameters.shot_type", "triple"), KEY, 400, "invalid_value", "parameters.shot_type"),
    ("resolution-wan27", edit(edit(W27, "size", DELETE), "parameters", {"resolution": "480P"}), KEY, 400,
     "invalid_value", "parameters.resolution"),
    ("negative-too-long", edit(BODY, "negative_prompt", "n" * 501), KEY, 400, "invalid_value", "negative_prompt"),
    ("form-no-prompt", Form(FORM[1:]), KEY, 400, "missing_required_parameter", "prompt"),
    ("form-seed-words", Form(FORM + [("parameters[seed]", "abc")]), KEY, 400, "invalid_type", "parameters.seed"),
    ("form-audio-maybe", Form(FORM + [("parameters[audio]", "maybe")]), KEY, 400, "invalid_type", "parameters.audio"),
    ("form-bad-field-name", Form(FORM + [("parameters[seed", "1")]), KEY, 400, "invalid_value", "parameters[seed"),
    ("form-field-twice", Form(FORM + [("prompt", "again")]), KEY, 400, "invalid_value", "prompt"),
    ("form-too-deep", Form(FORM + [("a[b][c][d][e]", "1")]), KEY, 400, "invalid_value", "a[b][c][d][e]"),
    ("form-ambiguous-objects", Form([FORM[0], ("references[][url]", PNG), ("references[][url]", MP4),
                                     ("references[][type]", "image")]), KEY, 400, "invalid_value", "references"),
    ("form-list-and-value", Form(FORM + [("references", PNG)]), KEY, 400, "invalid_value", "references"),
    # vLLM-Omni's fields
    ("form-width-words", Form(FORM[:2] + FORM[3:] + [("width", "wide"), ("height", "720")]), KEY, 400,
     "invalid_type", "width"),
    ("width-without-height", edit(edit(BODY, "size", DELETE), "width", 1280), KEY, 400, "invalid_value", "height"),
    ("width-disagrees-with-size", edit(edit(BODY, "width", 720), "height", 1280), KEY, 400, "invalid_value",
     "width"),
    ("size-asterisk-with-width", edit(edit(edit(BODY, "size", "1280*720"), "width", 1280), "height", 720), KEY, 400,
     "invalid_value", "size"),
    ("num-frames-too-few", edit(edit(BODY, "num_frames", 8), "fps", 16), KEY, 400, "invalid_value", "num_frames"),
    ("num-frames-vs-seconds", edit(edit(BODY, "num_frames", 160), "fps", 16), KEY, 400, "invalid_value",
     "num_frames"),
    ("fps-zero", edit(BODY, "fps", 0), KEY, 400, "invalid_value", "fps"),
    ("seed-disagrees", edit(BODY, "seed", 2), KEY, 400, "invalid_value", "seed"),
    ("form-image-reference-not-json", Form(FORM + [("image_reference", "https://e.com/a.png")]), KEY, 400,
     "invalid_value", "image_reference"),
    ("image-reference-list", edit(BODY, "image_reference", "[1]"), KEY, 400, "invalid_value", "image_reference"),
    ("video-reference-no-url", edit(BODY, "video_reference", {"file_id": "f"}), KEY, 400, "invalid_value",
     "video_reference"),
    ("audio-reference-wan26", edit(BODY, "audio_reference", {"audio_url": "https://e.com/v.mp3"}), KEY, 400,
     "invalid_value", "audio_reference"),
    ("form-guidance-words", Form(FORM + [("guidance_scale", "strong")]), KEY, 400, "invalid_type", "guidance_scale"),
    ("steps-zero", edit(BODY, "num_inference_steps", 0), KEY, 400, "invalid_value", "num_inference_steps"),
    ("form-lora-not-object", Form(FORM + [("lora", "[1, 2]")]), KEY, 400, "invalid_value", "lora"),
    ("extra-params-number", edit(BODY, "extra_params", 3), KEY, 400, "invalid_type", "extra_params"),
    ("form-references-mixed", Form([FORM[0], ("references", PNG), ("references[]", MP4)]), KEY, 400,
     "invalid_value", "references"),
]


def post(server: LiveServer, body: Any, key: str | None, files: dict[str, Any] | None = None,
         client: httpx.Client | None = None) -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    url = server.url + "/v1/videos"
    http: Any = client or httpx
    if isinstance(body, Form):
        return http.post(url, data=_multi(body), files=files or {"_": ("", b"")}, headers=headers, timeout=30)
    raw = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    return http.post(url, content=raw, headers={**headers, "Content-Type": "application/json"}, timeout=30)


def _multi(fields: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in fields:
        out.setdefault(k, []).append(v)
    return out


def test_table_size() -> None:
    assert len(CASES) >= 45


@pytest.mark.parametrize(("body", "key", "status", "code", "param"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_invalid_create(server: LiveServer, body: Any, key: str | None, status: int, code: str,
                        param: str | None) -> None:
    r = post(server, body, key)
    assert r.status_code == status, r.text
    got = r.json()
    assert set(got) == {"error"} and set(got["error"]) == {"message", "type", "code", "param"}, got
    assert (got["error"]["type"], got["error"]["code"], got["error"]["param"]) == (IRE, code, param), got
    assert got["error"]["message"]


def test_other_files_and_broken_multipart(server: LiveServer) -> None:
    r = post(server, FORM, KEY, files={"video": ("a.mp4", b"\x00" * 10, "video/mp4")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "video"
    r = httpx.post(server.url + "/v1/videos", content=b"--x\r\nbroken", timeout=30, headers={
        "Authorization": f"Bearer {KEY}", "Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 400 and r.json()["error"]["type"] == IRE


def test_list_and_content_parameters(server: LiveServer) -> None:
    with server.client() as c:
        for params, param in (({"limit": 0}, "limit"), ({"limit": "x"}, "limit"), ({"limit": 101}, "limit"),
                              ({"order": "up"}, "order"), ({"after": "nope"}, "after")):
            r = c.get("/v1/videos", params=params)
            assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
        r = c.get("/v1/videos/nope/content")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = c.delete("/v1/videos/nope")
        assert r.status_code == 404


def test_no_shape_yields_500(make_server: Any) -> None:
    server = make_server(submit_rate_per_second=0, max_concurrent_tasks=0, render_threads=0)
    rng = random.Random(4004)
    bodies: list[Any] = [_random_json(rng) for _ in range(80)]
    for _ in range(150):
        base = copy.deepcopy(rng.choice([BODY, W27]))
        keys = list(base) + ["input_reference", "negative_prompt", "parameters", "extra"]
        base[rng.choice(keys)] = _random_json(rng, 1)
        bodies.append(base)
    for _ in range(60):
        fields = Form(FORM)
        for _ in range(rng.randint(1, 4)):
            name = rng.choice(["references[]", "references[][url]", "references[][type]", "parameters[seed]",
                               "parameters[audio]", "input_reference[image_url]", "seconds", "size", "model",
                               "x[]", "[]", "a[", "parameters[]"])
            fields.append((name, str(_random_json(rng, 2))))
        bodies.append(fields)
    with httpx.Client() as client:
        responses = [(body, post(server, body, KEY, client=client)) for body in bodies]
    for body, r in responses:
        assert r.status_code < 500, (body, r.text)
        if r.status_code != 200:
            assert set(r.json()["error"]) == {"message", "type", "code", "param"}


@pytest.mark.parametrize("text", ["1²", "9" * 5000])
def test_numbers_that_int_refuses_are_400(server: LiveServer, text: str) -> None:
    # Found by tests/api/test_fuzz.py: str.isdigit took these and int() refused them (a 500).
    with server.client() as c:
        assert c.post("/v1/videos", json={**BODY, "seconds": text}).status_code == 400
        assert c.post("/v1/videos", json={**BODY, "size": f"{text}x720"}).status_code == 400
        assert c.get("/v1/videos", params={"limit": text}).status_code == 400
