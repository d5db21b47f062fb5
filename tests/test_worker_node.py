"""``openr2v worker``: the command's checks, and a broker-less worker that polls the shared store."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from openr2v.cli import app
from tests.helpers import run_server
from tests.helpers import test_settings as settings_for
from tests.services import SLEEP_ENGINE, cluster, cluster_env, r2v_body, submit_task, wait_terminal


def test_worker_refuses_bad_options() -> None:
    r = CliRunner().invoke(app, ["worker", "--pool", "prefork"])
    assert r.exit_code == 2 and "threads, solo" in r.output
    assert CliRunner().invoke(app, ["worker", "--concurrency", "0"]).exit_code == 2


def test_a_local_queue_worker_takes_tasks_from_the_store(tmp_path: Path, file_server: str) -> None:
    data = tmp_path / "data"  # one machine: the API node (no render threads) and a worker share it
    with run_server(settings_for(data, render_threads=0)) as srv, \
            cluster(tmp_path / "procs", cluster_env(db=None, redis=None, OPENR2V_QUEUE="local",
                                                    OPENR2V_ENGINE=SLEEP_ENGINE)) as c:
        ids = [submit_task(srv.url, r2v_body(f"{file_server}/object.png")) for _ in range(3)]
        worker = c.worker(concurrency=2, data_dir=data)
        done = wait_terminal(srv.url, ids, timeout=60)
        assert {o["task_status"] for o in done.values()} == {"SUCCEEDED"}
        store = srv.app.state.runtime.store  # type: ignore[attr-defined]
        with store.engine.connect() as conn:
            workers = {r[0] for r in conn.execute(text("SELECT worker FROM tasks"))}
        [only] = workers
        assert only.endswith(f":{worker.pid}")  # the worker process, not the API node, rendered them
