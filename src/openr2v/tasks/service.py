"""The task state machine, apart from HTTP and from the worker.

    submit ──► PENDING ──claim──► RUNNING ──► SUCCEEDED | FAILED
                  │                  │
                  └──cancel──► CANCELED   (a crash: RUNNING ─► PENDING again, up to max_attempts)

A lost worker is noticed either at start-up (``recover``, the embedded default: one process, so
whatever is RUNNING was its own) or by its lease running out (``reap``, scale-out: any node may
run it, several at once, since every move is a conditional UPDATE). The store is the truth; the
queue only carries wake-ups, so ``reap`` also publishes again the PENDING tasks whose wake-up the
broker no longer holds.

Clock, store, storage and queue are passed in, so the machine is tested against fakes and
real adapters alike. Nothing here knows a dialect.

With a ``Moderator`` (tasks/moderation.py), ``submit`` refuses prohibited input before anything is
stored: ``DataInspectionFailed`` or ``IPInfringementSuspect`` (HTTP 400).
"""

from __future__ import annotations

import builtins
import logging
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from openr2v.domain.prompt import plan_prompt, plan_to_prompt
from openr2v.domain.request import GenerationRequest
from openr2v.domain.task import Status, Task
from openr2v.errors import InvalidParameter, NotFound, Throttled, UnsupportedOperation
from openr2v.logs import task_context
from openr2v.storage import Storage
from openr2v.tasks.limits import RateLimiter
from openr2v.tasks.moderation import RECHECK, ModerationUnavailable, Moderator
from openr2v.tasks.quotas import Admission, Charge, QuotaBook, request_bill
from openr2v.tasks.store import LedgerEntry, TaskStore

__all__ = ["Queue", "ServiceConfig", "TaskService"]

log = logging.getLogger("openr2v.tasks")


class Queue(Protocol):
    def notify(self, task_id: str) -> None: ...


@dataclass(frozen=True)
class ServiceConfig:
    retention_seconds: int = 24 * 3600
    url_ttl_seconds: int = 24 * 3600
    max_concurrent_tasks: int = 50
    submit_rate_per_second: float = 20.0
    submit_burst: int = 40
    max_attempts: int = 2
    lease_seconds: float = 60.0
    requeue_pending_seconds: float = 30.0
    upload_ttl_seconds: int = 48 * 3600


def new_id() -> str:
    return str(uuid.uuid4())


class TaskService:
    def __init__(self, store: TaskStore, storage: Storage, queue: Queue, config: ServiceConfig,
                 clock: Callable[[], float] = time.time, moderator: Moderator | None = None,
                 quotas: QuotaBook | None = None) -> None:
        self.store = store
        self.storage = storage
        self.queue = queue
        self.config = config
        self.clock = clock
        self.moderator = moderator  # the worker checks outputs with it too
        self.quotas = quotas if quotas is not None else QuotaBook(store, None, {})
        self.rate = RateLimiter(config.submit_rate_per_second, config.submit_burst, clock)
        # Called with the task after every status change (submit, start, end); e.g. live events. (Webhooks
        # are written by the store in the change's own transaction: tasks/webhooks.py.)
        self.listeners: list[Callable[[Task], None]] = []

    def _changed(self, task_id: str, task: Task | None = None) -> None:
        if not self.listeners:
            return
        task = task or self.store.get(task_id)  # a task just created is passed in: no read back
        if task is None:
            return
        for listener in self.listeners:
            try:
                listener(task)
            except Exception:
                log.exception("status listener failed for task %s", task_id)

    # -- client side ------------------------------------------------------------------------

    def submit(self, owner: str, region: str, dialect: str, request: GenerationRequest,
               request_id: str) -> Task:
        if not self.rate.allow(owner):
            raise Throttled("Requests rate limit exceeded, please try again later.")
        cap = self.config.max_concurrent_tasks
        if cap > 0 and self.store.count_active(owner) >= cap:
            raise Throttled(f"Too many tasks in progress: at most {cap} tasks may be PENDING or RUNNING per "
                            f"API key; wait for some to finish.")
        recheck = self._moderate(request)
        now = self.clock()
        if request.seed is None:  # "the system generates a random seed": recorded, so the task can be replayed
            request = request.model_copy(update={"seed": secrets.randbelow(2**31)})
        plan = plan_prompt(request.prompt, [r.label for r in request.references], request.duration,
                           request.shot_type, request.seed or 0)
        actual = plan_to_prompt(plan) if request.prompt_extend else request.prompt
        task = Task(id=new_id(), owner=owner, region=region, model=request.model, dialect=dialect,
                    request=request, submit_time=now, request_id=request_id,
                    expires_at=now + self.config.retention_seconds, orig_prompt=request.prompt,
                    actual_prompt=actual, plan=plan.as_dict(), extra={RECHECK: True} if recheck else {})
        self.store.create(task, self._admission(owner, region, request))
        with task_context(task.id):
            log.info("accepted task %s (%s, %s, key owner %s)", task.id, request.model, dialect, owner[:12])
        self._changed(task.id, task)
        self.queue.notify(task.id)
        return task

    def _admission(self, owner: str, region: str, request: GenerationRequest) -> Charge | Admission:
        """The task's quota charge: for a key with limits, the check the store runs under the key's lock
        (QuotaExceeded when the bill does not fit); a key without limits is only recorded."""
        billed, cost = request_bill(request, region)
        limits, _source = self.quotas.limits(owner)
        if limits is None:
            return Charge(billed_seconds=billed, free_seconds=0.0, cost_usd=cost)
        return Admission(limits, billed, cost)

    def _moderate(self, request: GenerationRequest) -> bool:
        """Raise the moderator's refusal; True when its hook could not decide (the worker asks again)."""
        if self.moderator is None:
            return False
        try:
            self.moderator.check_input(request)
        except ModerationUnavailable:
            # A broken hook must neither turn a submit into a 5xx nor wave the input through: the task
            # is accepted and the worker checks it again before rendering, failing closed there.
            return True
        return False

    def get(self, owner: str, task_id: str) -> Task:
        """The task, or an UNKNOWN placeholder if it expired or never existed.

        Another key's task raises NotFound: a key sees only its own tasks.
        """
        task = self.store.get(task_id)
        if task is None:
            return self.unknown(task_id)
        if task.owner != owner:
            raise NotFound(f"Task {task_id} not found.")
        if task.expires_at <= self.clock():
            self._expire([task])
            return self.unknown(task_id)
        return task

    def unknown(self, task_id: str) -> Task:
        return Task(id=task_id, owner="", region="", model="", dialect="",
                    request=GenerationRequest(model=""), status=Status.UNKNOWN)

    def cancel(self, owner: str, task_id: str) -> Task:
        task = self.get(owner, task_id)
        if task.status == Status.UNKNOWN:
            raise NotFound(f"Task {task_id} not found.")
        if task.status != Status.PENDING or not self.store.finish(
                task_id, Status.CANCELED, self.clock(), from_status=(Status.PENDING,), code="Canceled",
                message="The task was canceled by its owner."):
            now = self.store.get(task_id)
            raise UnsupportedOperation(
                f"Failed to cancel the task, please confirm if the task is in PENDING status "
                f"(task {task_id} is {now.status.value if now else 'gone'}).")
        self._changed(task_id)
        revoke = getattr(self.queue, "revoke", None)
        if revoke is not None:  # spares a worker the message; the claim would refuse it anyway
            revoke(task_id)
        return self.get(owner, task_id)

    def delete(self, owner: str, task_id: str) -> None:
        """Forget a task of ``owner`` and its output; a render in progress stops at its next check."""
        task = self.get(owner, task_id)
        if task.status == Status.UNKNOWN:
            raise NotFound(f"Task {task_id} not found.")
        if task.output_key:
            self.storage.delete(task.output_key)
        self.store.delete([task_id])

    def add_upload(self, owner: str, key: str, stream: BinaryIO, max_bytes: int, content_type: str | None,
                   field: str = "file") -> int:
        """Store an uploaded file as ``uploads/<key>`` of ``owner`` (addressable as oss://<key>); its size."""
        size = 0
        with tempfile.NamedTemporaryFile(dir=self.storage.root, delete=False) as tmp:
            try:
                while chunk := stream.read(1024 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise InvalidParameter(f"{field} exceeds the upload limit of {max_bytes} bytes.",
                                               param=field)
                    tmp.write(chunk)
                tmp.close()
                if size == 0:
                    raise InvalidParameter(f"{field} is an empty file.", param=field)
                self.storage.put(f"uploads/{key}", Path(tmp.name))
            finally:
                os.unlink(tmp.name)
        now = self.clock()
        self.store.add_upload(key, owner, size, content_type, now, now + self.config.upload_ttl_seconds)
        return size

    def list(self, owner: str, **filters: Any) -> tuple[list[Task], int]:
        return self.store.list(owner, now=self.clock(), **filters)

    def video_path(self, task: Task, base_url: str) -> str | None:
        """A signed URL of the output, expiring at the task's retention or the URL TTL."""
        if task.status != Status.SUCCEEDED or not task.output_key:
            return None
        expires = int(min(task.expires_at, (task.end_time or self.clock()) + self.config.url_ttl_seconds))
        return self.storage.url(task.output_key, expires, base_url)

    # -- worker side ------------------------------------------------------------------------

    def claim(self, task_id: str, worker: str = "") -> Task | None:
        task = self.store.claim(task_id, self.clock(), worker)
        if task is not None:
            self._changed(task_id, task)
        return task

    def heartbeat(self, leases: dict[str, int]) -> set[str]:
        """Renew ``{task_id: attempt}`` leases; returns the tasks this worker no longer holds."""
        return self.store.heartbeat(leases, self.clock()) if leases else set()

    def progress(self, task_id: str, percent: int, attempt: int | None = None) -> None:
        self.store.set_progress(task_id, max(0, min(99, int(percent))), attempt)

    def is_canceled(self, task_id: str) -> bool:
        status = self.store.status(task_id)
        return status is None or status == Status.CANCELED

    # ``attempt`` fences a worker's writes to the claim it made (see tasks/store.py).

    def succeed(self, task_id: str, output_key: str, usage: dict[str, object], ledger: LedgerEntry,
                attempt: int | None = None) -> bool:
        return self._ended(self.store.finish(task_id, Status.SUCCEEDED, self.clock(), from_status=(Status.RUNNING,),
                                             output_key=output_key, usage=usage, ledger=ledger, attempt=attempt),
                           task_id)

    def fail(self, task_id: str, code: str, message: str, attempt: int | None = None) -> bool:
        # A worker fails only its own RUNNING claim; a re-queued (PENDING) task is no longer its to fail.
        from_status = (Status.RUNNING,) if attempt is not None else (Status.RUNNING, Status.PENDING)
        return self._ended(self.store.finish(task_id, Status.FAILED, self.clock(), from_status=from_status,
                                             code=code, message=message, attempt=attempt), task_id)

    def mark_canceled(self, task_id: str, attempt: int | None = None) -> bool:
        return self._ended(self.store.finish(task_id, Status.CANCELED, self.clock(), from_status=(Status.RUNNING,),
                                             code="Canceled", message="The task was canceled.", attempt=attempt),
                           task_id)

    def _ended(self, changed: bool, task_id: str) -> bool:
        if changed:
            self._changed(task_id)
        return changed

    # -- housekeeping -----------------------------------------------------------------------

    def recover(self) -> None:
        """At start-up: tasks a crash left RUNNING go back to PENDING, or fail once out of attempts."""
        for task_id in self.store.running_ids():
            task = self.store.get(task_id)
            if task is None:
                continue
            if task.attempts < self.config.max_attempts and self.store.requeue(task_id):
                log.warning("re-queued task %s left RUNNING by a crash (attempt %d)", task_id, task.attempts)
            else:
                self._ended(self.store.finish(
                    task_id, Status.FAILED, self.clock(), from_status=(Status.RUNNING,), code="InternalError",
                    message=f"The worker rendering this task stopped {task.attempts} times (server crash or "
                            f"restart); giving up."), task_id)
        for task_id in self.store.pending_ids(limit=100000):
            self.queue.notify(task_id)

    def reap(self) -> tuple[int, int, int]:
        """Take back tasks from lost workers and re-publish lost wake-ups; (re-queued, failed, re-published).

        Safe on every node at once: each move is conditional on the lease still being stale."""
        now = self.clock()
        stale_before = now - self.config.lease_seconds
        requeued = failed = 0
        for task_id, attempts in self.store.stale_running(stale_before):
            outcome = self._lost(task_id, attempts, stale_before)
            requeued += outcome == "requeued"
            failed += outcome == "failed"
        republished = 0
        pending = self.store.stale_pending(now - self.config.requeue_pending_seconds, now)
        if pending:
            in_flight = getattr(self.queue, "in_flight", None)
            held = in_flight(pending) if in_flight is not None else set()
            for task_id in pending:
                if task_id not in held:
                    self.queue.notify(task_id)
                    republished += 1
            if republished:
                log.warning("re-published %d PENDING task(s) whose wake-up the queue had lost", republished)
        return requeued, failed, republished

    def reap_task(self, task_id: str) -> bool:
        """One task whose message came again while it is RUNNING: take it back if its lease is stale."""
        stale_before = self.clock() - self.config.lease_seconds
        return any(self._lost(i, a, stale_before) == "requeued"
                   for i, a in self.store.stale_running(stale_before, task_id=task_id))

    def _lost(self, task_id: str, attempts: int, stale_before: float) -> str:
        if attempts < self.config.max_attempts:
            if self.store.requeue(task_id, now=self.clock(), stale_before=stale_before):
                log.warning("worker lost: re-queued task %s (attempt %d of %d)", task_id, attempts,
                            self.config.max_attempts)
                self.queue.notify(task_id)
                return "requeued"
            return "kept"  # its worker renewed the lease meanwhile, or another reaper got there first
        if self._ended(self.store.finish(
                task_id, Status.FAILED, self.clock(), from_status=(Status.RUNNING,), code="InternalError",
                message=f"Worker lost: the worker rendering this task stopped renewing its lease "
                        f"{attempts} times (crash, kill or network loss); giving up.",
                attempt=attempts, stale_before=stale_before), task_id):
            log.warning("worker lost: task %s FAILED after %d attempts", task_id, attempts)
            return "failed"
        return "kept"

    def purge(self) -> int:
        """Delete expired tasks, their outputs and expired uploads."""
        now = self.clock()
        gone = self.store.expired(now)
        self._expire(gone)
        keys = self.store.expired_uploads(now)
        for key in keys:
            self.storage.delete(f"uploads/{key}")
        self.store.delete_uploads(keys)
        return len(gone)

    def _expire(self, tasks: builtins.list[Task]) -> None:
        for t in tasks:
            if t.output_key:
                self.storage.delete(t.output_key)
        self.store.delete([t.id for t in tasks])
