"""The task store on PostgreSQL (psycopg 3): the same models and Alembic migrations as SQLite."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, inspect, text

from openr2v.config import Settings
from openr2v.domain.request import GenerationRequest
from openr2v.domain.task import Status
from openr2v.errors import QuotaExceeded
from openr2v.storage import LocalStorage
from openr2v.tasks.quotas import Limits, QuotaBook
from openr2v.tasks.service import ServiceConfig, TaskService
from openr2v.tasks.store import LedgerEntry, TaskStore

REQ = GenerationRequest(model="wan2.6-r2v-flash", prompt="character1 waves.", size=(1280, 720), duration=2)


def _service(store: TaskStore, tmp_path: Path) -> TaskService:
    return TaskService(store, LocalStorage(tmp_path / "objects", b"k"), _Queue(),
                       ServiceConfig(max_concurrent_tasks=0, submit_rate_per_second=0))


class _Queue:
    def notify(self, task_id: str) -> None:
        pass


def test_plain_postgres_urls_use_psycopg3() -> None:
    s = Settings(database_url="postgresql://u@h:5432/db")
    assert s.resolved_database_url() == "postgresql+psycopg://u@h:5432/db"
    assert Settings(database_url="postgres://h/db").resolved_database_url() == "postgresql+psycopg://h/db"


def test_migrations_build_the_same_schema_on_both(postgres_db: Any, tmp_path: Path) -> None:
    def schema(url: str) -> dict[str, Any]:
        store = TaskStore(url)
        insp = inspect(store.engine)
        with store.engine.connect() as c:
            version = c.execute(text("SELECT version_num FROM alembic_version")).scalar()
        out = {"version": version,
               "tables": {t: sorted(col["name"] for col in insp.get_columns(t))
                          for t in ("tasks", "ledger", "uploads", "webhook_deliveries", "quota_charges",
                                    "quota_overrides")},
               "indexes": sorted(i["name"] for t in ("tasks", "webhook_deliveries", "quota_charges")
                                 for i in insp.get_indexes(t))}
        store.close()
        return out

    pg = schema(postgres_db.url)
    assert pg == schema(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert pg["version"] == "0004"
    assert {"heartbeat_at", "worker", "queued_at"} <= set(pg["tables"]["tasks"])
    assert {"ix_tasks_status_heartbeat", "ix_webhook_deliveries_state_next",
            "ix_quota_charges_owner_created"} <= set(pg["indexes"])


def test_nodes_starting_together_migrate_once(postgres_db: Any) -> None:
    # Every process migrates at start-up; an advisory lock makes the others wait, not fail.
    with ThreadPoolExecutor(6) as pool:
        stores = list(pool.map(lambda _: TaskStore(postgres_db.url), range(6)))
    assert postgres_db.query("SELECT count(*) FROM alembic_version") == [(1,)]
    for s in stores:
        s.close()


def test_upgrade_from_0001_keeps_tasks_and_reaps_them(store_url: str, tmp_path: Path) -> None:
    url = store_url
    engine = create_engine(url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("openr2v") / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text(
            "INSERT INTO tasks (id, owner, region, model, dialect, status, progress, request_json, submit_time, "
            "scheduled_time, attempts, request_id, expires_at) VALUES ('old', 'o', 'intl', 'wan2.6-r2v-flash', "
            "'dashscope', 'RUNNING', 40, :req, 100, 100, 1, 'r', 9e12)"), {"req": REQ.model_dump_json()})
    engine.dispose()
    store = TaskStore(url)  # migrates to head
    svc = _service(store, tmp_path)
    task = store.get("old")
    assert task is not None and task.status == Status.RUNNING and task.progress == 40
    assert svc.reap()[0] == 1  # no heartbeat yet: its start time stands for the lease
    assert store.get("old").status == Status.PENDING  # type: ignore[union-attr]
    store.close()


def test_quota_reservations_are_atomic_under_contention(store_url: str, tmp_path: Path) -> None:
    store = TaskStore(store_url)
    svc = TaskService(store, LocalStorage(tmp_path / "objects", b"k"), _Queue(),
                      ServiceConfig(max_concurrent_tasks=0, submit_rate_per_second=0),
                      quotas=QuotaBook(store, Limits(seconds_per_day=10), {}))
    outcomes: list[str] = []

    def submit() -> None:
        try:
            svc.submit("owner", "intl", "dashscope", REQ, "rid")  # 2 billed seconds each
            outcomes.append("ok")
        except QuotaExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 5 + ["refused"] * 7
    assert svc.list("owner")[1] == 5  # a refused submit leaves no task behind
    store.close()


def test_upgrade_to_quotas_counts_what_the_ledger_billed(store_url: str) -> None:
    engine = create_engine(store_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("openr2v") / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(text("INSERT INTO ledger (task_id, owner, model, input_seconds, output_seconds, billed_seconds, "
                          "cost_usd, created_at) VALUES ('t1', 'o', 'wan2.6-r2v', 0, 5, 5, 0.5, 100)"))
    engine.dispose()
    store = TaskStore(store_url)
    used = store.quota_totals("o", {"day": 0.0, "month": 0.0, "total": 0.0}, state="used")
    assert used.seconds["total"] == 5 and used.cost_usd["total"] == 0.5 and used.free_seconds == 0
    store.close()


def test_claims_are_atomic_under_contention(postgres_db: Any, tmp_path: Path) -> None:
    store = TaskStore(postgres_db.url)
    svc = _service(store, tmp_path)
    ids = [svc.submit(f"owner{i % 3}", "intl", "dashscope", REQ, "rid").id for i in range(40)]
    won: list[tuple[str, str]] = []
    lock = threading.Lock()

    def worker(name: str) -> Callable[[], None]:
        def run() -> None:
            for task_id in ids:
                if svc.claim(task_id, name) is not None:
                    with lock:
                        won.append((task_id, name))
        return run

    threads = [threading.Thread(target=worker(f"w{i}")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i for i, _ in won) == sorted(ids)  # each task claimed exactly once
    rows = postgres_db.query("SELECT status, attempts, worker IS NOT NULL, heartbeat_at IS NOT NULL FROM tasks")
    assert set(rows) == {("RUNNING", 1, True, True)}
    store.close()


def test_service_round_trip_on_postgres(postgres_db: Any, tmp_path: Path) -> None:
    store = TaskStore(postgres_db.url)
    svc = _service(store, tmp_path)
    done = svc.submit("o", "intl", "dashscope", REQ, "rid")
    failed = svc.submit("o", "intl", "dashscope", REQ, "rid")
    pending = svc.submit("o", "intl", "dashscope", REQ, "rid")
    for t in (done, failed):
        svc.claim(t.id, "w")
    assert svc.succeed(done.id, "outputs/x.mp4", {"duration": 2}, LedgerEntry(done.id, 0.5, 2, 2.5, 0.25), 1)
    assert not svc.succeed(done.id, "outputs/x.mp4", {"duration": 2}, LedgerEntry(done.id, 0.5, 2, 2.5, 0.25), 1)
    assert svc.fail(failed.id, "InternalError", "boom", 1)
    assert svc.cancel("o", pending.id).status == Status.CANCELED
    tasks, total = svc.list("o", page_size=10)
    assert total == 3 and {t.status for t in tasks} == {Status.SUCCEEDED, Status.FAILED, Status.CANCELED}
    assert svc.list("o", status="SUCCEEDED")[1] == 1
    assert store.ledger_total("o") == {"tasks": 1, "billed_seconds": 2.5, "cost_usd": 0.25}
    store.add_upload("k/a.png", "o", 10, "image/png", 1.0, 2.0)
    store.add_upload("k/a.png", "o", 12, "image/png", 1.0, 2.0)  # merge: the same key again
    assert store.get_upload("k/a.png").size_bytes == 12  # type: ignore[union-attr]
    assert store.expired_uploads(3.0) == ["k/a.png"]
    store.close()


def test_keyset_pages_walk_every_task_once_in_order(store_url: str, tmp_path: Path) -> None:
    url = store_url
    store = TaskStore(url)
    clock = iter([100.0, 100.0, 100.0, 101.0, 102.0, 102.0, 103.0]).__next__  # ties share a submit_time
    svc = TaskService(store, LocalStorage(tmp_path / "objects", b"k"), _Queue(),
                      ServiceConfig(max_concurrent_tasks=0, submit_rate_per_second=0), clock=lambda: clock())
    ids = [svc.submit("o", "intl", "dashscope", REQ, "rid").id for _ in range(7)]
    other = TaskService(store, LocalStorage(tmp_path / "objects", b"k"), _Queue(),
                              ServiceConfig(max_concurrent_tasks=0, submit_rate_per_second=0), clock=lambda: 100.5)
    other.submit("p", "intl", "dashscope", REQ, "rid")
    expected = sorted((store.get(i).submit_time, i) for i in ids)  # type: ignore[union-attr]
    for descending in (False, True):
        want = [i for _t, i in (reversed(expected) if descending else expected)]
        seen: list[str] = []
        mark = None
        while True:
            page = store.page_after("o", after=mark, limit=3, descending=descending, now=50.0)
            seen += [t.id for t in page]
            if len(page) < 3:
                break
            mark = (page[-1].submit_time, page[-1].id)
        assert seen == want
    assert store.page_after("o", after=None, limit=10, descending=False, now=1e13) == []  # all expired
    store.close()
