"""The Celery side of scale-out: one app configuration for publishers and workers.

Settings, and why:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after its
  task ran, so a worker that dies mid-render leaves it to be delivered again.
- ``worker_prefetch_multiplier=1``: a worker holds no more messages than it renders at once;
  renders are long and uneven, so a prefetched message would wait behind one while another
  worker idles.
- ``visibility_timeout`` (Redis): an unacknowledged message comes back after this long; it is
  longer than the longest render, so a slow render is not started twice. A dead worker's task
  is taken back much sooner by its lease in the store (``TaskService.reap``).
- results are ignored: the task store is where results live.

The Celery task id is the openr2v task id, so ``control.revoke(task_id)`` names it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery

__all__ = ["TASK_NAME", "make_celery", "register_run_task"]

TASK_NAME = "openr2v.run"

log = logging.getLogger("openr2v.celery")


def make_celery(broker_url: str, queue_name: str = "openr2v", visibility_timeout: int = 6 * 3600) -> Celery:
    app = Celery("openr2v", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": visibility_timeout, "socket_connect_timeout": 3},
        task_default_queue=queue_name,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        # A restarted broker is waited for, not given up on.
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # A submit must not hang on a dead broker: one quick retry, then the reaper's turn.
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2,
                                   "interval_max": 0.2},
        # A render in progress goes on through a broker reconnect; its lease keeps it ours.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_pool_limit=10,
    )
    return app


def register_run_task(app: Celery, handler: Callable[[str], None]) -> Any:
    """Register ``openr2v.run(task_id)`` on a worker; ``handler`` is the process-wide one (store,
    storage and engine loaded once), shared by the pool's threads."""

    @app.task(name=TASK_NAME, ignore_result=True, acks_late=True)
    def run(task_id: str) -> None:
        handler(task_id)

    return run
