"""JSON logs carry the request_id of the API request and the task_id of the task a line is about."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openr2v.logs import JsonFormatter
from tests.helpers import KEY
from tests.services import SLEEP_ENGINE, SUBMIT, r2v_body, wait_terminal


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("openr2v")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def test_log_lines_carry_request_and_task_ids(make_server: Any, file_server: str, json_lines: io.StringIO) -> None:
    srv = make_server(engine=SLEEP_ENGINE)
    r = httpx.post(srv.url + SUBMIT, json=r2v_body(f"{file_server}/no-such-file.png"), timeout=30,
                   headers={"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"})
    request_id, task_id = r.json()["request_id"], r.json()["output"]["task_id"]
    assert wait_terminal(srv.url, [task_id])[task_id]["task_status"] == "FAILED"
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    accepted = [line for line in lines if line["message"].startswith("accepted task")]
    assert [(a["request_id"], a["task_id"]) for a in accepted] == [(request_id, task_id)]
    failed = [line for line in lines if line["logger"] == "openr2v.worker" and "failed" in line["message"]]
    # The render thread's line names the task, and no request: it is not inside one.
    assert failed and failed[0]["task_id"] == task_id and "request_id" not in failed[0]
