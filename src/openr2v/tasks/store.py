"""The task store: SQLAlchemy over SQLite (WAL, embedded default) or PostgreSQL.

Every state change is a conditional UPDATE (``WHERE status = ...``) so that two workers,
or a worker and a cancel, can never both win. A worker's writes are also fenced by its attempt
number (``attempts`` counts claims): once a lost worker's task is re-queued and claimed again,
the old worker can no longer move it. A RUNNING task carries a lease (``heartbeat_at``) that its
worker renews; the reaper (see ``TaskService.reap``) takes back tasks whose lease ran out.

Each status change of a task that asks for webhooks also writes its outbox row (tasks/outbox.py)
in the same transaction: the change and its announcement are committed together or not at all.
"""

from __future__ import annotations

import builtins
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, Row, and_, create_engine, delete, event, func, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from openr2v import metrics
from openr2v.domain.request import GenerationRequest
from openr2v.domain.task import Status, Task
from openr2v.tasks import sql
from openr2v.tasks.outbox import INSERT as OUTBOX_INSERT
from openr2v.tasks.outbox import Outbox
from openr2v.tasks.quotas import WINDOWS, Admission, Charge, Totals, window_starts
from openr2v.tasks.schema import LedgerRow, QuotaChargeRow, QuotaOverrideRow, TaskRow, UploadRow

__all__ = ["LedgerEntry", "StoreStats", "TaskStore", "migrate"]


# pg_advisory_xact_lock key of the migration ("openr2v" in ASCII).
MIGRATION_LOCK = 0x6F70656E723276


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("openr2v") / "migrations"))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # API nodes and workers may start together on a new database: one migrates (DDL is
            # transactional there), the others wait for the lock and then find the schema at head.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _owner_lock(owner: str) -> int:
    """A key's pg_advisory_xact_lock number: its owner id (hex) folded into a signed 64-bit integer."""
    try:
        return int(owner[:15], 16)
    except ValueError:
        return int.from_bytes(owner.encode()[:7].ljust(7, b"\0"), "big")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


@dataclass(frozen=True)
class LedgerEntry:
    task_id: str
    input_seconds: float
    output_seconds: float
    billed_seconds: float
    cost_usd: float


@dataclass(frozen=True)
class StoreStats:
    counts: dict[tuple[str, str], int]  # (status, model) -> tasks
    pending: int
    oldest_pending_age: float


def _to_task(row: TaskRow | Row[Any]) -> Task:
    return Task(
        id=row.id, owner=row.owner, region=row.region, model=row.model, dialect=row.dialect,
        request=GenerationRequest.model_validate_json(row.request_json), status=Status(row.status),
        progress=row.progress, submit_time=row.submit_time, scheduled_time=row.scheduled_time,
        end_time=row.end_time, code=row.code, message=row.message, output_key=row.output_key,
        usage=json.loads(row.usage_json) if row.usage_json else None, orig_prompt=row.orig_prompt,
        actual_prompt=row.actual_prompt, plan=json.loads(row.plan_json) if row.plan_json else None,
        attempts=row.attempts, request_id=row.request_id, expires_at=row.expires_at,
        extra=json.loads(row.extra_json) if row.extra_json else {},
    )


class TaskStore:
    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if ":memory:" not in url:
                # Room for every request and worker thread: a connection beyond the pool is opened
                # (and its PRAGMAs run) for each use, which shows in request latency.
                kwargs.update(pool_size=32, max_overflow=32)
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine = create_engine(url, **kwargs)
        self._postgres = self.engine.dialect.name == "postgresql"
        # A primary-key read of a local SQLite file (WAL: readers never wait for the writer) costs less
        # than the thread hop that would keep it off the event loop; a network database keeps the hop.
        self.reads_inline = self.engine.dialect.name == "sqlite"
        # SQLite has one writer at a time; a writer that finds the file locked sleeps in SQLite's busy
        # handler (1, 2, 5, 10 ... 100 ms steps), which showed as 50-80 ms submits beside the render
        # threads' writes (bench/load.py). This process's writers queue on a lock instead, woken at once.
        self._writing: AbstractContextManager[object] = (
            threading.RLock() if self.reads_inline else nullcontext())
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        migrate(self.engine)
        self.outbox = Outbox(self.engine, self.begin)
        # The outbox row a status change writes (None: the task wants no webhook), and who to wake
        # once it is committed; set by the runtime (tasks/webhooks.py).
        self.announce: Callable[[Task], dict[str, Any] | None] | None = None
        self.on_announced: Callable[[], None] | None = None

    def _announce(self, conn: Connection, task: Task) -> bool:
        values = self.announce(task) if self.announce is not None else None
        if values is not None:
            conn.execute(OUTBOX_INSERT, values)
        return values is not None

    def _changed(self, task: Task | None, written: bool) -> None:
        """After the commit of a status change: count it, and wake the dispatcher if it wrote an outbox row."""
        if task is not None:
            metrics.STATUS_CHANGES.labels(task.status.value, task.model).inc()
        if written and self.on_announced is not None:
            self.on_announced()

    # Hot paths (claims, leases, progress, status changes, polls) run Core statements on a
    # connection; the ORM session serves the rest.

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._writing, self._sessions.begin() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

    def _no_fsync(self, conn: Connection) -> None:
        """Progress and lease renewals need not wait for the disk: losing the last one in a crash only
        makes a progress figure or a lease a few seconds older (PostgreSQL; SQLite WAL already waits
        for no fsync at commit)."""
        if self._postgres:
            conn.execute(text("SET LOCAL synchronous_commit TO OFF"))

    # -- tasks ------------------------------------------------------------------------------

    def create(self, task: Task, charge: Charge | Admission | None = None) -> None:
        """Insert the task with its quota charge, in one transaction: a ``Charge`` as it is (a key without
        limits), or the one an ``Admission`` makes of the key's totals, under a per-key lock so that
        concurrent submits see each other's reservations."""
        admit = charge if isinstance(charge, Admission) else None
        with self.begin() as conn:
            if admit is not None and self._postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _owner_lock(task.owner)})
            # On SQLite the first write (the outbox's, or the task's) takes the database's write lock until
            # commit: the same effect.
            written = self._announce(conn, task)
            conn.execute(sql.CREATE, dict(
                id=task.id, owner=task.owner, region=task.region, model=task.model, dialect=task.dialect,
                status=task.status.value, progress=task.progress, request_json=task.request.model_dump_json(),
                submit_time=task.submit_time, attempts=task.attempts, request_id=task.request_id,
                expires_at=task.expires_at, orig_prompt=task.orig_prompt, actual_prompt=task.actual_prompt,
                plan_json=json.dumps(task.plan) if task.plan is not None else None,
                extra_json=json.dumps(task.extra) if task.extra else None, queued_at=task.submit_time,
            ))
            if admit is not None:
                starts = window_starts(task.submit_time)
                charge = admit(self._quota_totals(conn, task.owner, starts, since=starts[admit.horizon()]))
            if isinstance(charge, Charge):
                conn.execute(sql.CHARGE, dict(
                    task_id=task.id, owner=task.owner, state="reserved", billed_seconds=charge.billed_seconds,
                    free_seconds=charge.free_seconds, cost_usd=charge.cost_usd, created_at=task.submit_time))
        self._changed(task, written)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction (behind this process's SQLite write lock)."""
        with self._writing, self.engine.begin() as conn:
            yield conn

    def get(self, task_id: str) -> Task | None:
        # The hottest read (every poll): a Core SELECT, without the ORM's unit of work.
        with self.engine.connect() as conn:
            row = conn.execute(sql.GET, {"p_id": task_id}).first()
        return _to_task(row) if row else None

    def status(self, task_id: str) -> Status | None:
        """Only the status (workers ask it between stages: is the task canceled?)."""
        with self.engine.connect() as conn:
            value = conn.execute(sql.STATUS, {"p_id": task_id}).scalar()
        return Status(value) if value is not None else None

    def claim(self, task_id: str, now: float, worker: str = "") -> Task | None:
        """PENDING -> RUNNING for one task, with a fresh lease; None if someone else got it first."""
        with self.begin() as conn:
            row = conn.execute(sql.CLAIM, {"p_id": task_id, "p_now": now, "p_worker": worker[:128] or None}).first()
            task = _to_task(row) if row is not None else None
            written = task is not None and self._announce(conn, task)
        self._changed(task, written)
        return task

    def heartbeat(self, task_ids: dict[str, int], now: float) -> set[str]:
        """Renew the leases of ``{task_id: attempt}``; returns the ids whose lease is no longer ours."""
        kept: set[str] = set()
        with self.begin() as s:
            self._no_fsync(s)
            for task_id, attempt in task_ids.items():
                res = s.execute(sql.HEARTBEAT, {"p_id": task_id, "p_attempt": attempt, "p_now": now})
                if res.rowcount == 1:
                    kept.add(task_id)
        return set(task_ids) - kept

    def stale_running(self, before: float, limit: int = 500, task_id: str | None = None) -> list[tuple[str, int]]:
        """(id, attempts) of RUNNING tasks whose lease was last renewed before ``before``."""
        conds = [TaskRow.status == Status.RUNNING.value, sql.lease_time < before]
        if task_id is not None:
            conds.append(TaskRow.id == task_id)
        with self.begin() as s:
            return [(r[0], r[1]) for r in s.execute(
                select(TaskRow.id, TaskRow.attempts).where(*conds).limit(limit)).all()]

    def stale_pending(self, before: float, now: float, limit: int = 500) -> list[str]:
        """PENDING tasks last published before ``before``, oldest first; marks them published at ``now``
        so that the next look moves on to others (and several reapers split the work)."""
        with self.begin() as s:
            ids = list(s.scalars(
                select(TaskRow.id).where(TaskRow.status == Status.PENDING.value,
                                         func.coalesce(TaskRow.queued_at, TaskRow.submit_time) < before)
                .order_by(TaskRow.submit_time).limit(limit)))
            if ids:
                s.execute(update(TaskRow).where(TaskRow.id.in_(ids), TaskRow.status == Status.PENDING.value)
                          .values(queued_at=now))
            return ids

    def pending_ids(self, limit: int = 32) -> list[str]:
        with self.begin() as s:
            return list(s.scalars(
                select(TaskRow.id).where(TaskRow.status == Status.PENDING.value)
                .order_by(TaskRow.submit_time).limit(limit)))

    def set_progress(self, task_id: str, progress: int, attempt: int | None = None) -> None:
        with self.begin() as s:
            self._no_fsync(s)
            s.execute(sql.progress(attempt is not None), {"p_id": task_id, "p_progress": progress,
                                                          "p_attempt": attempt})

    def update_fields(self, task_id: str, **fields: Any) -> None:
        """Non-status fields: size decisions, plan, prompts, engine state."""
        values: dict[str, Any] = {}
        for k, v in fields.items():
            if k in ("plan", "usage", "extra"):
                values[f"{k}_json"] = json.dumps(v) if v is not None else None
            elif k == "request":
                values["request_json"] = v.model_dump_json()
            else:
                values[k] = v
        with self.begin() as s:
            s.execute(update(TaskRow).where(TaskRow.id == task_id).values(**values))

    def finish(self, task_id: str, status: Status, now: float, *, from_status: tuple[Status, ...],
               code: str | None = None, message: str | None = None, output_key: str | None = None,
               usage: dict[str, Any] | None = None, ledger: LedgerEntry | None = None,
               attempt: int | None = None, stale_before: float | None = None) -> bool:
        """Move to a terminal status if the task is still in ``from_status``; write the ledger with it.

        ``attempt``: only if the task is still in that attempt (a worker's fence); ``stale_before``:
        only if its lease was last renewed before then (the reaper's condition)."""
        statement = sql.finish(tuple(from_status), attempt is not None, stale_before is not None,
                               status == Status.SUCCEEDED)
        with self.begin() as s:
            res = s.execute(statement, {
                "p_id": task_id, "p_attempt": attempt, "p_stale_before": stale_before, "p_status": status.value,
                "p_now": now, "p_code": code, "p_message": message, "p_output_key": output_key,
                "p_usage_json": json.dumps(usage) if usage is not None else None})
            row = res.first()
            if row is None:
                return False
            if ledger is not None:  # in the same transaction as the status: billed if and only if SUCCEEDED
                s.execute(sql.LEDGER, {
                    "task_id": task_id, "owner": row.owner, "model": row.model, "input_seconds": ledger.input_seconds,
                    "output_seconds": ledger.output_seconds, "billed_seconds": ledger.billed_seconds,
                    "cost_usd": ledger.cost_usd, "created_at": now})
                self._use_charge(s, task_id, row.owner, ledger, now)
            else:  # FAILED or CANCELED: the reservation goes back to the key
                s.execute(sql.RELEASE, {"p_ids": [task_id]})
            task = _to_task(row)
            written = self._announce(s, task)
        self._changed(task, written)
        if ledger is not None:
            metrics.BILLED_SECONDS.labels(task.model).inc(ledger.billed_seconds)
        return True

    def requeue(self, task_id: str, now: float | None = None, stale_before: float | None = None) -> bool:
        """RUNNING -> PENDING (a lost worker's task); with ``stale_before``, only if its lease is stale."""
        conds = [TaskRow.id == task_id, TaskRow.status == Status.RUNNING.value]
        if stale_before is not None:
            conds.append(sql.lease_time < stale_before)
        with self.begin() as s:
            row = s.execute(update(sql.TASKS).where(*conds).values(
                status=Status.PENDING.value, progress=0, heartbeat_at=None, worker=None, queued_at=now)
                .returning(*sql.TASKS.c)).first()
            task = _to_task(row) if row is not None else None
            written = task is not None and self._announce(s, task)
        self._changed(task, written)
        return task is not None

    def running_ids(self) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(TaskRow.id).where(TaskRow.status == Status.RUNNING.value)))

    def count_active(self, owner: str) -> int:
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(TaskRow).where(
                TaskRow.owner == owner,
                TaskRow.status.in_([Status.PENDING.value, Status.RUNNING.value]))) or 0

    def list(self, owner: str, *, start: float | None = None, end: float | None = None,
             model: str | None = None, status: str | None = None, page_no: int = 1,
             page_size: int = 10, now: float | None = None) -> tuple[list[Task], int]:
        conds = [TaskRow.owner == owner]
        if now is not None:
            conds.append(TaskRow.expires_at > now)
        if start is not None:
            conds.append(TaskRow.submit_time >= start)
        if end is not None:
            conds.append(TaskRow.submit_time <= end)
        if model:
            conds.append(TaskRow.model == model)
        if status:
            conds.append(TaskRow.status == status)
        with self.session() as s:
            total = s.scalar(select(func.count()).select_from(TaskRow).where(*conds)) or 0
            rows = s.scalars(select(TaskRow).where(*conds).order_by(TaskRow.submit_time.desc(), TaskRow.id)
                             .offset((page_no - 1) * page_size).limit(page_size)).all()
            return [_to_task(r) for r in rows], total

    def page_after(self, owner: str, *, after: tuple[float, str] | None, limit: int, descending: bool,
                   now: float) -> builtins.list[Task]:
        """Up to ``limit`` live tasks of ``owner`` in (submit_time, id) order, strictly past the
        ``after`` mark: a keyset page, so a cursor costs one indexed query however many tasks exist."""
        conds = [TaskRow.owner == owner, TaskRow.expires_at > now]
        if after is not None:
            t, tid = after
            if descending:
                conds.append(or_(TaskRow.submit_time < t, and_(TaskRow.submit_time == t, TaskRow.id < tid)))
            else:
                conds.append(or_(TaskRow.submit_time > t, and_(TaskRow.submit_time == t, TaskRow.id > tid)))
        order = (TaskRow.submit_time.desc(), TaskRow.id.desc()) if descending else (TaskRow.submit_time, TaskRow.id)
        with self.session() as s:
            rows = s.scalars(select(TaskRow).where(*conds).order_by(*order).limit(limit)).all()
            return [_to_task(r) for r in rows]

    def expired(self, now: float, limit: int = 500) -> builtins.list[Task]:
        with self.session() as s:
            rows = s.scalars(select(TaskRow).where(TaskRow.expires_at <= now).limit(limit)).all()
            return [_to_task(r) for r in rows]

    def delete(self, task_ids: builtins.list[str]) -> None:
        if task_ids:
            with self.session() as s:
                s.execute(delete(TaskRow).where(TaskRow.id.in_(task_ids)))
                s.execute(sql.RELEASE, {"p_ids": task_ids})  # a task deleted unfinished bills nothing
                self.outbox.delete_for(s, task_ids)

    # -- ledger -----------------------------------------------------------------------------

    def ledger_total(self, owner: str) -> dict[str, float]:
        with self.session() as s:
            row = s.execute(select(func.count(), func.coalesce(func.sum(LedgerRow.billed_seconds), 0.0),
                                   func.coalesce(func.sum(LedgerRow.cost_usd), 0.0))
                            .where(LedgerRow.owner == owner)).one()
            return {"tasks": row[0], "billed_seconds": round(row[1], 3), "cost_usd": round(row[2], 4)}

    # -- quotas -----------------------------------------------------------------------------

    def _use_charge(self, conn: Connection, task_id: str, owner: str, ledger: LedgerEntry, now: float) -> None:
        """The reservation becomes usage at the measured bill; the free seconds it held cover what they can."""
        held = conn.execute(select(QuotaChargeRow.free_seconds).where(QuotaChargeRow.task_id == task_id)).scalar()
        billed = ledger.billed_seconds
        free = min(billed, held or 0.0)
        cost = round(ledger.cost_usd * (billed - free) / billed, 4) if billed > 0 else 0.0
        values = dict(state="used", billed_seconds=billed, free_seconds=free, cost_usd=cost)
        if held is None:  # a task submitted before quotas existed
            conn.execute(sql.CHARGE, dict(task_id=task_id, owner=owner, created_at=now, **values))
        else:
            conn.execute(update(QuotaChargeRow).where(QuotaChargeRow.task_id == task_id).values(**values))

    def _quota_totals(self, conn: Connection, owner: str, starts: dict[str, float], state: str | None = None,
                      since: float = 0.0) -> Totals:
        """Sums over the key's charges created at or after ``since`` (windows older than it read short)."""
        row = conn.execute(sql.quota_totals(state is not None),
                           {"p_owner": owner, "p_state": state, "p_day": starts["day"],
                            "p_month": starts["month"], "p_since": since}).one()
        return Totals(free_seconds=float(row[0]), seconds=dict(zip(WINDOWS, map(float, row[1:4]), strict=True)),
                      cost_usd=dict(zip(WINDOWS, map(float, row[4:7]), strict=True)))

    def quota_totals(self, owner: str, starts: dict[str, float], state: str | None = None) -> Totals:
        """A key's charges (``state``: only reserved or only used ones) in the windows starting at ``starts``."""
        with self.engine.connect() as conn:
            return self._quota_totals(conn, owner, starts, state)

    def quota_override(self, owner: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(QuotaOverrideRow.limits_json).where(QuotaOverrideRow.owner == owner)).scalar()
        return json.loads(value) if value is not None else None

    def set_quota_override(self, owner: str, limits: dict[str, Any], now: float) -> None:
        with self.session() as s:
            s.merge(QuotaOverrideRow(owner=owner, limits_json=json.dumps(limits), updated_at=now))

    def delete_quota_override(self, owner: str) -> bool:
        with self.session() as s:
            return s.execute(delete(QuotaOverrideRow).where(QuotaOverrideRow.owner == owner)).rowcount == 1  # type: ignore[attr-defined]

    # -- uploads ----------------------------------------------------------------------------

    def add_upload(self, key: str, owner: str, size: int, content_type: str | None, now: float,
                   expires_at: float) -> None:
        with self.session() as s:
            s.merge(UploadRow(key=key, owner=owner, size_bytes=size, content_type=content_type, created_at=now,
                              expires_at=expires_at))

    def get_upload(self, key: str) -> UploadRow | None:
        with self.session() as s:
            return s.get(UploadRow, key)

    def expired_uploads(self, now: float, limit: int = 500) -> builtins.list[str]:
        with self.session() as s:
            return list(s.scalars(select(UploadRow.key).where(UploadRow.expires_at <= now).limit(limit)))

    def delete_uploads(self, keys: builtins.list[str]) -> None:
        if keys:
            with self.session() as s:
                s.execute(delete(UploadRow).where(UploadRow.key.in_(keys)))

    # -- figures for /metrics ---------------------------------------------------------------

    def stats(self, now: float) -> StoreStats:
        with self.engine.connect() as conn:
            counts = {(r[0], r[1]): int(r[2]) for r in conn.execute(
                select(TaskRow.status, TaskRow.model, func.count()).group_by(TaskRow.status, TaskRow.model))}
            oldest = conn.execute(select(func.min(TaskRow.submit_time))
                                  .where(TaskRow.status == Status.PENDING.value)).scalar()
        pending = sum(n for (status, _), n in counts.items() if status == Status.PENDING.value)
        return StoreStats(counts, pending, max(0.0, now - oldest) if oldest is not None else 0.0)
