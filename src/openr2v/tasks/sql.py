"""Prebuilt Core statements for the store's hot paths (polls, claims, progress, leases, endings).

Built once with bound parameters: SQLAlchemy then reuses each statement's compiled form and cache
key instead of rebuilding and hashing a new statement on every call, which was a large share of
a poll's and a task's CPU. Bound names start with ``p_`` so they never clash with column names.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import Delete, Insert, Select, Table, Update, bindparam, case, delete, func, insert, select, update

from openr2v.domain.task import Status
from openr2v.tasks.schema import LedgerRow, QuotaChargeRow, TaskRow

__all__ = ["CHARGE", "CLAIM", "CREATE", "GET", "HEARTBEAT", "LEDGER", "RELEASE", "STATUS", "TASKS", "finish",
           "lease_time", "progress", "quota_totals"]

TASKS = cast(Table, TaskRow.__table__)
_c = TASKS.c

# When a RUNNING task's lease was last renewed (rows from before migration 0002: when it started).
lease_time = func.coalesce(_c.heartbeat_at, _c.scheduled_time, _c.submit_time)

GET: Select[Any] = select(TASKS).where(_c.id == bindparam("p_id"))
STATUS: Select[Any] = select(_c.status).where(_c.id == bindparam("p_id"))

CLAIM: Update = (
    update(TASKS)
    .where(_c.id == bindparam("p_id"), _c.status == Status.PENDING.value)
    .values(status=Status.RUNNING.value, scheduled_time=bindparam("p_now"), attempts=_c.attempts + 1,
            progress=0, heartbeat_at=bindparam("p_now"), worker=bindparam("p_worker"))
    .returning(*TASKS.c)
)

HEARTBEAT: Update = (
    update(TASKS)
    .where(_c.id == bindparam("p_id"), _c.status == Status.RUNNING.value, _c.attempts == bindparam("p_attempt"))
    .values(heartbeat_at=bindparam("p_now"))
)

CREATE: Insert = insert(TASKS)
LEDGER: Insert = insert(cast(Table, LedgerRow.__table__))

CHARGES = cast(Table, QuotaChargeRow.__table__)
CHARGE: Insert = insert(CHARGES)
# A reservation goes back to its key (the task FAILED, was CANCELED or deleted); usage stays.
RELEASE: Delete = delete(CHARGES).where(CHARGES.c.task_id.in_(bindparam("p_ids", expanding=True)),
                                        CHARGES.c.state == "reserved")


@functools.cache
def quota_totals(by_state: bool) -> Select[Any]:
    """One key's free seconds, then billed seconds and charged cost in its day, month and all time."""
    c = CHARGES.c

    def since(column: Any, start: str | None) -> Any:
        value = column if start is None else case((c.created_at >= bindparam(start), column), else_=0.0)
        return func.coalesce(func.sum(value), 0.0)

    conds = [c.owner == bindparam("p_owner"), c.created_at >= bindparam("p_since")]  # (owner, created_at) index
    if by_state:
        conds.append(c.state == bindparam("p_state"))
    return select(since(c.free_seconds, None),
                  *(since(c.billed_seconds, s) for s in ("p_day", "p_month", None)),
                  *(since(c.cost_usd, s) for s in ("p_day", "p_month", None))).where(*conds)


@functools.cache
def progress(fenced: bool) -> Update:
    conds = [_c.id == bindparam("p_id"), _c.status == Status.RUNNING.value]
    if fenced:
        conds.append(_c.attempts == bindparam("p_attempt"))
    return update(TASKS).where(*conds).values(progress=bindparam("p_progress"))


@functools.cache
def finish(from_status: tuple[Status, ...], fenced: bool, stale: bool, succeeded: bool) -> Update:
    """status -> a terminal one, returning the row it moved (none if it did not)."""
    conds = [_c.id == bindparam("p_id"), _c.status.in_([s.value for s in from_status])]
    if fenced:
        conds.append(_c.attempts == bindparam("p_attempt"))
    if stale:
        conds.append(lease_time < bindparam("p_stale_before"))
    return (
        update(TASKS).where(*conds)
        .values(status=bindparam("p_status"), end_time=bindparam("p_now"), code=bindparam("p_code"),
                message=bindparam("p_message"), output_key=bindparam("p_output_key"),
                usage_json=bindparam("p_usage_json"), progress=100 if succeeded else _c.progress)
        .returning(*TASKS.c)
    )
