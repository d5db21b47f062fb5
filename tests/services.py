"""Real services for the scale-out tests, each private to a test and always stopped.

- ``PostgresDB``: a database ``openr2v_test_<random>`` on the machine's PostgreSQL (created
  through the ``test`` maintenance database, dropped afterwards).
- ``RedisServer``: our own ``redis-server`` on a free port, keeping nothing on disk (never the
  machine's shared one on 6379: tests restart theirs).
- ``MotoS3``: moto's S3-protocol server (``moto_server -p PORT``) as a subprocess.
- ``Cluster``: openr2v processes (``openr2v serve`` API nodes, ``openr2v worker`` workers) on free
  ports, sharing one environment; their logs go to files shown when a test fails.

A missing service skips the test with the reason, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from tests.helpers import API_KEYS, KEY, free_port

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# What openr2v processes started by tests import: this tree's code (src/) and its tests package,
# whatever the venv's editable install points at.
PROCESS_PYTHONPATH = os.pathsep.join([str(REPO / "src"), str(REPO)])
PG_HOST = os.environ.get("OPENR2V_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("OPENR2V_TEST_PG_PORT", "5432"))


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required service unavailable under CI=true: {reason}")
    pytest.skip(reason)


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


# -- PostgreSQL -------------------------------------------------------------------------------


class PostgresDB:
    """A fresh database; ``url`` is its SQLAlchemy URL (psycopg 3)."""

    def __init__(self) -> None:
        import psycopg

        self.name = f"openr2v_test_{uuid.uuid4().hex[:12]}"
        errors = []
        # Trust auth: the postgres role works here; the current OS user is tried too.
        for user in dict.fromkeys(["postgres", getpass.getuser()]):
            try:
                with psycopg.connect(host=PG_HOST, port=PG_PORT, user=user, dbname="test", autocommit=True,
                                     connect_timeout=5) as conn:
                    conn.execute(f'CREATE DATABASE "{self.name}"')
                self.user = user
                break
            except psycopg.Error as e:
                errors.append(f"{user}: {e}".strip())
        else:
            unavailable(f"PostgreSQL at {PG_HOST}:{PG_PORT} (database test) refused: {'; '.join(errors)}")
        self.url = f"postgresql+psycopg://{self.user}@{PG_HOST}:{PG_PORT}/{self.name}"

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=self.user, dbname=self.name, autocommit=True) as c:
            return list(c.execute(sql, params).fetchall())  # type: ignore[arg-type]

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=self.user, dbname="test", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# -- Redis ------------------------------------------------------------------------------------


class RedisServer:
    """Our own redis-server on a free port; ``restart`` loses everything, as the machine's would."""

    def __init__(self, workdir: Path) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            unavailable("redis-server is not installed (apt-get install redis-server)")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, 20, f"redis-server on port {self.port}")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


# -- S3 (moto server) -------------------------------------------------------------------------


class MotoS3:
    """moto's S3-protocol server as a subprocess, with one bucket."""

    ACCESS_KEY = "testing"
    SECRET_KEY = "testing"

    def __init__(self, workdir: Path, bucket: str = "openr2v-test") -> None:
        binary = BIN / "moto_server"
        if not binary.exists():
            unavailable("moto_server is missing (pip install 'moto[server]'; the test extra has it)")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self.log = open(workdir / "moto.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(self.port)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_until(self._up, 30, f"moto_server on port {self.port}")
        self.client().create_bucket(Bucket=bucket)

    def _up(self) -> bool:
        try:
            return httpx.get(self.endpoint, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.ACCESS_KEY, aws_secret_access_key=self.SECRET_KEY)

    def env(self, prefix: str = "openr2v") -> dict[str, str]:
        return {"OPENR2V_STORAGE_URL": f"s3://{self.bucket}/{prefix}", "OPENR2V_S3_ENDPOINT_URL": self.endpoint,
                "OPENR2V_S3_ACCESS_KEY_ID": self.ACCESS_KEY, "OPENR2V_S3_SECRET_ACCESS_KEY": self.SECRET_KEY,
                "OPENR2V_S3_REGION": "us-east-1"}

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.log.close()


# -- openr2v processes ------------------------------------------------------------------------

# Short leases and reaper rounds: a lost worker or a lost message is noticed in seconds.
FAST_RECOVERY = {"OPENR2V_LEASE_SECONDS": "3", "OPENR2V_REAPER_INTERVAL_SECONDS": "0.5",
                 "OPENR2V_REQUEUE_PENDING_SECONDS": "2"}
# An engine that costs nothing, for tests where the render is not what is tested.
SLEEP_ENGINE = "tests.durability.engines:sleep_engine"


@dataclass
class Proc:
    kind: str  # api | worker
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(15)

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Cluster:
    """openr2v API nodes and workers started as their own processes with one shared environment."""

    root: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def _spawn(self, kind: str, args: list[str], extra_env: dict[str, str] | None,
               data_dir: Path | None = None) -> Proc:
        n = sum(p.kind == kind for p in self.procs)
        data_dir = data_dir or self.root / f"{kind}{n}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / f"{kind}{n}-{len(self.procs)}.log"
        env = {**os.environ, **self.env, **(extra_env or {}), "PYTHONPATH": PROCESS_PYTHONPATH}
        with open(log, "wb") as out:
            popen = subprocess.Popen([sys.executable, "-m", "openr2v.cli", *args, "--data-dir", str(data_dir)],
                                     env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        proc = Proc(kind, popen, log)
        self.procs.append(proc)
        return proc

    def api(self, port: int | None = None, extra_env: dict[str, str] | None = None) -> Proc:
        port = port or free_port()
        proc = self._spawn("api", ["serve", "--port", str(port), "--log-level", "warning"], extra_env)
        proc.url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if not proc.alive():
                raise RuntimeError(f"API node exited:\n{proc.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{proc.url}/healthz", timeout=1).status_code == 200
            return False

        wait_until(healthy, 60, f"API node on {proc.url}")
        return proc

    def worker(self, concurrency: int = 1, extra_env: dict[str, str] | None = None, wait: bool = True,
               data_dir: Path | None = None) -> Proc:
        proc = self._spawn("worker", ["worker", "--concurrency", str(concurrency), "--log-level", "info"], extra_env,
                           data_dir)

        def ready() -> bool:
            if not proc.alive():
                raise RuntimeError(f"worker exited:\n{proc.log.read_text()[-3000:]}")
            return " ready." in proc.log.read_text(errors="replace")

        if wait:
            wait_until(ready, 60, "worker ready")
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {p.log.name} ---\n{p.log.read_text(errors='replace')[-4000:]}" for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            if p.alive():
                p.kill9()


def cluster_env(*, db: PostgresDB | None, redis: RedisServer | None, s3: MotoS3 | None = None,
                **extra: str) -> dict[str, str]:
    env = {"OPENR2V_API_KEYS": API_KEYS, "OPENR2V_SECRET_KEY": "test-secret",
           "OPENR2V_ALLOW_PRIVATE_URLS": "1", "OPENR2V_X264_PRESET": "ultrafast", **FAST_RECOVERY}
    if db is not None:
        env["OPENR2V_DATABASE_URL"] = db.url
    if redis is not None:
        env.update(OPENR2V_QUEUE="celery", OPENR2V_BROKER_URL=redis.url)
    if s3 is not None:
        env.update(s3.env())
    env.update(extra)
    return env


@contextlib.contextmanager
def cluster(root: Path, env: dict[str, str]) -> Iterator[Cluster]:
    c = Cluster(root, env)
    try:
        yield c
    except BaseException:
        print(c.logs())  # shown by pytest when the test fails
        raise
    finally:
        c.stop()


# -- talking to a cluster ---------------------------------------------------------------------

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")


def r2v_body(*refs: str, seed: int = 7, duration: int = 2) -> dict[str, Any]:
    """A 2 s 720p silent wan2.6-r2v-flash request: the cheapest real render."""
    return {"model": "wan2.6-r2v-flash",
            "input": {"prompt": "character1 waves at the camera.", "reference_urls": list(refs)},
            "parameters": {"size": "1280*720", "duration": duration, "audio": False, "seed": seed}}


def submit_task(base_url: str, body: dict[str, Any], key: str = KEY) -> str:
    r = httpx.post(base_url + SUBMIT, json=body, timeout=30,
                   headers={"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable"})
    assert r.status_code == 200, r.text
    return str(r.json()["output"]["task_id"])


def task_output(base_url: str, task_id: str, key: str = KEY) -> dict[str, Any]:
    r = httpx.get(f"{base_url}/api/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json()["output"])


def wait_terminal(base_url: str, task_ids: list[str], key: str = KEY, timeout: float = 120) -> dict[str, Any]:
    done: dict[str, Any] = {}

    def all_done() -> bool:
        for i in task_ids:
            if i not in done:
                out = task_output(base_url, i, key)
                if out["task_status"] in TERMINAL:
                    done[i] = out
        return len(done) == len(task_ids)

    wait_until(all_done, timeout, f"{len(task_ids)} tasks to end ({len(done)} ended)", interval=0.2)
    return done
