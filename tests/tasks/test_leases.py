"""Worker leases and the reaper, on SQLite and PostgreSQL, with a fake clock and a recording queue."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from openr2v.domain.request import GenerationRequest
from openr2v.domain.task import Status
from openr2v.storage import LocalStorage
from openr2v.tasks.service import ServiceConfig, TaskService
from openr2v.tasks.store import LedgerEntry, TaskStore

LEASE = 60.0
REQ = GenerationRequest(model="wan2.6-r2v-flash", prompt="p", size=(1280, 720), duration=2)


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


class BrokerQueue:
    """Records wake-ups; ``held`` is what the broker still holds (``in_flight``)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.held: set[str] = set()
        self._lock = threading.Lock()

    def notify(self, task_id: str) -> None:
        with self._lock:
            self.ids.append(task_id)

    def in_flight(self, task_ids: list[str]) -> set[str]:
        return {i for i in task_ids if i in self.held}


@pytest.fixture
def svc(store_url: str, tmp_path: Path) -> Iterator[TaskService]:
    store = TaskStore(store_url)
    yield TaskService(store, LocalStorage(tmp_path / "objects", b"k"), BrokerQueue(),
                      ServiceConfig(retention_seconds=3600, max_concurrent_tasks=0, submit_rate_per_second=0,
                                    max_attempts=2, lease_seconds=LEASE, requeue_pending_seconds=30),
                      clock=Clock())
    store.close()


def test_a_lost_worker_is_retried_then_failed_with_a_reason(svc: TaskService) -> None:
    clock, queue = svc.clock, svc.queue
    t = svc.submit("o", "intl", "dashscope", REQ, "rid")
    first = svc.claim(t.id, "host-a:1")
    assert first is not None and first.attempts == 1
    clock.t += LEASE - 1  # type: ignore[attr-defined]
    assert svc.reap()[:2] == (0, 0)  # the lease still runs
    assert svc.heartbeat({t.id: 1}) == set()  # renewed...
    clock.t += LEASE - 1  # type: ignore[attr-defined]
    assert svc.reap()[:2] == (0, 0)  # ...so still ours
    clock.t += 2  # type: ignore[attr-defined]
    queue.ids.clear()  # type: ignore[attr-defined]
    assert svc.reap()[:2] == (1, 0)
    got = svc.store.get(t.id)
    assert got is not None and got.status == Status.PENDING and queue.ids == [t.id]  # type: ignore[attr-defined]

    second = svc.claim(t.id, "host-b:2")
    assert second is not None and second.attempts == 2
    clock.t += LEASE + 1  # type: ignore[attr-defined]
    assert svc.reap()[:2] == (0, 1)  # out of attempts
    got = svc.store.get(t.id)
    assert got is not None and got.status == Status.FAILED and got.code == "InternalError"
    assert (got.message or "").startswith("Worker lost") and "2 times" in (got.message or "")
    assert svc.store.ledger_total("o")["tasks"] == 0


def test_a_lost_attempt_can_no_longer_touch_its_task(svc: TaskService) -> None:
    t = svc.submit("o", "intl", "dashscope", REQ, "rid")
    svc.claim(t.id, "old")
    svc.clock.t += LEASE + 1  # type: ignore[attr-defined]
    svc.reap()
    assert svc.heartbeat({t.id: 1}) == {t.id}  # the old worker learns it lost the lease
    new = svc.claim(t.id, "new")
    assert new is not None and new.attempts == 2
    svc.progress(t.id, 80, attempt=1)
    assert not svc.succeed(t.id, "outputs/old.mp4", {}, LedgerEntry(t.id, 0, 2, 2, 0.1), attempt=1)
    assert not svc.fail(t.id, "InternalError", "late", attempt=1)
    assert not svc.mark_canceled(t.id, attempt=1)
    assert svc.store.get(t.id).progress == 0  # type: ignore[union-attr]
    assert svc.succeed(t.id, "outputs/new.mp4", {}, LedgerEntry(t.id, 0, 2, 2, 0.1), attempt=2)
    got = svc.store.get(t.id)
    assert got is not None and got.status == Status.SUCCEEDED and got.output_key == "outputs/new.mp4"
    assert svc.store.ledger_total("o") == {"tasks": 1, "billed_seconds": 2.0, "cost_usd": 0.1}


def test_a_requeued_task_is_not_failed_by_its_old_worker(svc: TaskService) -> None:
    t = svc.submit("o", "intl", "dashscope", REQ, "rid")
    svc.claim(t.id, "old")
    svc.clock.t += LEASE + 1  # type: ignore[attr-defined]
    svc.reap()  # PENDING again, attempts still 1
    assert not svc.fail(t.id, "InternalError", "late", attempt=1)
    assert svc.store.get(t.id).status == Status.PENDING  # type: ignore[union-attr]


def test_lost_wakeups_are_published_again(svc: TaskService) -> None:
    queue = svc.queue
    a = svc.submit("o", "intl", "dashscope", REQ, "rid")
    b = svc.submit("o", "intl", "dashscope", REQ, "rid")
    queue.held = {a.id}  # type: ignore[attr-defined]  # the broker lost b's message (say, a restart)
    queue.ids.clear()  # type: ignore[attr-defined]
    svc.clock.t += 10  # type: ignore[attr-defined]
    assert svc.reap()[2] == 0  # too recent to judge
    svc.clock.t += 25  # type: ignore[attr-defined]
    assert svc.reap()[2] == 1 and queue.ids == [b.id]  # type: ignore[attr-defined]
    assert svc.reap()[2] == 0  # looked at: not again before requeue_pending_seconds
    svc.clock.t += 31  # type: ignore[attr-defined]
    assert svc.reap()[2] == 1  # still not held: published again
    svc.claim(b.id)
    svc.clock.t += 31  # type: ignore[attr-defined]
    assert svc.reap()[2] == 0  # RUNNING tasks are the lease's business


def test_a_redelivered_message_takes_back_only_a_stale_task(svc: TaskService) -> None:
    t = svc.submit("o", "intl", "dashscope", REQ, "rid")
    svc.claim(t.id, "a")
    assert not svc.reap_task(t.id)  # fresh lease: the message is a no-op
    assert svc.claim(t.id, "b") is None
    svc.clock.t += LEASE + 1  # type: ignore[attr-defined]
    assert svc.reap_task(t.id)
    again = svc.claim(t.id, "b")
    assert again is not None and again.attempts == 2


def test_reapers_racing_move_a_task_once(svc: TaskService) -> None:
    ids = [svc.submit("o", "intl", "dashscope", REQ, "rid").id for _ in range(10)]
    for i in ids:
        svc.claim(i, "dead")
    svc.clock.t += LEASE + 1  # type: ignore[attr-defined]
    svc.queue.ids.clear()  # type: ignore[attr-defined]
    results: list[tuple[int, int, int]] = []
    threads = [threading.Thread(target=lambda: results.append(svc.reap())) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(r[0] for r in results) == 10 and sum(r[1] for r in results) == 0
    assert sorted(svc.queue.ids) == sorted(ids)  # type: ignore[attr-defined]  # one wake-up each
    assert all(svc.store.get(i).attempts == 1 for i in ids)  # type: ignore[union-attr]
