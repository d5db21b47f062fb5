"""``openr2v worker``: a render node of a scale-out deployment.

It builds the same Runtime as an API node (store, storage, queue adapters from Settings), loads
its engines once, then takes tasks:

- ``queue=celery``: a Celery worker consuming the broker queue, ``concurrency`` threads sharing
  the one runtime (``--pool solo`` renders in the main thread). SIGTERM is a warm shutdown: the
  renders in progress finish, the rest stay queued.
- ``queue=local``: ``concurrency`` threads that poll the shared store for PENDING tasks (no broker).

Either way it runs a reaper (lost workers, lost wake-ups) and a webhook dispatcher (the store's
outbox: any node sends what is due), and with ``metrics_port`` serves its Prometheus metrics.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from openr2v.api.dialects.dashscope.translate import webhook_body
from openr2v.config import Settings
from openr2v.domain.models import REGISTRY
from openr2v.runtime import Runtime, build_runtime
from openr2v.tasks.leases import worker_name
from openr2v.tasks.queue import CeleryQueue

__all__ = ["POOLS", "run_worker"]

POOLS = ("threads", "solo")

log = logging.getLogger("openr2v.worker")


def run_worker(settings: Settings, *, concurrency: int = 1, pool: str = "threads", log_level: str = "info") -> None:
    if pool not in POOLS:
        raise ValueError(f"pool {pool!r}: use one of {', '.join(POOLS)}")
    if settings.queue == "local":
        settings = settings.model_copy(update={"render_threads": concurrency})
    rt = build_runtime(settings, webhook_body=webhook_body)
    if settings.metrics_port:
        from openr2v.metrics import serve_metrics

        serve_metrics(settings.metrics_port)
    for model in REGISTRY:  # load every engine now, once, rather than on the first task
        rt.runner.engine_for(model)
    rt.start_worker()
    try:
        if isinstance(rt.queue, CeleryQueue):
            _consume(rt, rt.queue, concurrency, pool, log_level)
        else:
            log.info("worker %s polling the store with %d thread(s): ready.", worker_name(), concurrency)
            _wait_for_signal()
    finally:
        rt.stop()


def _consume(rt: Runtime, queue: CeleryQueue, concurrency: int, pool: str, log_level: str) -> None:
    from openr2v.tasks.celery_app import register_run_task

    def handle(task_id: str) -> None:
        queue.taken(task_id)
        rt.runner.handle(task_id)

    register_run_task(queue.app, handle)
    host, _, pid = worker_name().rpartition(":")
    node = f"openr2v-{pid}@{host}"
    worker = queue.app.Worker(pool=pool, concurrency=concurrency, loglevel=log_level.upper(),
                              hostname=node, queues=[rt.settings.celery_queue],
                              # No broadcast chatter at start-up: the store, not the peers, is the truth.
                              without_mingle=True, without_gossip=True, without_heartbeat=True)
    log.info("worker %s consuming %s (%s x%d)", node, rt.settings.celery_queue, pool, concurrency)
    worker.start()  # blocks; Celery handles SIGTERM (warm) and SIGQUIT (cold)


def _wait_for_signal() -> None:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping (an unfinished render is taken back through its lease)", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(1.0):
        pass
