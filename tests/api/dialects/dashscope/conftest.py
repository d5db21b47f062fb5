"""Fixtures of the DashScope dialect tests."""

from __future__ import annotations

from collections.abc import Iterator

import dashscope
import httpx
import pytest

from tests.helpers import KEY, LiveServer


@pytest.fixture
def sdk(server: LiveServer) -> Iterator[LiveServer]:
    """Point the 1.x SDK (a module global) at our server."""
    saved = dashscope.base_http_api_url, dashscope.api_key
    dashscope.base_http_api_url = server.api
    dashscope.api_key = KEY
    yield server
    dashscope.base_http_api_url, dashscope.api_key = saved


def download(url: str) -> bytes:
    r = httpx.get(url, timeout=60)
    assert r.status_code == 200, r.text
    return r.content
