"""Logging set-up: plain text, or one JSON object a line (``OPENR2V_LOG_FORMAT=json``) carrying the
``request_id`` of the API request and the ``task_id`` of the task a line is about (contextvars, so
each request and each render thread sees its own)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["FORMATS", "REQUEST_ID", "TASK_ID", "JsonFormatter", "configure_logging", "task_context"]

FORMATS = ("text", "json")
REQUEST_ID: ContextVar[str | None] = ContextVar("openr2v_request_id", default=None)
TASK_ID: ContextVar[str | None] = ContextVar("openr2v_task_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def task_context(task_id: str) -> Iterator[None]:
    token = TASK_ID.set(task_id)
    try:
        yield
    finally:
        TASK_ID.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for name, var in (("request_id", REQUEST_ID), ("task_id", TASK_ID)):
            if (value := var.get()) is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str, fmt: str = "text") -> None:
    if fmt not in FORMATS:
        raise ValueError(f"OPENR2V_LOG_FORMAT {fmt!r}: use one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
