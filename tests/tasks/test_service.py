"""The state machine against a real SQLite store, a fake clock and a recording queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from openr2v.domain.request import GenerationRequest
from openr2v.domain.task import Status
from openr2v.errors import NotFound, Throttled, UnsupportedOperation
from openr2v.storage import LocalStorage
from openr2v.tasks.service import ServiceConfig, TaskService
from openr2v.tasks.store import LedgerEntry, TaskStore


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


class RecordingQueue:
    def __init__(self) -> None:
        self.ids: list[str] = []

    def notify(self, task_id: str) -> None:
        self.ids.append(task_id)


@pytest.fixture
def svc(tmp_path: Path) -> TaskService:
    store = TaskStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    return TaskService(store, LocalStorage(tmp_path / "objects", b"k"), RecordingQueue(),
                       ServiceConfig(retention_seconds=100, max_concurrent_tasks=3, submit_rate_per_second=0,
                                     max_attempts=2), clock=Clock())


REQ = GenerationRequest(model="wan2.6-r2v-flash", prompt="p", size=(1280, 720), duration=2)


def test_submit_claim_succeed(svc: TaskService, tmp_path: Path) -> None:
    t = svc.submit("o", "intl", "dashscope", REQ, "rid")
    assert t.status == Status.PENDING and svc.queue.ids == [t.id]  # type: ignore[attr-defined]
    claimed = svc.claim(t.id)
    assert claimed is not None and claimed.status == Status.RUNNING and claimed.attempts == 1
    assert svc.claim(t.id) is None  # only one worker wins
    out = tmp_path / "v.mp4"
    out.write_bytes(b"mp4")
    svc.storage.put("outputs/x.mp4", out)
    assert svc.succeed(t.id, "outputs/x.mp4", {"duration": 2}, LedgerEntry(t.id, 0, 2, 2, 0.1))
    got = svc.get("o", t.id)
    assert got.status == Status.SUCCEEDED and got.progress == 100
    assert svc.store.ledger_total("o") == {"tasks": 1, "billed_seconds": 2.0, "cost_usd": 0.1}
    assert svc.video_path(got, "http://h").startswith("http://h/files/outputs/x.mp4?Expires=")


def test_cancel_only_pending_and_only_own(svc: TaskService) -> None:
    t = svc.submit("o", "intl", "dashscope", REQ, "rid")
    with pytest.raises(NotFound):
        svc.cancel("someone-else", t.id)
    assert svc.cancel("o", t.id).status == Status.CANCELED
    assert svc.claim(t.id) is None
    t2 = svc.submit("o", "intl", "dashscope", REQ, "rid")
    svc.claim(t2.id)
    with pytest.raises(UnsupportedOperation):
        svc.cancel("o", t2.id)


def test_a_worker_cannot_succeed_a_canceled_task(svc: TaskService) -> None:
    t = svc.submit("o", "intl", "dashscope", REQ, "rid")
    svc.cancel("o", t.id)
    assert not svc.succeed(t.id, "k", {}, LedgerEntry(t.id, 0, 2, 2, 0))
    assert svc.store.ledger_total("o")["tasks"] == 0


def test_concurrency_cap(svc: TaskService) -> None:
    for _ in range(3):
        svc.submit("o", "intl", "dashscope", REQ, "rid")
    with pytest.raises(Throttled):
        svc.submit("o", "intl", "dashscope", REQ, "rid")
    svc.submit("other", "intl", "dashscope", REQ, "rid")  # caps are per key


def test_recover_requeues_then_gives_up(svc: TaskService) -> None:
    t = svc.submit("o", "intl", "dashscope", REQ, "rid")
    svc.claim(t.id)  # attempt 1, then "crash"
    svc.recover()
    assert svc.get("o", t.id).status == Status.PENDING
    svc.claim(t.id)  # attempt 2, crash again
    svc.recover()
    got = svc.get("o", t.id)
    assert got.status == Status.FAILED and got.code == "InternalError" and "2 times" in (got.message or "")


def test_retention(svc: TaskService) -> None:
    t = svc.submit("o", "intl", "dashscope", REQ, "rid")
    svc.clock.t += 101  # type: ignore[attr-defined]
    assert svc.get("o", t.id).status == Status.UNKNOWN
    assert svc.store.get(t.id) is None


def test_listeners_see_every_status_change(svc: TaskService) -> None:
    seen: list[tuple[str, str]] = []
    svc.listeners.append(lambda t: seen.append((t.id, t.status.value)))
    a = svc.submit("o", "intl", "dashscope", REQ, "rid")
    svc.claim(a.id)
    svc.fail(a.id, "InternalError", "boom")
    b = svc.submit("o", "intl", "dashscope", REQ, "rid")
    svc.cancel("o", b.id)
    assert seen == [(a.id, "PENDING"), (a.id, "RUNNING"), (a.id, "FAILED"), (b.id, "PENDING"), (b.id, "CANCELED")]


def test_delete_and_uploads(svc: TaskService, tmp_path: Path) -> None:
    import io

    t = svc.submit("o", "intl", "dashscope", REQ, "rid")
    with pytest.raises(NotFound):
        svc.delete("someone-else", t.id)
    svc.delete("o", t.id)
    assert svc.store.get(t.id) is None
    assert svc.add_upload("o", "dir/a.png", io.BytesIO(b"x" * 10), 100, "image/png") == 10
    assert svc.storage.path("uploads/dir/a.png") is not None and svc.store.get_upload("dir/a.png").owner == "o"
    from openr2v.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="upload limit"):
        svc.add_upload("o", "dir/b.png", io.BytesIO(b"x" * 101), 100, None)
    assert svc.storage.path("uploads/dir/b.png") is None
