"""The task store: SQLAlchemy over SQLite (WAL, embedded default) or PostgreSQL.

Every state change is a conditional UPDATE (``WHERE status = ...``) so that two workers,
or a worker and a cancel, can never both win.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, delete, event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from openr2v.spec.request import GenerationRequest
from openr2v.spec.task import Status, Task
from openr2v.tasks.schema import LedgerRow, TaskRow, UploadRow

__all__ = ["LedgerEntry", "TaskStore", "migrate"]


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("openr2v") / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


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


def _to_task(row: TaskRow) -> Task:
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
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

    # -- tasks ------------------------------------------------------------------------------

    def create(self, task: Task) -> None:
        with self.session() as s:
            s.add(TaskRow(
                id=task.id, owner=task.owner, region=task.region, model=task.model, dialect=task.dialect,
                status=task.status.value, progress=task.progress, request_json=task.request.model_dump_json(),
                submit_time=task.submit_time, attempts=task.attempts, request_id=task.request_id,
                expires_at=task.expires_at, orig_prompt=task.orig_prompt, actual_prompt=task.actual_prompt,
                plan_json=json.dumps(task.plan) if task.plan is not None else None,
                extra_json=json.dumps(task.extra) if task.extra else None,
            ))

    def get(self, task_id: str) -> Task | None:
        with self.session() as s:
            row = s.get(TaskRow, task_id)
            return _to_task(row) if row else None

    def claim(self, task_id: str, now: float) -> Task | None:
        """PENDING -> RUNNING for one task; None if someone else got it first."""
        with self.session() as s:
            res = s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.status == Status.PENDING.value)
                .values(status=Status.RUNNING.value, scheduled_time=now, attempts=TaskRow.attempts + 1,
                        progress=0)
            )
            if res.rowcount != 1:
                return None
            return _to_task(s.get(TaskRow, task_id))  # type: ignore[arg-type]

    def pending_ids(self, limit: int = 32) -> list[str]:
        with self.session() as s:
            return list(s.scalars(
                select(TaskRow.id).where(TaskRow.status == Status.PENDING.value)
                .order_by(TaskRow.submit_time).limit(limit)))

    def set_progress(self, task_id: str, progress: int) -> None:
        with self.session() as s:
            s.execute(update(TaskRow).where(TaskRow.id == task_id, TaskRow.status == Status.RUNNING.value)
                      .values(progress=progress))

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
        with self.session() as s:
            s.execute(update(TaskRow).where(TaskRow.id == task_id).values(**values))

    def finish(self, task_id: str, status: Status, now: float, *, from_status: tuple[Status, ...],
               code: str | None = None, message: str | None = None, output_key: str | None = None,
               usage: dict[str, Any] | None = None, ledger: LedgerEntry | None = None) -> bool:
        """Move to a terminal status if the task is still in ``from_status``; write the ledger with it."""
        with self.session() as s:
            res = s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.status.in_([f.value for f in from_status]))
                .values(status=status.value, end_time=now, code=code, message=message, output_key=output_key,
                        usage_json=json.dumps(usage) if usage is not None else None,
                        progress=100 if status == Status.SUCCEEDED else TaskRow.progress)
            )
            if res.rowcount != 1:
                return False
            if ledger is not None:
                row = s.get(TaskRow, task_id)
                assert row is not None
                s.add(LedgerRow(task_id=task_id, owner=row.owner, model=row.model,
                                input_seconds=ledger.input_seconds, output_seconds=ledger.output_seconds,
                                billed_seconds=ledger.billed_seconds, cost_usd=ledger.cost_usd, created_at=now))
            return True

    def requeue(self, task_id: str) -> bool:
        with self.session() as s:
            res = s.execute(update(TaskRow).where(TaskRow.id == task_id, TaskRow.status == Status.RUNNING.value)
                            .values(status=Status.PENDING.value, progress=0))
            return res.rowcount == 1

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

    def expired(self, now: float, limit: int = 500) -> list[Task]:
        with self.session() as s:
            rows = s.scalars(select(TaskRow).where(TaskRow.expires_at <= now).limit(limit)).all()
            return [_to_task(r) for r in rows]

    def delete(self, task_ids: list[str]) -> None:
        if task_ids:
            with self.session() as s:
                s.execute(delete(TaskRow).where(TaskRow.id.in_(task_ids)))

    # -- ledger -----------------------------------------------------------------------------

    def ledger_total(self, owner: str) -> dict[str, float]:
        with self.session() as s:
            row = s.execute(select(func.count(), func.coalesce(func.sum(LedgerRow.billed_seconds), 0.0),
                                   func.coalesce(func.sum(LedgerRow.cost_usd), 0.0))
                            .where(LedgerRow.owner == owner)).one()
            return {"tasks": row[0], "billed_seconds": round(row[1], 3), "cost_usd": round(row[2], 4)}

    # -- uploads ----------------------------------------------------------------------------

    def add_upload(self, key: str, owner: str, size: int, content_type: str | None, now: float,
                   expires_at: float) -> None:
        with self.session() as s:
            s.merge(UploadRow(key=key, owner=owner, size_bytes=size, content_type=content_type, created_at=now,
                              expires_at=expires_at))

    def get_upload(self, key: str) -> UploadRow | None:
        with self.session() as s:
            return s.get(UploadRow, key)

    def expired_uploads(self, now: float, limit: int = 500) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(UploadRow.key).where(UploadRow.expires_at <= now).limit(limit)))

    def delete_uploads(self, keys: list[str]) -> None:
        if keys:
            with self.session() as s:
                s.execute(delete(UploadRow).where(UploadRow.key.in_(keys)))
