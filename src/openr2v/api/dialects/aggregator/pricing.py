"""The aggregator's ``usage.cost``: billed seconds x unit price (by model, tier, audio) - discount.

Prices come from ``OPENR2V_PRICES_FILE`` when it lists the model, else from the registry (which
is what the ledger bills). The file is parsed once per change of its modification time.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from openr2v.domain.models import Price, get_model, parse_price_table

__all__ = ["PriceBook", "quote"]

log = logging.getLogger("openr2v.api.aggregator")

Table = dict[str, tuple[dict[int, Price], float]]


class PriceBook:
    """The configured price table, reloaded when the file changes; empty when none is configured."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, float] | None = None
        self._table: Table = {}

    def table(self, path: Path | None) -> Table:
        if path is None:
            return {}
        try:
            mtime = path.stat().st_mtime
        except OSError:
            log.warning("price table %s cannot be read; using the registry's prices", path)
            return {}
        with self._lock:
            if self._key != (str(path), mtime):
                try:
                    self._table = parse_price_table(json.loads(path.read_text()))
                except (OSError, ValueError, KeyError, TypeError) as e:
                    log.warning("price table %s is invalid (%s); using the registry's prices", path, e)
                    self._table = {}
                self._key = (str(path), mtime)
            return self._table


BOOK = PriceBook()


def quote(model: str, usage: dict[str, Any], prices_file: Path | None) -> tuple[float, float]:
    """(cost after discount, discount amount) in USD for a succeeded task's usage."""
    table = BOOK.table(prices_file)
    entry = table.get(model)
    if entry is None:
        cost = usage.get("cost_usd")
        if isinstance(cost, int | float):
            return round(float(cost), 4), 0.0
        spec = get_model(model)
        tiers, discount = (spec.prices if spec else {}), 0.0
    else:
        tiers, discount = entry
    sr = int(usage.get("SR") or 720)
    price = tiers.get(sr) or tiers.get(720)
    unit = 0.0 if price is None else (price.audio if usage.get("audio", True) else price.silent)
    gross = float(usage.get("duration") or 0) * unit
    off = round(gross * discount, 4)
    return round(gross - off, 4), off
