"""`make demo`: start the embedded server, render the wan2.6-r2v guide's four-reference example through the API,
then a photograph that talks.

The references shipped in assets/demo are uploaded with DashScope's own temporary-upload flow
(getPolicy, then the OSS-style form POST) and referenced as oss:// URLs, exactly as the
official SDK does for local files. The four-reference example is saved to out/demo.mp4; the
second video (out/demo_photo.mp4) has a photograph (photo5.jpg, Grace Hopper) talk to a drawn
character: its face is warped to speak, blink and turn toward whoever it talks with.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets" / "demo"
KEY = "sk-demo"
PROMPT = ('Character2 sits on a chair by the window, holding character3, and plays a soothing American country '
          'folk song next to character4. Character1 says to Character2: "that sounds great"')
FILES = ["role1.mp4", "role2.mp4", "object3.png", "background4.png"]
PHOTO_PROMPT = ("Shot 1 [0-5s]: Close-up of character1 in character3. Character1 says to character2: 'The most "
                "dangerous phrase in the language is: we have always done it this way.' Shot 2 [5-8s]: Medium shot "
                "of character1 and character2 in character3. Character2 says to character1: 'Then let us try "
                "something new.'")
PHOTO_FILES = ["photo5.jpg", "role2.mp4", "background4.png"]
RENDERS = [("demo.mp4", FILES, PROMPT, 10), ("demo_photo.mp4", PHOTO_FILES, PHOTO_PROMPT, 8)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def upload(client: httpx.Client, base: str, path: Path, model: str) -> str:
    policy = client.get(f"{base}/api/v1/uploads", params={"action": "getPolicy", "model": model})
    policy.raise_for_status()
    d = policy.json()["data"]
    key = f"{d['upload_dir']}/{path.name}"
    form = {"OSSAccessKeyId": d["oss_access_key_id"], "Signature": d["signature"], "policy": d["policy"],
            "key": key, "x-oss-object-acl": d["x_oss_object_acl"],
            "x-oss-forbid-overwrite": d["x_oss_forbid_overwrite"], "success_action_status": "200"}
    with path.open("rb") as f:
        r = httpx.post(d["upload_host"], data=form, files={"file": (path.name, f)}, timeout=60)
    r.raise_for_status()
    return f"oss://{key}"


def render(c: httpx.Client, base: str, name: str, files: list[str], prompt: str, seconds: int) -> bool:
    """Upload ``files``, render ``prompt`` for ``seconds`` at 1280*720 and save it to out/``name``."""
    model = "wan2.6-r2v-flash"
    urls = [upload(c, base, ASSETS / f, model) for f in files]
    body = {"model": model, "input": {"prompt": prompt, "reference_urls": urls},
            "parameters": {"size": "1280*720", "duration": seconds, "audio": True, "shot_type": "multi",
                           "watermark": True}}
    r = c.post(f"{base}/api/v1/services/aigc/video-generation/video-synthesis", json=body,
               headers={"X-DashScope-Async": "enable", "X-DashScope-OssResourceResolve": "enable"})
    if r.status_code != 200:
        print(f"submit failed: {r.status_code} {r.text}", file=sys.stderr)
        return False
    task_id = r.json()["output"]["task_id"]
    print(f"task {task_id} submitted ({name})")
    t0 = time.time()
    while True:
        task = c.get(f"{base}/api/v1/tasks/{task_id}").json()
        status = task["output"]["task_status"]
        if status in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
            break
        time.sleep(0.5)
    if status != "SUCCEEDED":
        print(f"task ended {status}: {json.dumps(task['output'])}", file=sys.stderr)
        return False
    out = ROOT / "out" / name
    out.parent.mkdir(exist_ok=True)
    video = c.get(task["output"]["video_url"])
    video.raise_for_status()
    out.write_bytes(video.content)
    print(f"rendered in {time.time() - t0:.1f}s: {out}")
    print("usage:", json.dumps(task["usage"]))
    return True


def main() -> int:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = ROOT / ".data" / "demo"
    env = dict(os.environ, OPENR2V_API_KEYS=f"{KEY}:intl")
    server = subprocess.Popen([sys.executable, "-m", "openr2v.cli", "serve", "--port", str(port),
                               "--data-dir", str(data_dir), "--log-level", "warning"], env=env)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or server.poll() is not None:
                print("the server did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)
        with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as c:
            for name, files, prompt, seconds in RENDERS:
                if not render(c, base, name, files, prompt, seconds):
                    return 1
            return 0
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
