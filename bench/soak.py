"""Soak: mixed load on the embedded default for a long while; memory, files and threads must stay flat.

    .venv/bin/python bench/soak.py                    # 30 minutes (make soak)
    .venv/bin/python bench/soak.py --minutes 3 --json # a short run; the JSON report on stdout

One ``openr2v serve`` process as shipped (SQLite, in-process queue, 2 compositor render threads,
default x264 preset, rate limits and caps) with its own data dir, a free port and two API keys;
only ``OPENR2V_ALLOW_PRIVATE_URLS`` is set, so that references can come from a file server on
loopback. Client threads then run a realistic mix until time is up:

- task clients (``--clients``, each one task at a time: a closed loop, so the render queue never
  holds more than ``--clients`` tasks and submits are paced by what the machine renders). Each
  submits through a dialect (mostly DashScope native with plain httpx: wan2.6-r2v-flash and
  wan2.7-r2v, references by URL, base64 data URI or ``oss://`` upload; also the aggregator's
  ``/model/v1/generation``, the gateway's ``/v1/video/generations`` and ``/v1/videos`` as JSON and
  multipart), short renders at the smallest size each model allows, then polls that dialect (or
  follows the live event stream, sometimes dropping it half-way) until the task ended, and downloads
  the video from the URL it got. Some cancel right after submitting (200 while PENDING, or 400
  ``UnsupportedOperation`` when a worker got there first: both are correct), some cancel a task seen
  RUNNING (must be 400 ``UnsupportedOperation``), some DELETE a ``/v1/videos`` video mid-render, some
  name a reference that does not exist (the task must FAIL with ``BadRequest.InputDownloadFailed``);
- a reader: task lists of two dialects, the ledger, the model table, shot plans, ``/healthz``;
- a bad client: invalid JSON, missing fields, bad and missing keys, unknown tasks, another key's
  task, out-of-range values, forged file signatures; each must get its documented 4xx (or, for
  DashScope's unknown task, 200 ``UNKNOWN``).

A sampler reads the server's VmRSS, open file descriptors and threads from /proc every
``--sample-seconds``. The first tasks go through every kind of request once (models load, caches
fill, thread pools grow); the warm-up ends when those ended and ``--warmup`` seconds passed. Then
``--minutes`` of load are measured; the load stops, every task must reach a final status within
``--drain-timeout`` seconds, and each is read back to check it ended as it should.

Printed: requests by kind (count, p50, p99, HTTP statuses), tasks by final status, valid requests
that failed, bad requests answered unexpectedly, RSS / fds / threads after warm-up, in the middle
and at the end of the measured load (median of each third), their maximum and linear trend, the
server's CPU time and tracebacks in its log, then PASS or FAIL. Criteria: every task final and as
expected; no error on a valid request; every bad request answered as documented; no traceback in
the server log; RSS growth (end third minus first third) <= max(``--rss-growth-mb``,
``--rss-growth-pct`` of the post-warm-up level); fds and threads at the end <= their maximum over the
first third + ``--fd-slack`` / ``--thread-slack``. The exit status is 1 on FAIL.
Timings on a shared machine are noisy; the criteria are about levels, not speed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from load import KEY, SUBMIT, cpu_seconds, file_server, processes

from openr2v.client.wire import upload_form

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets" / "demo"
OTHER_KEY = "sk-bench-other"
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")
VIDEOS = ("role1.mp4", "role2.mp4")  # 3 s each: the aggregator's and the gateway's minimum too
IMAGES = ("object3.png", "background4.png")


# -- bookkeeping ------------------------------------------------------------------------------


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    errors: int = 0  # valid requests answered wrongly (or not at all)
    unexpected: int = 0  # bad requests answered otherwise than documented
    samples_of_errors: list[str] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)  # outcomes worth counting (cancel won/lost, ...)
    expected: dict[str, tuple[str, str]] = field(default_factory=dict)  # task id -> (end status, kind)
    done: deque[tuple[str, str | None]] = field(default_factory=lambda: deque(maxlen=50))  # succeeded: (id, url)
    finished: set[str] = field(default_factory=set)  # tasks whose round trip is over, however it went

    def record(self, kind: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            self.statuses[kind][status] += 1

    def fail(self, what: str, valid: bool = True) -> None:
        with self.lock:
            if valid:
                self.errors += 1
            else:
                self.unexpected += 1
            if len(self.samples_of_errors) < 30:
                self.samples_of_errors.append(("" if valid else "bad request: ") + what[:400])

    def count(self, event: str) -> None:
        with self.lock:
            self.events[event] += 1


class Answered(Exception):
    """A valid request got an answer it should not have; already counted."""


Check = Callable[[httpx.Response], bool]


def code_is(*codes: str) -> Check:
    """The error code in any dialect's envelope: ``code``, ``error.code`` (aggregator, OpenAI)."""

    def check(r: httpx.Response) -> bool:
        with contextlib.suppress(ValueError):
            body = r.json()
            code = body.get("code") if "code" in body else (body.get("error") or {}).get("code")
            return code in codes
        return False

    return check


def call(stats: Stats, c: httpx.Client, kind: str, method: str, url: str, *, expect: tuple[int, ...] = (200,),
         check: Check | None = None, valid: bool = True, **kw: Any) -> httpx.Response:
    """One timed request; an answer other than ``expect`` (and ``check``) is an error (valid) or an
    unexpected answer (bad request). Raises Answered for a valid request answered wrongly."""
    t0 = time.perf_counter()
    try:
        r = c.request(method, url, **kw)
    except httpx.HTTPError as e:
        stats.record(kind, 0, time.perf_counter() - t0)
        stats.fail(f"{kind}: {method} {url}: {type(e).__name__}: {e}", valid)
        raise Answered from None
    stats.record(kind, r.status_code, time.perf_counter() - t0)
    if r.status_code not in expect or (check is not None and not check(r)):
        stats.fail(f"{kind}: {method} {url} -> {r.status_code} {r.text[:300]}", valid)
        if valid:
            raise Answered
    return r


# -- what a task client sends -----------------------------------------------------------------


@dataclass
class Refs:
    base: str  # the file server
    data_uri: str  # a 400x400 JPEG as base64

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


def data_uri() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.open(ASSETS / "object3.png").convert("RGB").resize((400, 400)).save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _dialogue(n: int) -> str:
    return f"character1 says to character{n}: 'good morning, how are you?'" if n > 1 else \
        "character1 says: 'good morning.'"


@dataclass
class Lifecycle:
    """One task's round trip through one dialect."""

    kind: str
    dialect: str  # dashscope | aggregator | gateway | openai
    expect: str = "SUCCEEDED"
    cancel_early: bool = False  # DashScope cancel right after submit
    cancel_running: bool = False  # DashScope cancel once seen RUNNING (400 expected)
    delete_running: bool = False  # /v1/videos DELETE once seen running
    follow_events: bool = False  # DashScope: follow the SSE stream instead of polling
    drop_events: bool = False  # ... and drop it after the first event
    thumbnail: bool = False  # /v1/videos: also fetch the thumbnail variant


# Weights of the task kinds (DashScope native: 60%).
KINDS: dict[str, int] = {"ds26-url": 26, "ds26-data": 8, "ds26-upload": 6, "ds27": 12, "ds-badref": 4,
                         "aggregator": 14, "gateway": 6, "openai-json": 16, "openai-multipart": 8}


def plan(kind: str, rng: random.Random) -> Lifecycle:
    dialect = ("dashscope" if kind.startswith("ds") else "openai" if kind.startswith("openai") else kind)
    lc = Lifecycle(kind, dialect)
    if dialect == "dashscope":
        lc.cancel_early = rng.random() < 0.12
        lc.cancel_running = not lc.cancel_early and rng.random() < 0.1
        lc.follow_events = rng.random() < 0.25
        lc.drop_events = lc.follow_events and rng.random() < 0.3
    if dialect == "openai":
        lc.delete_running = rng.random() < 0.08
        lc.thumbnail = rng.random() < 0.15
    if kind == "ds-badref":
        lc.expect = "FAILED"
    return lc


def submit(stats: Stats, c: httpx.Client, lc: Lifecycle, refs: Refs, rng: random.Random) -> str:
    k = f"submit {lc.kind}"
    seed = rng.randrange(2**31)
    if lc.dialect == "dashscope":
        headers = {"X-DashScope-Async": "enable"}
        if lc.kind == "ds27":
            media = [{"type": "reference_image", "url": refs.url(rng.choice(IMAGES))},
                     {"type": "reference_video", "url": refs.url(rng.choice(VIDEOS))}]
            body: dict[str, Any] = {
                "model": "wan2.7-r2v", "input": {"prompt": "Video 1 says to Image 1: 'nice to see you.'",
                                                 "media": media},
                "parameters": {"resolution": "720P", "ratio": rng.choice(["16:9", "1:1"]), "duration": 2,
                               "seed": seed}}
        else:
            names = rng.sample([*VIDEOS, *IMAGES], rng.randint(1, 3))
            urls = [refs.url(n) for n in names]
            if lc.kind == "ds26-data":
                urls[0] = refs.data_uri
            elif lc.kind == "ds-badref":
                urls[-1] = refs.url(f"missing-{uuid.uuid4().hex[:8]}.png")
            elif lc.kind == "ds26-upload":  # the SDK's way with local files: getPolicy, OSS form, oss://
                policy = call(stats, c, "getPolicy", "GET", "/api/v1/uploads",
                              params={"action": "getPolicy", "model": "wan2.6-r2v-flash"}).json()["data"]
                oss, form = upload_form(policy, ASSETS / names[0])
                call(stats, c, "oss-upload", "POST", policy["upload_host"], data=form,
                     files={"file": (names[0], (ASSETS / names[0]).read_bytes())}, headers={"Authorization": ""})
                urls[0] = oss
                headers["X-DashScope-OssResourceResolve"] = "enable"
            audio = rng.random() < 0.25
            prompt = _dialogue(len(urls)) if audio else "character1 waves at the camera."
            body = {"model": "wan2.6-r2v-flash", "input": {"prompt": prompt, "reference_urls": urls},
                    "parameters": {"size": rng.choice(["1280*720", "720*1280"]), "duration": rng.choice([2, 3]),
                                   "audio": audio, "seed": seed}}
        r = call(stats, c, k, "POST", SUBMIT, json=body, headers=headers)
        return str(r.json()["output"]["task_id"])
    if lc.dialect == "aggregator":
        ref = rng.choice([refs.data_uri, refs.url(rng.choice(IMAGES)), refs.url(rng.choice(VIDEOS))])
        body = {"model": "wan26_r2v", "input": {"prompt": "character1 turns to the camera.", "reference_urls": [ref]},
                "parameters": {"size": "1280*720", "duration": 2, "audio": False, "seed": seed}}
        return str(call(stats, c, k, "POST", "/model/v1/generation", json=body).json()["id"])
    if lc.dialect == "gateway":  # wan2.6-r2v only, video references only, 5 or 10 s
        body = {"model": "wan2.6-r2v", "prompt": "character1 looks around.",
                "metadata": {"input": {"reference_video_urls": [refs.url(rng.choice(VIDEOS))]},
                             "parameters": {"size": "1280*720", "duration": 5, "seed": seed}}}
        return str(call(stats, c, k, "POST", "/v1/video/generations", json=body).json()["id"])
    if lc.kind == "openai-multipart":  # what the openai SDK sends: form fields, an uploaded input_reference
        form = {"prompt": "character1 nods.", "model": "wan2.6-r2v-flash", "seconds": "2", "size": "1280x720",
                "parameters[audio]": "false", "parameters[seed]": str(seed)}
        name = rng.choice(IMAGES)
        r = call(stats, c, k, "POST", "/v1/videos", data=form,
                 files={"input_reference": (name, (ASSETS / name).read_bytes(), "image/png")})
    else:
        body = {"model": "wan2.6-r2v-flash", "prompt": "character1 waves at character2.", "seconds": "2",
                "size": rng.choice(["1280x720", "720x1280"]),
                "references": [refs.url(rng.choice(IMAGES)), refs.url(rng.choice(VIDEOS))],
                "parameters": {"audio": False, "seed": seed}}
        r = call(stats, c, k, "POST", "/v1/videos", json=body)
    return str(r.json()["id"])


def poll(stats: Stats, c: httpx.Client, lc: Lifecycle, task_id: str) -> tuple[str, str | None]:
    """(PENDING | RUNNING | ENDED | SUCCEEDED, download URL) through the task's own dialect."""
    k = f"poll {lc.dialect}"
    if lc.dialect == "dashscope":
        out = call(stats, c, k, "GET", f"/api/v1/tasks/{task_id}").json()["output"]
        status = out["task_status"]
        return ("ENDED" if status in TERMINAL and status != "SUCCEEDED" else status), out.get("video_url")
    if lc.dialect == "aggregator":
        body = call(stats, c, k, "GET", f"/model/v1/generation/{task_id}").json()
        status = {"pending": "PENDING", "processing": "RUNNING", "completed": "SUCCEEDED"}.get(body["status"], "ENDED")
        return status, (body["output"][0]["content"][0]["url"] if status == "SUCCEEDED" else None)
    if lc.dialect == "gateway":
        data = call(stats, c, k, "GET", f"/v1/video/generations/{task_id}").json()["data"]
        status = data["data"]["output"]["task_status"]
        return ("ENDED" if status in TERMINAL and status != "SUCCEEDED" else status), (
            data["fail_reason"] if status == "SUCCEEDED" else None)
    body = call(stats, c, k, "GET", f"/v1/videos/{task_id}").json()
    status = {"queued": "PENDING", "in_progress": "RUNNING", "completed": "SUCCEEDED"}.get(body["status"], "ENDED")
    return status, (f"/v1/videos/{task_id}/content" if status == "SUCCEEDED" else None)


def follow(stats: Stats, c: httpx.Client, lc: Lifecycle, task_id: str, deadline: float) -> bool:
    """Follow the live event stream; True once it showed a final status (False: dropped on purpose)."""
    t0 = time.perf_counter()
    try:
        with c.stream("GET", f"/api/v1/tasks/{task_id}/events", timeout=max(5.0, deadline - time.time())) as r:
            if r.status_code != 200:
                stats.record("events", r.status_code, time.perf_counter() - t0)
                stats.fail(f"events {task_id} -> {r.status_code}")
                raise Answered
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                if lc.drop_events:  # a client that goes away mid-stream
                    stats.record("events (dropped)", 200, time.perf_counter() - t0)
                    return False
                if json.loads(line[5:])["output"]["task_status"] in TERMINAL:
                    stats.record("events", 200, time.perf_counter() - t0)
                    return True
    except httpx.HTTPError as e:
        stats.record("events", 0, time.perf_counter() - t0)
        stats.fail(f"events {task_id}: {type(e).__name__}: {e}")
        raise Answered from None
    stats.fail(f"events {task_id}: the stream ended before a final status")
    raise Answered


def download(stats: Stats, c: httpx.Client, lc: Lifecycle, task_id: str, url: str) -> None:
    r = call(stats, c, f"download {lc.dialect}", "GET", url)
    if r.headers.get("content-type", "").split(";")[0] != "video/mp4" or r.content[4:8] != b"ftyp":
        stats.fail(f"download {url}: not an MP4 ({r.headers.get('content-type')}, {len(r.content)} bytes)")
    if lc.thumbnail:
        call(stats, c, "thumbnail", "GET", f"/v1/videos/{task_id}/content", params={"variant": "thumbnail"},
             check=lambda r: r.headers.get("content-type") == "image/webp")


def run_task(stats: Stats, c: httpx.Client, lc: Lifecycle, refs: Refs, rng: random.Random,
             poll_seconds: float, task_timeout: float) -> None:
    task_id = submit(stats, c, lc, refs, rng)
    with stats.lock:
        stats.expected[task_id] = (lc.expect, lc.kind)
    try:
        follow_task(stats, c, lc, task_id, poll_seconds, task_timeout)
    finally:
        with stats.lock:
            stats.finished.add(task_id)


def follow_task(stats: Stats, c: httpx.Client, lc: Lifecycle, task_id: str, poll_seconds: float,
                task_timeout: float) -> None:
    if lc.cancel_early:  # 200 if still PENDING; a worker may have claimed it already: 400 UnsupportedOperation
        r = call(stats, c, "cancel (just submitted)", "POST", f"/api/v1/tasks/{task_id}/cancel", expect=(200, 400),
                 check=lambda r: r.status_code == 200 or code_is("UnsupportedOperation")(r))
        won = r.status_code == 200
        stats.count("cancel of a PENDING task: canceled" if won else "cancel just after submit: already RUNNING")
        if won:
            with stats.lock:
                stats.expected[task_id] = ("CANCELED", lc.kind)
    deadline = time.time() + task_timeout
    if lc.follow_events and follow(stats, c, lc, task_id, deadline):
        pass  # ended: one poll below gets the URL, as an SDK does after the stream
    tried_running = False
    while True:
        status, url = poll(stats, c, lc, task_id)
        if status in ("SUCCEEDED", "ENDED"):
            break
        if status == "RUNNING" and not tried_running and (lc.cancel_running or lc.delete_running):
            tried_running = True
            if lc.cancel_running:
                # DashScope cancels PENDING tasks only; by the time it arrives the task may have ended: also 400.
                call(stats, c, "cancel (RUNNING)", "POST", f"/api/v1/tasks/{task_id}/cancel", expect=(400,),
                     check=code_is("UnsupportedOperation"))
                stats.count("cancel of a RUNNING task: 400 UnsupportedOperation")
            else:
                call(stats, c, "delete (running)", "DELETE", f"/v1/videos/{task_id}",
                     check=lambda r: r.json().get("deleted") is True)
                call(stats, c, "get (deleted)", "GET", f"/v1/videos/{task_id}", expect=(404,),
                     check=code_is("not_found"))
                stats.count("DELETE /v1/videos of a running video")
                with stats.lock:
                    stats.expected[task_id] = ("UNKNOWN", lc.kind)
                return
        if time.time() > deadline:
            stats.fail(f"task {task_id} ({lc.kind}) still {status} after {task_timeout:.0f} s")
            return
        time.sleep(poll_seconds)
    if status == "SUCCEEDED" and url:
        download(stats, c, lc, task_id, url)
        with stats.lock:
            stats.done.append((task_id, url if url.startswith("http") else None))


def task_client(stats: Stats, base: str, refs: Refs, kinds: Iterator[str], stop: threading.Event, seed: int,
                poll_seconds: float, task_timeout: float) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as c:
        while not stop.is_set():
            lc = plan(next(kinds), rng)
            with contextlib.suppress(Answered):
                run_task(stats, c, lc, refs, rng, poll_seconds, task_timeout)
            stop.wait(rng.uniform(0, 0.5))  # a client's think time


class KindFeed:
    """Every kind once first (the warm-up covers them all), then by weight; thread-safe."""

    def __init__(self, rng: random.Random) -> None:
        self.lock, self.rng = threading.Lock(), rng
        self.first = deque(KINDS)

    def __iter__(self) -> KindFeed:
        return self

    def __next__(self) -> str:
        with self.lock:
            if self.first:
                return self.first.popleft()
            return self.rng.choices(list(KINDS), weights=list(KINDS.values()))[0]


# -- the reader and the bad client ------------------------------------------------------------


def reader(stats: Stats, base: str, stop: threading.Event, interval: float) -> None:
    rng = random.Random(1)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as c:
        while not stop.wait(interval):
            with contextlib.suppress(Answered):
                choice = rng.randrange(6)
                if choice == 0:
                    call(stats, c, "list dashscope", "GET", "/api/v1/tasks",
                         params={"page_size": 10, "page_no": rng.randint(1, 3)})
                elif choice == 1:
                    call(stats, c, "list openai", "GET", "/v1/videos", params={"limit": 10})
                elif choice == 2:
                    call(stats, c, "ledger", "GET", "/api/v1/openr2v/ledger")
                elif choice == 3:
                    call(stats, c, "models", "GET", "/api/v1/openr2v/models")
                elif choice == 4 and stats.done:
                    call(stats, c, "plan", "GET", f"/api/v1/tasks/{stats.done[-1][0]}/plan")
                else:
                    call(stats, c, "healthz", "GET", "/healthz")


def bad_requests(refs: Refs) -> list[tuple[str, dict[str, Any], tuple[int, ...], Check | None]]:
    """(kind, request, expected statuses, check of the body) of every bad request the bad client sends."""
    valid = {"model": "wan2.6-r2v-flash", "input": {"prompt": "character1 waves.", "reference_urls": [
        refs.url(IMAGES[0])]}, "parameters": {"size": "1280*720", "duration": 2, "audio": False}}
    asy = {"X-DashScope-Async": "enable"}
    unknown = str(uuid.uuid4())
    return [
        ("bad: invalid JSON", dict(method="POST", url=SUBMIT, content=b'{"model": ', headers=asy), (400,),
         code_is("InvalidParameter")),
        ("bad: missing input", dict(method="POST", url=SUBMIT, json={"model": "wan2.6-r2v-flash"}, headers=asy),
         (400,), code_is("BadRequest.EmptyInput")),
        ("bad: missing model", dict(method="POST", url=SUBMIT, json={"input": valid["input"]}, headers=asy),
         (400,), code_is("BadRequest.EmptyModel")),
        ("bad: duration 60", dict(method="POST", url=SUBMIT, headers=asy,
                                  json={**valid, "parameters": {**valid["parameters"], "duration": 60}}),
         (400,), code_is("InvalidParameter")),
        ("bad: synchronous call", dict(method="POST", url=SUBMIT, json=valid), (403,), code_is("AccessDenied")),
        ("bad: wrong key", dict(method="POST", url=SUBMIT, json=valid,
                                headers={**asy, "Authorization": "Bearer sk-not-a-key"}),
         (401,), code_is("InvalidApiKey")),
        ("bad: no key", dict(method="GET", url=f"/api/v1/tasks/{unknown}", headers={"Authorization": ""}), (401,),
         code_is("InvalidApiKey")),
        ("bad: unknown task", dict(method="GET", url=f"/api/v1/tasks/{unknown}"), (200,),
         lambda r: r.json()["output"]["task_status"] == "UNKNOWN"),
        ("bad: cancel unknown task", dict(method="POST", url=f"/api/v1/tasks/{unknown}/cancel"), (404,),
         code_is("NotFound")),
        ("bad: list page_size 0", dict(method="GET", url="/api/v1/tasks", params={"page_size": 0}), (400,),
         code_is("InvalidParameter")),
        ("bad: aggregator invalid JSON", dict(method="POST", url="/model/v1/generation", content=b"[1,"), (400,),
         code_is("001028099")),
        ("bad: aggregator no references", dict(method="POST", url="/model/v1/generation", json={
            "model": "wan26_r2v", "input": {"prompt": "hi"}}), (400,), code_is("001028001")),
        ("bad: aggregator unknown task", dict(method="GET", url=f"/model/v1/generation/{unknown}"), (404,),
         code_is("001028098")),
        ("bad: gateway wrong model", dict(method="POST", url="/v1/video/generations", json={
            "model": "sora-2", "prompt": "hi"}), (400,), code_is("invalid_request")),
        ("bad: gateway unknown task", dict(method="GET", url=f"/v1/video/generations/{unknown}"), (400,),
         code_is("task_not_exist")),
        ("bad: openai seconds 'abc'", dict(method="POST", url="/v1/videos", json={
            "prompt": "hi", "seconds": "abc"}), (400,), code_is("invalid_value")),
        ("bad: openai unknown video", dict(method="GET", url=f"/v1/videos/{unknown}"), (404,), code_is("not_found")),
        ("bad: openai wrong key", dict(method="GET", url="/v1/videos", headers={"Authorization": "Bearer sk-x"}),
         (401,), code_is("invalid_api_key")),
    ]


def bad_client(stats: Stats, base: str, refs: Refs, stop: threading.Event, interval: float) -> None:
    cases = bad_requests(refs)
    i = 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as c, \
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {OTHER_KEY}"}, timeout=60) as other:
        while not stop.wait(interval):
            i += 1
            kind, req, expect, check = cases[i % len(cases)]
            with contextlib.suppress(Answered):
                call(stats, c, kind, expect=expect, check=check, valid=False, **req)
            if i % 4 or not stats.done:
                continue
            task_id, url = stats.done[-1]  # cases that need a finished task of KEY
            with contextlib.suppress(Answered):
                call(stats, other, "bad: another key's task", "GET", f"/api/v1/tasks/{task_id}", expect=(404,),
                     check=code_is("NotFound"), valid=False)
                call(stats, c, "bad: cancel a finished task", "POST", f"/api/v1/tasks/{task_id}/cancel",
                     expect=(400,), check=code_is("UnsupportedOperation"), valid=False)
                if url and "Signature=" in url:
                    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
                    call(stats, c, "bad: forged file signature", "GET", forged, expect=(404,), valid=False)


# -- the server's vital signs -----------------------------------------------------------------


@dataclass
class Sample:
    t: float  # seconds since the load started
    rss_mb: float
    fds: int
    threads: int


def sample(pid: int, t: float) -> Sample:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return Sample(t, int(fields["VmRSS"].split()[0]) / 1024, len(os.listdir(f"/proc/{pid}/fd")),
                  int(fields["Threads"]))


def sampler(pid: int, t0: float, samples: list[Sample], stop: threading.Event, interval: float) -> None:
    while True:
        with contextlib.suppress(OSError):
            samples.append(sample(pid, time.monotonic() - t0))
        if stop.wait(interval):
            return


def slope_per_10min(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (seconds), per 10 minutes."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 600 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def trend(post: list[Sample], attr: str) -> dict[str, float]:
    """Median of each third of the measured samples, the maximum, the trend."""
    values = [float(getattr(s, attr)) for s in post]
    third = max(1, len(values) // 3)
    return {"start": statistics.median(values[:third]), "middle": statistics.median(values[third:-third] or values),
            "end": statistics.median(values[-third:]), "max": max(values),
            "first_third_max": max(values[:third]), "last_third_max": max(values[-third:]),
            "slope_per_10min": slope_per_10min([s.t for s in post], values)}


# -- the run ----------------------------------------------------------------------------------


def final_statuses(base: str, expected: dict[str, tuple[str, str]]) -> tuple[Counter[str], list[str]]:
    """Every submitted task read back through DashScope native: counts by status, and the tasks that did
    not end as they should."""
    by_status: Counter[str] = Counter()
    wrong: list[str] = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as c:
        for task_id, (want, kind) in expected.items():
            out = c.get(f"/api/v1/tasks/{task_id}").json()["output"]
            status = out["task_status"]
            by_status[status] += 1
            ok = status == want and (want != "FAILED" or out.get("code") == "BadRequest.InputDownloadFailed")
            if not ok:
                wrong.append(f"{task_id} ({kind}): {status} {out.get('code') or ''} {out.get('message') or ''}"
                             f"; expected {want}")
    return by_status, wrong


def soak(args: argparse.Namespace) -> dict[str, Any]:
    stats = Stats()
    samples: list[Sample] = []
    env = {"OPENR2V_API_KEYS": f"{KEY}:intl,{OTHER_KEY}:intl", "OPENR2V_ALLOW_PRIVATE_URLS": "1"}
    with tempfile.TemporaryDirectory(prefix="openr2v-soak-") as d:
        root = Path(d)
        (root / "refs").mkdir()
        for name in (*VIDEOS, *IMAGES):
            shutil.copy(ASSETS / name, root / "refs" / name)
        with file_server(root / "refs") as files, processes(env, root / "server", worker=False) as (port, pids):
            base = f"http://127.0.0.1:{port}"
            refs = Refs(files, data_uri())
            stop_load, stop_all = threading.Event(), threading.Event()
            t0 = time.monotonic()
            cpu0 = cpu_seconds(pids)
            threads = [threading.Thread(target=sampler, args=(pids[0], t0, samples, stop_all, args.sample_seconds)),
                       threading.Thread(target=reader, args=(stats, base, stop_load, args.read_interval)),
                       threading.Thread(target=bad_client, args=(stats, base, refs, stop_load, args.bad_interval))]
            kinds = KindFeed(random.Random(args.seed))
            clients = [threading.Thread(target=task_client, args=(stats, base, refs, kinds, stop_load,
                                                                  args.seed + i, args.poll_seconds,
                                                                  args.task_timeout))
                       for i in range(args.clients)]
            for t in threads + clients:
                t.daemon = True
                t.start()
            # The warm-up: at least --warmup seconds and until the first task of every kind ended.
            while (time.monotonic() - t0 < args.warmup or not first_round_done(stats)) \
                    and time.monotonic() - t0 < args.warmup + args.task_timeout:
                time.sleep(0.5)
            warm = time.monotonic() - t0
            progress(f"warm-up done after {warm:.0f} s; measuring {args.minutes:g} min", args)
            end = warm + args.minutes * 60
            while (now := time.monotonic() - t0) < end:
                time.sleep(min(30.0, end - now))
                if end - now > 30:
                    progress(f"  {now / 60:5.1f} min: {_line(stats, samples)}", args)
            stop_load.set()
            load_end = time.monotonic() - t0
            for t in clients:  # each finishes its task in hand (bounded by --task-timeout)
                t.join(args.task_timeout + 60)
            with stats.lock:
                expected = dict(stats.expected)
            drained = time.monotonic()
            by_status, wrong = final_statuses(base, expected)
            while any(s not in TERMINAL for s in by_status) and time.monotonic() - drained < args.drain_timeout:
                time.sleep(1)
                by_status, wrong = final_statuses(base, expected)
            drain_seconds = time.monotonic() - drained
            time.sleep(args.sample_seconds)  # one idle sample after the load
            stop_all.set()
            for t in threads:
                t.join(30)
            cpu = cpu_seconds(pids) - cpu0
            log = (root / "server" / "processes.log").read_text(errors="replace")
    return report(args, stats, samples, warm, load_end, by_status, wrong, drain_seconds, cpu, log)


def first_round_done(stats: Stats) -> bool:
    """The first task of every kind went all the way through (or something already failed)."""
    with stats.lock:
        first = list(stats.expected)[:len(KINDS)]
        return stats.errors > 0 or (len(first) == len(KINDS) and all(t in stats.finished for t in first))


def _line(stats: Stats, samples: list[Sample]) -> str:
    s = samples[-1] if samples else Sample(0, 0, 0, 0)
    with stats.lock:
        n = len(stats.expected)
    return (f"{n} tasks, RSS {s.rss_mb:.0f} MB, {s.fds} fds, {s.threads} threads, "
            f"errors {stats.errors}, unexpected {stats.unexpected}")


def progress(text: str, args: argparse.Namespace) -> None:
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def report(args: argparse.Namespace, stats: Stats, samples: list[Sample], warm: float, load_end: float,
           by_status: Counter[str], wrong: list[str], drain_seconds: float, cpu: float, log: str) -> dict[str, Any]:
    post = [s for s in samples if warm <= s.t <= load_end]
    if len(post) < 3:
        post = samples[-3:]
    rss, fds, thr = trend(post, "rss_mb"), trend(post, "fds"), trend(post, "threads")
    rss_bound = max(args.rss_growth_mb, rss["start"] * args.rss_growth_pct / 100)
    tracebacks = log.count("Traceback (most recent call last)")
    open_tasks = sum(n for s, n in by_status.items() if s not in TERMINAL)
    criteria = [
        ("every task ended", open_tasks == 0, f"{open_tasks} of {sum(by_status.values())} not final"),
        ("every task ended as expected", not wrong, f"{len(wrong)} did not"),
        ("no error on valid requests", stats.errors == 0, f"{stats.errors} errors"),
        ("bad requests answered as documented", stats.unexpected == 0, f"{stats.unexpected} unexpected"),
        ("no traceback in the server log", tracebacks == 0, f"{tracebacks} tracebacks"),
        ("RSS flat", rss["end"] - rss["start"] <= rss_bound,
         f"{rss['end'] - rss['start']:+.1f} MB (bound {rss_bound:.0f} MB)"),
        ("open files flat", fds["last_third_max"] <= fds["first_third_max"] + args.fd_slack,
         f"max {fds['first_third_max']:.0f} -> {fds['last_third_max']:.0f} (slack {args.fd_slack})"),
        ("threads flat", thr["last_third_max"] <= thr["first_third_max"] + args.thread_slack,
         f"max {thr['first_third_max']:.0f} -> {thr['last_third_max']:.0f} (slack {args.thread_slack})"),
    ]
    requests = {}
    for kind in sorted(stats.latencies):
        lat = sorted(stats.latencies[kind])
        requests[kind] = {"n": len(lat), "p50_ms": statistics.median(lat) * 1000,
                          "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
                          "statuses": {str(k): v for k, v in sorted(stats.statuses[kind].items())}}
    result: dict[str, Any] = {
        "passed": all(ok for _, ok, _ in criteria),
        "criteria": [{"name": n, "ok": ok, "detail": d} for n, ok, d in criteria],
        "minutes": args.minutes, "warmup_seconds": warm, "load_seconds": load_end - warm,
        "drain_seconds": drain_seconds, "server_cpu_seconds": cpu, "cpus": os.cpu_count(),
        "requests": requests, "total_requests": sum(r["n"] for r in requests.values()),
        "valid_errors": stats.errors, "bad_unexpected": stats.unexpected, "error_samples": stats.samples_of_errors,
        "events": dict(stats.events),
        "tasks": {"submitted": len(stats.expected), "terminal": sum(by_status.values()) - open_tasks,
                  "by_status": dict(by_status), "by_kind": dict(Counter(k for _, k in stats.expected.values())),
                  "not_as_expected": wrong[:30]},
        "rss_mb": {**rss, "bound_mb": rss_bound, "after_drain": samples[-1].rss_mb if samples else None},
        "fds": {**fds, "after_drain": samples[-1].fds if samples else None},
        "threads": {**thr, "after_drain": samples[-1].threads if samples else None},
        "server_log_tracebacks": tracebacks,
        "samples": [asdict(s) for s in samples],
    }
    if tracebacks:
        result["server_log_tail"] = log[-4000:]
    return result


def print_report(r: dict[str, Any], out: Any) -> None:
    def p(text: str = "") -> None:
        print(text, file=out)

    p(f"\nrequests: {r['total_requests']} in {r['warmup_seconds'] + r['load_seconds']:.0f} s "
      f"({r['warmup_seconds']:.0f} s warm-up), server CPU {r['server_cpu_seconds']:.0f} s on {r['cpus']} cores")
    p(f"  {'kind':<34} {'n':>6} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for kind, q in r["requests"].items():
        codes = " ".join(f"{k}:{v}" for k, v in q["statuses"].items())
        p(f"  {kind:<34} {q['n']:>6} {q['p50_ms']:>8.1f} {q['p99_ms']:>8.1f}  {codes}")
    t = r["tasks"]
    p(f"tasks: {t['submitted']} submitted, {t['terminal']} final "
      f"({', '.join(f'{k} {v}' for k, v in sorted(t['by_status'].items()))}); drained in {r['drain_seconds']:.1f} s")
    p("  by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(t["by_kind"].items())))
    for k, v in sorted(r["events"].items()):
        p(f"  {k}: {v}")
    p(f"errors on valid requests: {r['valid_errors']}; bad requests answered unexpectedly: {r['bad_unexpected']}")
    for line in r["error_samples"][:10] + t["not_as_expected"][:10]:
        p(f"  ! {line}")
    p(f"{'after warm-up':>28} {'middle':>8} {'end':>8} {'max':>8} {'trend /10 min':>14} {'idle after':>11}")
    for name, key, unit in (("RSS (MB)", "rss_mb", ".0f"), ("open fds", "fds", ".0f"), ("threads", "threads", ".0f")):
        v = r[key]
        p(f"  {name:<12}{v['start']:>14{unit}} {v['middle']:>8{unit}} {v['end']:>8{unit}} {v['max']:>8{unit}} "
          f"{v['slope_per_10min']:>+14.1f} {v['after_drain']:>11{unit}}")
    for c in r["criteria"]:
        p(f"  [{'ok' if c['ok'] else 'FAIL'}] {c['name']}: {c['detail']}")
    p("PASS" if r["passed"] else "FAIL")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0, help="measured load after the warm-up")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds of load before measuring (default: 10%% of the run, 60 s to 180 s)")
    ap.add_argument("--clients", type=int, default=4, help="task clients, one task each at a time")
    ap.add_argument("--poll-seconds", type=float, default=1.0, help="seconds between two polls of a task")
    ap.add_argument("--read-interval", type=float, default=1.0, help="seconds between two reader requests")
    ap.add_argument("--bad-interval", type=float, default=0.5, help="seconds between two bad requests")
    ap.add_argument("--sample-seconds", type=float, default=5.0, help="seconds between two /proc samples")
    ap.add_argument("--task-timeout", type=float, default=300.0, help="a task not ended by then is an error")
    ap.add_argument("--drain-timeout", type=float, default=300.0, help="after the load, wait this long at most")
    ap.add_argument("--rss-growth-mb", type=float, default=50.0, help="RSS growth allowed after the warm-up (MB)")
    ap.add_argument("--rss-growth-pct", type=float, default=10.0, help="... or this %% of the level, if larger")
    ap.add_argument("--fd-slack", type=int, default=8, help="open fds allowed above the first third's maximum")
    ap.add_argument("--thread-slack", type=int, default=8, help="threads allowed above the first third's maximum")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="the report as JSON on stdout (figures on stderr)")
    args = ap.parse_args()
    if args.warmup is None:
        args.warmup = min(180.0, max(60.0, args.minutes * 6))
    progress(f"openr2v soak: {args.minutes:g} min of mixed load after a warm-up, {args.clients} task clients, "
             f"embedded default (compositor, SQLite), {os.cpu_count()} cores, load average "
             f"{os.getloadavg()[0]:.1f} before", args)
    result = soak(args)
    print_report(result, sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(result))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
