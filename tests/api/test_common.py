"""One core behind every dialect: a task submitted through one reads through all the others, by its key only."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.helpers import OTHER_KEY, LiveServer


def submits(files: str) -> dict[str, Callable[[httpx.Client], str]]:
    def dashscope(c: httpx.Client) -> str:
        r = c.post("/api/v1/services/aigc/video-generation/video-synthesis", headers={"X-DashScope-Async": "enable"},
                   json={"model": "wan2.6-r2v", "input": {"prompt": "character1 waves.",
                                                          "reference_urls": [f"{files}/person2.mp4"]},
                         "parameters": {"size": "1280*720", "duration": 2}})
        return str(r.json()["output"]["task_id"])

    def aggregator(c: httpx.Client) -> str:
        r = c.post("/model/v1/generation", json={
            "model": "wan26_r2v", "input": {"prompt": "character1 waves.", "reference_urls": [f"{files}/object.png"]},
            "parameters": {"size": "1280*720", "duration": 2}})
        return str(r.json()["id"])

    def gateway(c: httpx.Client) -> str:
        r = c.post("/v1/video/generations", json={
            "prompt": "character1 waves.", "model": "wan2.6-r2v",
            "metadata": {"input": {"reference_video_urls": [f"{files}/person2.mp4"]},
                         "parameters": {"size": "1280*720", "duration": 5}}})
        return str(r.json()["id"])

    def openai(c: httpx.Client) -> str:
        r = c.post("/v1/videos", json={"prompt": "character1 waves.", "seconds": "2", "size": "1280x720",
                                       "references": [f"{files}/object.png"]})
        return str(r.json()["id"])

    return {"dashscope": dashscope, "aggregator": aggregator, "gateway": gateway, "openai": openai}


def read_all(c: httpx.Client, task_id: str) -> dict[str, tuple[int, Any]]:
    def get(path: str) -> tuple[int, Any]:
        r = c.get(path)
        return r.status_code, r.json()

    return {"dashscope": get(f"/api/v1/tasks/{task_id}"), "aggregator": get(f"/model/v1/generation/{task_id}"),
            "gateway": get(f"/v1/video/generations/{task_id}"), "openai": get(f"/v1/videos/{task_id}")}


def finished(views: dict[str, tuple[int, Any]]) -> bool:
    return (views["dashscope"][1]["output"]["task_status"] in ("SUCCEEDED", "FAILED")
            and views["aggregator"][1]["status"] in ("completed", "failed"))


@pytest.mark.parametrize("dialect", ["dashscope", "aggregator", "gateway", "openai"])
def test_submitted_through_one_read_through_all(server: LiveServer, file_server: str, dialect: str) -> None:
    with server.client() as c:
        task_id = submits(file_server)[dialect](c)
        deadline = time.time() + 120
        while not finished(views := read_all(c, task_id)):
            assert time.time() < deadline, views
            time.sleep(0.2)
    assert all(status == 200 for status, _ in views.values()), views
    ds, agg, gw, oa = (views[k][1] for k in ("dashscope", "aggregator", "gateway", "openai"))
    url = ds["output"]["video_url"]
    assert ds["output"]["task_status"] == "SUCCEEDED"
    assert agg["status"] == "completed" and agg["output"][0]["content"][0]["url"] == url
    assert gw["data"]["status"] == "SUCCESS" and gw["data"]["fail_reason"] == url
    assert gw["data"]["data"]["usage"]["output_video_duration"] == ds["usage"]["output_video_duration"]
    assert oa["status"] == "completed" and oa["id"] == task_id and oa["size"] == "1280x720"
    assert ds["output"]["orig_prompt"] == gw["data"]["data"]["output"]["orig_prompt"] == oa["prompt"]
    with server.client() as c:
        assert c.get(f"/v1/videos/{task_id}/content").content == httpx.get(url).content
    with server.client(OTHER_KEY) as other:
        theirs = read_all(other, task_id)
    assert theirs["dashscope"][0] == 404 and theirs["aggregator"][0] == 404
    assert theirs["gateway"][0] == 400 and theirs["gateway"][1]["code"] == "task_not_exist"
    assert theirs["openai"][0] == 404
