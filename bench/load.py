"""Load benchmark: submit + get against the embedded default and against PostgreSQL + Celery.

    .venv/bin/python bench/load.py                                 # both setups, 4 clients, 10 s each
    .venv/bin/python bench/load.py --setup embedded --clients 32 --seconds 20

Every setup runs as real processes on loopback: ``openr2v serve`` (embedded: SQLite, local files,
2 render threads in the API process); scale-out adds a PostgreSQL database and a redis-server of
its own, the API publishing to Celery and one ``openr2v worker`` (2 threads) rendering. Renders
cost nothing (bench/noop_engine.py): the figures are the service's own, the task pipeline
(claim, fetch, probe, store, bill) included. Each client holds one HTTP/1.1 keep-alive
connection and loops for ``--seconds``: submit a task, then get it once (``--mode pair``, the
default) or until it ended (``--mode poll``, every ``--poll-interval`` seconds, as an SDK does).
Printed: requests/s (submits and gets together), p50 and p99 latency per request, errors, tasks
ended per second, and how long the workers took to end the tasks still open when the load
stopped. Nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
KEY = "sk-bench"
SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a minimal HTTP/1.1 client: the load generator must cost less than the server it measures --


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
                f"X-DashScope-Async: enable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, per request
    by_method: dict[str, list[float]] = field(default_factory=dict)  # the same, per method (POST submits, GETs)
    errors: int = 0
    task_ids: list[str] = field(default_factory=list)
    open: set[str] = field(default_factory=set)  # submitted, not yet seen to end
    ended: int = 0  # tasks seen to end while measuring


OPEN = (b'"PENDING"', b'"RUNNING"')


async def client(port: int, body: bytes, until: float, warm_until: float, poll_interval: float | None,
                 result: Result, get_only: bool = False, submit_only: bool = False) -> None:
    """``poll_interval`` None: one get per submit; else get until the task ended; ``get_only``: one submit,
    then gets of that task until the end."""
    conn = await Conn.open(port)

    async def timed(method: str, path: str, payload: bytes = b"") -> bytes | None:
        t0 = time.perf_counter()
        status, raw = await conn.request(method, path, payload)
        if t0 >= warm_until:  # the first moments (connections, caches) are not counted
            result.latencies.append(time.perf_counter() - t0)
            result.by_method.setdefault(method, []).append(result.latencies[-1])
        if status != 200:
            result.errors += 1
            return None
        return raw

    try:
        if get_only:  # one task, then gets of it only: the cost of a poll alone
            raw = await timed("POST", SUBMIT, body)
            task_id = json.loads(raw or b"{}").get("output", {}).get("task_id", "missing")
            while time.perf_counter() < until:
                await timed("GET", f"/api/v1/tasks/{task_id}")
            return
        if submit_only:
            while time.perf_counter() < until:
                await timed("POST", SUBMIT, body)
            return
        while time.perf_counter() < until:
            try:
                raw = await timed("POST", SUBMIT, body)
                if raw is None:
                    continue
                task_id = json.loads(raw)["output"]["task_id"]
                result.task_ids.append(task_id)
                result.open.add(task_id)
                while time.perf_counter() < until:
                    raw = await timed("GET", f"/api/v1/tasks/{task_id}")
                    if raw is not None and not any(s in raw for s in OPEN):
                        result.ended += time.perf_counter() >= warm_until
                        result.open.discard(task_id)
                        break
                    if poll_interval is None:
                        break
                    if poll_interval:
                        await asyncio.sleep(poll_interval)
            except (OSError, ValueError, asyncio.IncompleteReadError):
                result.errors += 1
                conn.close()
                conn = await Conn.open(port)
    finally:
        conn.close()


async def load(port: int, body: bytes, clients: int, seconds: float, warmup: float,
               poll_interval: float | None = None, get_only: bool = False,
               submit_only: bool = False) -> tuple[Result, float]:
    result = Result()
    start = time.perf_counter()
    warm_until, until = start + warmup, start + warmup + seconds
    await asyncio.gather(*(client(port, body, until, warm_until, poll_interval, result, get_only, submit_only)
                           for _ in range(clients)))
    return result, time.perf_counter() - warm_until


# -- the setups -------------------------------------------------------------------------------


@contextlib.contextmanager
def file_server(root: Path) -> Iterator[str]:
    """Serves ``root`` (plus a 400x400 ``ref.jpg`` written there) on loopback; yields its base URL."""
    from PIL import Image

    Image.new("RGB", (400, 400), (40, 120, 200)).save(root / "ref.jpg", quality=85)
    for name in ("role1.mp4", "background4.png"):  # --render's references
        shutil.copy(BENCH.parent / "assets" / "demo" / name, root / name)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    import psycopg

    name = f"openr2v_bench_{uuid.uuid4().hex[:10]}"
    admin = {"host": "127.0.0.1", "user": "postgres", "dbname": "test", "autocommit": True}
    with psycopg.connect(**admin) as c:  # type: ignore[arg-type]
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1/{name}"
    finally:
        with psycopg.connect(**admin) as c:  # type: ignore[arg-type]
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    try:
        wait(lambda: socket.create_connection(("127.0.0.1", port), timeout=0.5).close() or True, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


def wait(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes (Linux /proc): robust where wall-clock figures are not, on
    a machine shared with other work."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@contextlib.contextmanager
def processes(env: dict[str, str], data_dir: Path, worker: bool) -> Iterator[tuple[int, list[int]]]:
    port = free_port()
    # bench/ for the no-op engine; a PYTHONPATH already set (another checkout's src) comes after it.
    path = os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")]))
    full = {**os.environ, **env, "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "openr2v.cli"]
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "processes.log", "wb")  # noqa: SIM115 - closed below
    procs = [subprocess.Popen([*cmd, "serve", "--port", str(port), "--data-dir", str(data_dir), "--log-level",
                               "warning"], env=full, stdout=log, stderr=subprocess.STDOUT)]
    try:
        try:
            wait(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200, "openr2v serve")
        except RuntimeError:
            print((data_dir / "processes.log").read_text()[-3000:], file=sys.stderr)
            raise
        if worker:
            procs.append(subprocess.Popen([*cmd, "worker", "--concurrency", "2", "--data-dir", str(data_dir),
                                           "--log-level", "info"], env=full, stdout=log, stderr=subprocess.STDOUT))
            wait(lambda: " ready." in (data_dir / "processes.log").read_text(errors="replace"), "openr2v worker")
        yield port, [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
        log.close()


def drain(port: int, task_ids: set[str], timeout: float) -> tuple[float, int]:
    """Seconds until every task left open by the load ended (or the timeout), and how many did."""
    t0, left = time.perf_counter(), set(task_ids)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"}) as c:
        while left and time.perf_counter() - t0 < timeout:
            for task_id in list(left)[:200]:
                if c.get(f"/api/v1/tasks/{task_id}").json()["output"]["task_status"] not in ("PENDING", "RUNNING"):
                    left.discard(task_id)
            if left:
                time.sleep(0.5)
    return time.perf_counter() - t0, len(task_ids) - len(left)


RENDER_MODEL = "wan2.7-r2v"  # routed to the compositor by --render; the load's own tasks stay on the no-op engine


def start_render(port: int, files: str) -> str:
    """Submit a 15 s 720p compositor render of the demo's references; return once it is RUNNING."""
    media = [{"type": "reference_video", "url": f"{files}/role1.mp4"},
             {"type": "reference_image", "url": f"{files}/background4.png"}]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}",
                                                                      "X-DashScope-Async": "enable"}) as c:
        body = {"model": RENDER_MODEL, "input": {"prompt": "Video 1 says: 'We render while you poll.' in Image 1",
                                                 "media": media},
                "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 15}}
        answer = c.post(SUBMIT, json=body).json()
        task_id = answer["output"]["task_id"]
        wait(lambda: c.get(f"/api/v1/tasks/{task_id}").json()["output"]["task_status"] == "RUNNING", "the render")
        return str(task_id)


def render_state(port: int, task_id: str) -> str:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"}) as c:
        out = c.get(f"/api/v1/tasks/{task_id}").json()["output"]
    return f"{out['task_status']} at the end of the measurement"


def run(setup: str, args: argparse.Namespace, ref_url: str, tmp: Path) -> None:
    env = {"OPENR2V_API_KEYS": f"{KEY}:intl", "OPENR2V_ENGINE": "noop_engine:noop_engine",
           "OPENR2V_ALLOW_PRIVATE_URLS": "1", "OPENR2V_SUBMIT_RATE_PER_SECOND": "0",
           "OPENR2V_MAX_CONCURRENT_TASKS": "0", "OPENR2V_RENDER_THREADS": str(args.workers)}
    if args.render:
        env["OPENR2V_ENGINE_OVERRIDES"] = f"{RENDER_MODEL}=compositor"
    body = json.dumps({"model": "wan2.6-r2v-flash",
                       "input": {"prompt": "character1 waves.", "reference_urls": [ref_url]},
                       "parameters": {"size": "1280*720", "duration": 2, "audio": False}}).encode()
    with contextlib.ExitStack() as stack:
        if setup == "scale":
            env["OPENR2V_DATABASE_URL"] = stack.enter_context(postgres())
            env["OPENR2V_QUEUE"] = "celery"
            env["OPENR2V_BROKER_URL"] = stack.enter_context(redis_server(tmp))
        port, pids = stack.enter_context(processes(env, tmp / setup, worker=setup == "scale"))
        interval = args.poll_interval if args.mode == "poll" else None
        cpu0 = cpu_seconds(pids)
        render_id = start_render(port, ref_url.rsplit("/", 1)[0]) if args.render else None
        result, elapsed = asyncio.run(load(port, body, args.clients, args.seconds, args.warmup, interval,
                                           get_only=args.mode == "get", submit_only=args.mode == "submit"))
        if render_id:
            print(f"a 720p compositor render ran beside the load: {render_state(port, render_id)}", flush=True)
        cpu = (cpu_seconds(pids) - cpu0) / max(1, len(result.latencies))  # warm-up included: an upper bound
        lat = sorted(result.latencies)
        p50 = statistics.median(lat) * 1000 if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
        ended_during = len(result.task_ids) - len(result.open)
        drained, ended = drain(port, result.open, args.drain_timeout)
        label = {"embedded": "embedded (SQLite, threads)", "scale": "PostgreSQL + Celery/Redis"}[setup]
        print(f"{label:<28} {len(lat) / elapsed:6.0f} req/s  p50 {p50:5.1f} ms  p99 {p99:5.1f} ms  "
              f"CPU {cpu * 1000:.2f} ms/req  "
              f"errors {result.errors}  tasks {len(result.task_ids)} ({ended_during} seen ended; the other "
              f"{len(result.open)}: {ended} ended {drained:.1f} s after the load)", flush=True)
        for method, values in sorted(result.by_method.items()):
            values.sort()
            print(f"  {'submits' if method == 'POST' else 'gets':<8} {len(values) / elapsed:6.0f} req/s  "
                  f"p50 {statistics.median(values) * 1000:5.1f} ms  "
                  f"p99 {values[min(len(values) - 1, int(len(values) * 0.99))] * 1000:5.1f} ms", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setup", choices=["embedded", "scale", "both"], default="both")
    ap.add_argument("--clients", type=int, default=4, help="concurrent connections")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured load per setup")
    ap.add_argument("--warmup", type=float, default=2.0, help="load before measuring")
    ap.add_argument("--mode", choices=["pair", "poll", "get", "submit"], default="pair",
                    help="pair: submit, get once; poll: submit, get until it ended; get: gets of one task; "
                         "submit: submits only")
    ap.add_argument("--render", action="store_true",
                    help="a 15 s 720p compositor render runs in the API process while the load is measured")
    ap.add_argument("--poll-interval", type=float, default=0.0, help="poll mode: seconds between two gets")
    ap.add_argument("--workers", type=int, default=2, help="render threads (OPENR2V_RENDER_THREADS)")
    ap.add_argument("--drain-timeout", type=float, default=300.0)
    args = ap.parse_args()
    what = {"pair": "submit + get", "poll": "submit + get until ended", "get": "gets of one task",
            "submit": "submits"}[args.mode]
    print(f"openr2v load: {args.clients} clients x {args.seconds:g} s, {what}, no-op engine, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before", flush=True)
    with tempfile.TemporaryDirectory(prefix="openr2v-load-") as d, file_server(Path(d)) as base:
        for setup in (["embedded", "scale"] if args.setup == "both" else [args.setup]):
            run(setup, args, f"{base}/ref.jpg", Path(d))


if __name__ == "__main__":
    main()
