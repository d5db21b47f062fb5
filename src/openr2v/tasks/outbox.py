"""The webhook outbox in the task store: rows written with the status changes, claimed under a lease.

    pending ──claim (lease, attempts+1)──► sent ──2xx──► delivered
       ▲                                        └─fail─► pending again at now + backoff,
       │                                                 or dead after the last attempt
       └────────── redeliver (its owner) ◄──── dead

A claim is a conditional UPDATE (still pending, lease free or run out), so two nodes never hold
the same attempt; a settle is fenced by the attempt number, so a sender whose lease ran out can
no longer move the row. Only the oldest pending event of a task is claimable: a later event
waits until the earlier one is delivered or dead.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import aliased

from openr2v.tasks.schema import DeliveryRow

__all__ = ["DEAD", "DELIVERED", "PENDING", "Delivery", "Outbox", "new_delivery"]

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"

_T = cast(Table, DeliveryRow.__table__)
_c = _T.c
INSERT = insert(_T)


@dataclass(frozen=True)
class Delivery:
    seq: int
    id: str
    task_id: str
    owner: str
    url: str
    event: str
    body: str
    state: str
    attempts: int
    next_attempt_at: float
    created_at: float
    finished_at: float | None
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        """What its owner sees (the list endpoint)."""
        return {"webhook_id": self.id, "task_id": self.task_id, "event": self.event, "url": self.url,
                "state": self.state, "attempts": self.attempts, "created_at": self.created_at,
                "finished_at": self.finished_at, "next_attempt_at": self.next_attempt_at if self.state == PENDING
                else None, "last_error": self.last_error}


def _delivery(row: Any) -> Delivery:
    return Delivery(seq=row.seq, id=row.id, task_id=row.task_id, owner=row.owner, url=row.url, event=row.event,
                    body=row.body, state=row.state, attempts=row.attempts, next_attempt_at=row.next_attempt_at,
                    created_at=row.created_at, finished_at=row.finished_at, last_error=row.last_error)


def new_delivery(task_id: str, owner: str, url: str, event: str, body: str, now: float) -> dict[str, Any]:
    """The values of a new outbox row (inserted by the store in the status change's transaction)."""
    return dict(id=f"msg_{uuid.uuid4().hex}", task_id=task_id, owner=owner, url=url, event=event, body=body,
                state=PENDING, attempts=0, next_attempt_at=now, lease_until=None, created_at=now)


_earlier = aliased(DeliveryRow)
_DUE = (
    select(_c.seq)
    .where(_c.state == PENDING, _c.next_attempt_at <= bindparam("p_now"),
           or_(_c.lease_until.is_(None), _c.lease_until < bindparam("p_now")),
           ~select(_earlier.seq).where(_earlier.task_id == _c.task_id, _earlier.state == PENDING,
                                       _earlier.seq < _c.seq).exists())
    .order_by(_c.seq).limit(bindparam("p_limit"))
)
_CLAIM = (
    update(_T)
    .where(_c.seq == bindparam("p_seq"), _c.state == PENDING,
           or_(_c.lease_until.is_(None), _c.lease_until < bindparam("p_now")))
    .values(lease_until=bindparam("p_lease_until"), attempts=_c.attempts + 1)
    .returning(*_c)
)
_SETTLE = (
    update(_T)
    .where(_c.seq == bindparam("p_seq"), _c.attempts == bindparam("p_attempt"), _c.state == PENDING)
    .values(state=bindparam("p_state"), next_attempt_at=bindparam("p_next"), finished_at=bindparam("p_finished"),
            lease_until=None, last_error=bindparam("p_error"))
)


class Outbox:
    def __init__(self, engine: Engine, begin: Callable[[], AbstractContextManager[Connection]] | None = None) -> None:
        self.engine = engine
        self.begin = begin or engine.begin  # the store's write transactions (its SQLite write lock)

    def claim_due(self, now: float, lease_seconds: float, limit: int = 4) -> Delivery | None:
        """One due delivery, leased to the caller until ``now + lease_seconds``; None if none is due."""
        with self.begin() as conn:
            candidates: list[int] = list(conn.execute(_DUE, {"p_now": now, "p_limit": limit}).scalars())
        for seq in candidates:  # another node may win a candidate: try the next
            with self.begin() as conn:
                row = conn.execute(_CLAIM, {"p_seq": seq, "p_now": now,
                                            "p_lease_until": now + lease_seconds}).first()
            if row is not None:
                return _delivery(row)
        return None

    def settle(self, d: Delivery, now: float, *, state: str, next_attempt_at: float | None = None,
               error: str | None = None) -> bool:
        """Record the outcome of attempt ``d.attempts``; False if that attempt is no longer the row's."""
        with self.begin() as conn:
            res = conn.execute(_SETTLE, {
                "p_seq": d.seq, "p_attempt": d.attempts, "p_state": state,
                "p_next": next_attempt_at if next_attempt_at is not None else d.next_attempt_at,
                "p_finished": None if state == PENDING else now, "p_error": error})
            return res.rowcount == 1

    def get(self, delivery_id: str) -> Delivery | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_T).where(_c.id == delivery_id)).first()
        return _delivery(row) if row is not None else None

    def list(self, owner: str, *, state: str | None = None, task_id: str | None = None,
             limit: int = 100) -> builtins.list[Delivery]:
        conds = [_c.owner == owner]
        if state:
            conds.append(_c.state == state)
        if task_id:
            conds.append(_c.task_id == task_id)
        with self.engine.connect() as conn:
            rows = conn.execute(select(_T).where(and_(*conds)).order_by(_c.seq).limit(limit)).all()
        return [_delivery(r) for r in rows]

    def redeliver(self, owner: str, delivery_id: str, now: float) -> Delivery | None:
        """A dead delivery of ``owner`` pending again, with a full round of attempts; None if there is none."""
        with self.begin() as conn:
            row = conn.execute(
                update(_T).where(_c.id == delivery_id, _c.owner == owner, _c.state == DEAD)
                .values(state=PENDING, attempts=0, next_attempt_at=now, lease_until=None, finished_at=None)
                .returning(*_c)).first()
        return _delivery(row) if row is not None else None

    def counts(self) -> dict[str, int]:
        """Rows by state (for /metrics)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(_c.state, func.count()).group_by(_c.state)).all()
            return {str(row[0]): int(row[1]) for row in rows}

    def delete_for(self, conn: Any, task_ids: builtins.list[str]) -> None:
        conn.execute(_T.delete().where(_c.task_id.in_(task_ids)))
