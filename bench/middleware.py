"""Cost of the request-metrics middleware (api/app.py RequestMetrics) per request, against the same
trivial ASGI app without it, measured in the same run:

    .venv/bin/python bench/middleware.py            # 50,000 requests each way

Printed: microseconds per request bare, with the middleware, and the difference. The app does
nothing but answer, so the difference is all the middleware's (a counter, a histogram, a dict lookup).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from openr2v.api.app import RequestMetrics

ROUTE = type("Route", (), {"path": "/api/v1/tasks/{task_id}"})()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = ROUTE  # what Starlette's router records
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def run(asgi: Any, n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        pass

    started = time.perf_counter()
    for _ in range(n):
        await asgi({"type": "http", "method": "GET", "path": "/api/v1/tasks/x"}, receive, send)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50_000)
    n = parser.parse_args().requests
    wrapped = RequestMetrics(app, {"/api/v1/tasks/{task_id}": "dashscope"})
    asyncio.run(run(wrapped, 1000))  # warm up (labels created)
    bare = min(asyncio.run(run(app, n)) for _ in range(3))
    metered = min(asyncio.run(run(wrapped, n)) for _ in range(3))
    print(f"bare {bare:.2f} us/request, with RequestMetrics {metered:.2f} us/request, "
          f"cost {metered - bare:.2f} us/request")


if __name__ == "__main__":
    main()
