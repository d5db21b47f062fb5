"""kill -9 the server while tasks run; after a restart every task reaches a terminal state."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.helpers import KEY, free_port, start_serve_process

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"


def start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    return start_serve_process(data_dir, port, OPENR2V_X264_PRESET="ultrafast")


def test_kill_9_mid_render_then_restart(tmp_path: Path, file_server: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
    proc = start(tmp_path, port)
    try:
        ids = []
        for _ in range(3):
            r = httpx.post(base + SUBMIT, headers=headers, json={
                "model": "wan2.6-r2v-flash",
                "input": {"prompt": "character1 waves.", "reference_urls": [f"{file_server}/person1.mp4"]},
                "parameters": {"size": "1280*720", "duration": 4}})
            assert r.status_code == 200, r.text
            ids.append(r.json()["output"]["task_id"])
        deadline = time.time() + 60
        while time.time() < deadline:
            statuses = [httpx.get(f"{base}/api/v1/tasks/{i}", headers=headers).json()["output"]["task_status"]
                        for i in ids]
            if "RUNNING" in statuses:
                break
            time.sleep(0.05)
        assert "RUNNING" in statuses
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        proc = start(tmp_path, port)
        deadline = time.time() + 120
        while time.time() < deadline:
            outs = [httpx.get(f"{base}/api/v1/tasks/{i}", headers=headers).json()["output"] for i in ids]
            if all(o["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED") for o in outs):
                break
            time.sleep(0.3)
        assert all(o["task_status"] == "SUCCEEDED" for o in outs), outs
    finally:
        proc.kill()
        proc.wait(10)
