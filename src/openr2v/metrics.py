"""Prometheus metrics (prometheus-client): what this process counts, and what the store knows.

Counters and histograms live in the process that sees the event (an API node's requests, a
worker's renders and webhook attempts). Figures of the whole deployment (tasks by status, queue
depth and age, outbox states) are read from the store at scrape time by ``StoreCollector``, so any
node answers them right. With ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client's multi-process
mode adds up the counters of every process writing there (several API processes on one host).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from openr2v.tasks.store import TaskStore

__all__ = ["BILLED_SECONDS", "FETCH_FAILURES", "HTTP_LATENCY", "HTTP_REQUESTS", "RENDER_SECONDS",
           "STATUS_CHANGES", "WEBHOOK_ATTEMPTS", "StoreCollector", "exposition", "serve_metrics"]

log = logging.getLogger("openr2v.metrics")

HTTP_REQUESTS = Counter("openr2v_http_requests", "HTTP requests by dialect, route template, method and status.",
                        ["dialect", "route", "method", "status"])
HTTP_LATENCY = Histogram("openr2v_http_request_duration_seconds", "Time to answer an HTTP request (until the "
                         "response starts streaming), by dialect, route template and method.",
                         ["dialect", "route", "method"],
                         buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
STATUS_CHANGES = Counter("openr2v_task_status_changes", "Task status changes made by this process, by the new "
                         "status and model.", ["status", "model"])
RENDER_SECONDS = Histogram("openr2v_render_seconds", "Wall time of one engine render, by engine.", ["engine"],
                           buckets=(.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200))
FETCH_FAILURES = Counter("openr2v_fetch_failures", "References that could not be fetched or used, by reason "
                         "(the error code the task failed with).", ["reason"])
WEBHOOK_ATTEMPTS = Counter("openr2v_webhook_attempts", "Webhook delivery attempts by outcome: delivered, failed "
                           "(to be retried) or dead (the last attempt failed).", ["outcome"])
BILLED_SECONDS = Counter("openr2v_billed_seconds", "Seconds written to the billing ledger, by model.", ["model"])


class StoreCollector:
    """Gauges read from the task store when scraped: true across every process sharing the store."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("openr2v_store_up", "1 if the task store answered this scrape.")
        try:
            stats = self.store.stats(time.time())
            outbox = self.store.outbox.counts()
        except Exception:
            log.exception("reading the store for /metrics failed")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        tasks = GaugeMetricFamily("openr2v_tasks", "Tasks in the store by status and model.",
                                  labels=["status", "model"])
        for (status, model), n in sorted(stats.counts.items()):
            tasks.add_metric([status, model], n)
        yield tasks
        yield GaugeMetricFamily("openr2v_queue_depth", "Tasks PENDING (waiting for a worker).",
                                value=stats.pending)
        yield GaugeMetricFamily("openr2v_queue_oldest_pending_age_seconds", "Age of the oldest PENDING task "
                                "(0 when none waits).", value=stats.oldest_pending_age)
        boxes = GaugeMetricFamily("openr2v_webhook_outbox", "Webhook deliveries in the outbox by state (pending, "
                                  "delivered, dead).", labels=["state"])
        for state in ("pending", "delivered", "dead"):
            boxes.add_metric([state], outbox.get(state, 0))
        yield boxes
        yield GaugeMetricFamily("openr2v_webhook_dead_letters", "Webhook deliveries dead after their last attempt, "
                                "waiting for their owner to redeliver them.", value=outbox.get("dead", 0))


class _ThisProcess:
    """The process's own metrics, or with PROMETHEUS_MULTIPROC_DIR those of every process writing there."""

    def collect(self) -> Iterable[Metric]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return registry.collect()
        return REGISTRY.collect()


def registry(store: TaskStore | None = None) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_ThisProcess())
    if store is not None:
        reg.register(StoreCollector(store))
    return reg


def exposition(reg: CollectorRegistry) -> bytes:
    """The Prometheus text format of ``reg`` (what GET /metrics answers)."""
    return generate_latest(reg)


def serve_metrics(port: int, addr: str = "0.0.0.0") -> None:
    """This process's metrics on their own port (``openr2v worker`` with ``OPENR2V_METRICS_PORT``)."""
    start_http_server(port, addr=addr, registry=registry())
    log.info("metrics on http://%s:%d/metrics", addr, port)
