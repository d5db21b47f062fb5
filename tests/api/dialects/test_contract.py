"""Every dialect keeps the one contract (api/dialects/base.py): the same three modules, request models on
the shared Wire base, and parse_submit / format_task / format_error with the same shapes."""

from __future__ import annotations

import importlib
import inspect
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import Response
from pydantic import BaseModel

from openr2v.api.dialects.base import Submission, View, Wire
from openr2v.api.dialects.registry import DIALECTS
from openr2v.domain.request import GenerationRequest
from openr2v.domain.task import Status, Task
from openr2v.errors import InvalidParameter

DIALECTS_DIR = Path(importlib.import_module("openr2v.api.dialects").__file__ or "").parent

# A valid submit of each dialect, as its document writes it.
SUBMITS: dict[str, dict[str, Any]] = {
    "dashscope": {"model": "wan2.7-r2v", "input": {"prompt": "Image 1 waves.", "media": [
        {"type": "reference_image", "url": "https://example.com/a.png"}]}, "parameters": {"resolution": "720P"}},
    "aggregator": {"model": "wan26_r2v", "input": {"prompt": "character1 waves.",
                                                    "reference_urls": ["https://example.com/a.jpg"]}},
    "gateway": {"model": "wan2.6-r2v", "prompt": "character1 waves.",
                "metadata": {"input": {"reference_video_urls": ["https://example.com/a.mp4"]}}},
    "openai": {"model": "wan2.6-r2v-flash", "prompt": "character1 waves.", "seconds": "5", "size": "1280x720",
               "references": ["https://example.com/a.jpg"]},
}


def test_the_registry_holds_every_dialect_package() -> None:
    packages = {p.name for p in DIALECTS_DIR.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(DIALECTS) == set(SUBMITS)
    for name, module in DIALECTS.items():
        assert module.DIALECT == name
        for part in ("protocol", "translate", "router"):
            assert (DIALECTS_DIR / name / f"{part}.py").exists(), (name, part)


@pytest.mark.parametrize("name", sorted(SUBMITS))
def test_request_models_share_the_wire_base(name: str) -> None:
    protocol = importlib.import_module(f"openr2v.api.dialects.{name}.protocol")
    models = [m for _, m in inspect.getmembers(protocol, inspect.isclass)
              if issubclass(m, BaseModel) and m.__module__ == protocol.__name__]
    ignoring = [m for m in models if m.model_config.get("extra") == "ignore"]
    assert ignoring and all(issubclass(m, Wire) for m in ignoring), name
    assert not hasattr(protocol, "_Wire")


@pytest.mark.parametrize("name", sorted(SUBMITS))
def test_parse_submit_gives_a_submission(name: str) -> None:
    sub = DIALECTS[name].parse_submit(SUBMITS[name], "intl")
    assert isinstance(sub, Submission) and isinstance(sub.request, GenerationRequest)
    assert sub.request.duration == 5 and sub.request.prompt.endswith("waves.")
    assert sub.request.references[0].source.startswith("https://example.com/a.")


@pytest.mark.parametrize("name", sorted(SUBMITS))
def test_a_refusal_names_the_wire_field(name: str) -> None:
    body = SUBMITS[name] | {"model": "no-such-model"}
    with pytest.raises(InvalidParameter) as e:
        DIALECTS[name].parse_submit(body, "intl")
    assert e.value.param == "model"


@pytest.mark.parametrize("name", sorted(SUBMITS))
def test_format_task_and_format_error_answer_every_dialect_alike(name: str) -> None:
    dialect = DIALECTS[name]
    req = dialect.parse_submit(SUBMITS[name], "intl").request
    now = time.time()
    task = Task(id="t-1", owner="o", region="intl", dialect=name, model=req.model, request=req,
                status=Status.SUCCEEDED, submit_time=now - 9, scheduled_time=now - 8, end_time=now,
                expires_at=now + 3600, request_id="r-0", usage={"duration": 5, "SR": 720})
    body = dialect.format_task(task, View("https://files.example/t-1.mp4", "r-1", (0.5, 0.0)))
    assert isinstance(body, dict) and "t-1" in str(body)
    error = dialect.format_error(InvalidParameter("size: bad.", param="size"), "r-2")
    assert isinstance(error, Response) and error.status_code == 400
    assert error.headers["x-request-id"] == "r-2"
