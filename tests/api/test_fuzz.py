"""Schemathesis against each dialect's OpenAPI document (GET /openapi/{dialect}.json), over HTTP.

The short run of `make fuzz` (scripts/fuzz.py): a few generated requests per operation in each
generation mode, sent with an API key to an API-only server (no render workers, no submit caps),
every answer judged for 5xx, schema, status code, content type and headers, rejection of invalid
data and refusal without the key. Any finding fails the test with a curl line to reproduce it.
"""

from __future__ import annotations

import httpx
import pytest
from scripts.fuzz import DOCUMENTS, fuzz_dialect

from tests.helpers import KEY

SUBMIT = {"dashscope": "/api/v1/services/aigc/video-generation/video-synthesis", "aggregator": "/model/v1/generation",
          "gateway": "/v1/video/generations", "openai": "/v1/videos", "app": "/v1/videos"}
EXAMPLES = 8  # per operation and mode: ~20 s for all four dialects on two cores; `make fuzz` runs 100


@pytest.fixture(scope="module")
def api_only(tmp_path_factory: pytest.TempPathFactory) -> object:
    from tests.helpers import run_server, test_settings

    settings = test_settings(tmp_path_factory.mktemp("fuzz"), render_threads=0, submit_rate_per_second=0,
                             max_concurrent_tasks=0, allow_private_urls=False)
    with run_server(settings) as server:
        yield server


@pytest.mark.parametrize("dialect", DOCUMENTS)
def test_dialect_document_holds_under_fuzzing(api_only: object, dialect: str) -> None:
    tally = fuzz_dialect(api_only.url, dialect, KEY, EXAMPLES, seed=0)  # type: ignore[attr-defined]
    assert tally.requests >= 3 * EXAMPLES, tally.report()  # every dialect has a submit (two modes) and a get
    assert tally.clean, tally.report()
    assert tally.by_operation[f"POST {SUBMIT[dialect]} [example]"] >= 1, tally.report()  # the documents' own requests


def test_each_dialect_document_has_only_its_routes(api_only: object) -> None:
    prefixes = {"dashscope": ("/api/v1/", "/oss-upload"), "aggregator": ("/model/v1/",),
                "gateway": ("/v1/video/",), "openai": ("/v1/videos",)}
    for dialect, allowed in prefixes.items():
        doc = httpx.get(f"{api_only.url}/openapi/{dialect}.json").json()  # type: ignore[attr-defined]
        assert doc["paths"] and all(p.startswith(allowed) for p in doc["paths"]), (dialect, list(doc["paths"]))
        assert doc["components"]["securitySchemes"]["bearer"] == {
            "type": "http", "scheme": "bearer", "description": "An API key: Authorization: Bearer sk-..."}
        assert "422" not in str(list(op["responses"] for item in doc["paths"].values() for op in item.values()))
    assert httpx.get(f"{api_only.url}/openapi/nope.json").status_code == 404  # type: ignore[attr-defined]
    whole = httpx.get(f"{api_only.url}/openapi.json").json()  # type: ignore[attr-defined]
    assert "/v1/videos" in whole["paths"] and "/api/v1/tasks/{task_id}" in whole["paths"]
    assert whole["paths"]["/healthz"]["get"]["security"] == []


def test_files_paths_the_route_cannot_take_answer_as_oss(api_only: object) -> None:
    # Found by fuzzing the app's document: a newline in the key missed the route and got FastAPI's JSON 404.
    r = httpx.get(f"{api_only.url}/files/a%0Ab", params={"Expires": "1", "Signature": "x"})  # type: ignore[attr-defined]
    assert (r.status_code, r.headers["content-type"]) == (404, "application/xml")
    assert "<Code>NoSuchKey</Code>" in r.text
    assert httpx.get(f"{api_only.url}/nope").json() == {"detail": "Not Found"}  # type: ignore[attr-defined]


def test_405_lists_every_method_of_the_path(api_only: object) -> None:
    # Found by schemathesis' unsupported_method check: Allow named only the first route's methods.
    for method, path, allow in [("OPTIONS", "/v1/videos", "GET, POST"), ("PUT", "/v1/videos/x", "DELETE, GET"),
                                ("GET", "/api/v1/services/aigc/video-generation/video-synthesis", "POST"),
                                ("PATCH", "/healthz", "GET")]:
        r = httpx.request(method, api_only.url + path, headers={"Authorization": f"Bearer {KEY}"})  # type: ignore[attr-defined]
        assert (r.status_code, r.headers.get("allow")) == (405, allow), (method, path)
