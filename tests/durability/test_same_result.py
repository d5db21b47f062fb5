"""For the same request and seed, the Celery path (PostgreSQL, Redis, S3, a worker process)
produces the same MP4 bytes as the embedded default (SQLite, threads, local files).

Both sides run as `openr2v` processes started together, so they run the same code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.helpers import assert_contract_mp4
from tests.services import cluster, cluster_env, r2v_body, submit_task, wait_terminal


def test_celery_and_embedded_render_the_same_bytes(tmp_path: Path, postgres_db: Any, redis_server: Any,
                                                   moto_s3: Any, file_server: str) -> None:
    body = r2v_body(f"{file_server}/object.png", f"{file_server}/background.jpg", seed=1234)
    body["input"]["prompt"] = "character1 walks toward character2. Close-up of character1."
    with cluster(tmp_path / "embedded", cluster_env(db=None, redis=None)) as embedded, \
            cluster(tmp_path / "scale", cluster_env(db=postgres_db, redis=redis_server, s3=moto_s3)) as scale:
        one = embedded.api()
        api = scale.api()
        scale.worker()
        videos = []
        for url in (one.url, api.url):
            task = submit_task(url, body)
            out = wait_terminal(url, [task], timeout=120)[task]
            assert out["task_status"] == "SUCCEEDED", out
            videos.append(httpx.get(out["video_url"], timeout=30).content)
        assert out["video_url"].startswith(moto_s3.endpoint)  # the second came through S3

    assert_contract_mp4(videos[0], 1280, 720, 2, audio=False)
    assert videos[1] == videos[0]
