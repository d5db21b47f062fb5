"""Per-key quotas: a free allowance of billed seconds, and caps on billed seconds and on cost per
UTC day, per UTC month and in total (docs/quotas.md).

A submit reserves the task's estimated bill (an upper bound while a video's length is unknown) in
the same transaction that creates the task, under a per-key lock, so concurrent submits cannot
overshoot a cap. The reservation becomes usage, at the measured bill, when the task SUCCEEDS, and
is released when it FAILS or is CANCELED: failed tasks consume nothing, the free quota included.

Free seconds are consumed first. Second caps count every billed second, free ones too (they measure
rendering); cost caps count what is charged after the free seconds (they measure money).

Limits come from ``OPENR2V_QUOTAS`` (a JSON object, or the path of a JSON file) keyed by API key,
with ``"default"`` for keys it does not name; an admin's change (``OPENR2V_ADMIN_KEY``) is stored
in the task store and wins over the file until it is removed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openr2v.domain.models import REGISTRY
from openr2v.domain.preview import PreviewRef, estimate
from openr2v.domain.request import GenerationRequest
from openr2v.errors import QuotaExceeded

__all__ = ["WINDOWS", "Admission", "Charge", "Limits", "QuotaBook", "Totals", "admit", "parse_quotas", "request_bill",
           "window_starts"]

WINDOWS = ("day", "month", "total")
_EPS = 1e-9


@dataclass(frozen=True)
class Limits:
    """One key's limits; None is no limit. Seconds are billed seconds, costs USD."""

    free_seconds: float = 0.0
    seconds_per_day: float | None = None
    seconds_per_month: float | None = None
    seconds_total: float | None = None
    cost_usd_per_day: float | None = None
    cost_usd_per_month: float | None = None
    cost_usd_total: float | None = None

    @classmethod
    def parse(cls, data: Any, where: str, base: Limits | None = None) -> Limits:
        """A JSON object of limits (over ``base``'s), or ValueError naming ``where`` and the field."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{where} must be an object of limits ({', '.join(LIMIT_FIELDS)}).")
        values = asdict(base or cls())
        for name, value in data.items():
            if name not in LIMIT_FIELDS:
                raise ValueError(f"{where}.{name} is not a limit; use {', '.join(LIMIT_FIELDS)}.")
            if value is None and name != "free_seconds":
                values[name] = None
                continue
            try:
                number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else -1.0
            except OverflowError:  # an integer past the float range
                number = math.inf
            if not math.isfinite(number) or number < 0:
                raise ValueError(f"{where}.{name} must be a number >= 0" +
                                 (" or null (no limit)." if name != "free_seconds" else "."))
            values[name] = number
        return cls(**values)

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)

    def seconds_cap(self, window: str) -> float | None:
        return getattr(self, "seconds_total" if window == "total" else f"seconds_per_{window}")

    def cost_cap(self, window: str) -> float | None:
        return getattr(self, "cost_usd_total" if window == "total" else f"cost_usd_per_{window}")


LIMIT_FIELDS = tuple(f.name for f in fields(Limits))


@dataclass(frozen=True)
class Totals:
    """A key's reserved plus used amounts: free seconds (all time), billed seconds and charged cost per window."""

    free_seconds: float
    seconds: dict[str, float]
    cost_usd: dict[str, float]

    @classmethod
    def zero(cls) -> Totals:
        return cls(0.0, dict.fromkeys(WINDOWS, 0.0), dict.fromkeys(WINDOWS, 0.0))


@dataclass(frozen=True)
class Charge:
    """What one task takes from its key's quota."""

    billed_seconds: float
    free_seconds: float  # the part the free quota covers
    cost_usd: float  # charged: the cost of the seconds the free quota does not cover


def window_starts(now: float) -> dict[str, float]:
    """Epoch seconds where the current UTC day and month began (``total``: the beginning of time)."""
    t = datetime.fromtimestamp(now, UTC)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    return {"day": day.timestamp(), "month": day.replace(day=1).timestamp(), "total": 0.0}


def _fmt(x: float) -> str:
    return f"{x:g}"


def admit(limits: Limits, totals: Totals, billed_seconds: float, cost_usd: float) -> Charge:
    """The charge of a task of this bill, or QuotaExceeded naming the cap it would break."""
    free_left = max(0.0, limits.free_seconds - totals.free_seconds)
    free = min(billed_seconds, free_left)
    charged = round(cost_usd * (billed_seconds - free) / billed_seconds, 4) if billed_seconds > 0 else 0.0
    words = {"day": "daily", "month": "monthly", "total": "total"}
    for window in WINDOWS:
        cap = limits.seconds_cap(window)
        if cap is not None and totals.seconds[window] + billed_seconds > cap + _EPS:
            raise QuotaExceeded(
                f"This API key's {words[window]} limit of {_fmt(cap)} billed seconds would be "
                f"exceeded: {_fmt(round(totals.seconds[window], 3))} s are used or reserved and this task "
                f"bills up to {_fmt(billed_seconds)} s.")
        cap = limits.cost_cap(window)
        if cap is not None and totals.cost_usd[window] + charged > cap + _EPS:
            raise QuotaExceeded(
                f"This API key's {words[window]} budget of {_fmt(cap)} USD would be exceeded: "
                f"{_fmt(round(totals.cost_usd[window], 4))} USD are used or reserved and this task costs up "
                f"to {_fmt(charged)} USD after the free quota.")
    return Charge(billed_seconds=billed_seconds, free_seconds=round(free, 3), cost_usd=charged)


@dataclass(frozen=True)
class Admission:
    """A submit's quota check, run by the store under the key's lock with the key's totals."""

    limits: Limits
    billed_seconds: float
    cost_usd: float

    def horizon(self) -> str:
        """The oldest window the check looks at: the totals need no rows older than its start."""
        lim = self.limits
        if lim.free_seconds > 0 or lim.seconds_total is not None or lim.cost_usd_total is not None:
            return "total"
        return "month" if lim.seconds_per_month is not None or lim.cost_usd_per_month is not None else "day"

    def __call__(self, totals: Totals) -> Charge:
        return admit(self.limits, totals, self.billed_seconds, self.cost_usd)


def request_bill(request: GenerationRequest, region: str) -> tuple[float, float]:
    """(billed seconds, cost USD) a request can bill at most, by the rules that bill the finished task:
    a video whose length is not known yet is billed at its cap."""
    spec = REGISTRY[request.model]
    refs = [PreviewRef(kind=r.kind) for r in request.references]
    if request.first_frame:
        refs.append(PreviewRef(kind="first_frame"))
    est = estimate(spec, region, refs, size=request.size if spec.sizes else None,
                   resolution=request.resolution, ratio=request.ratio, duration=request.duration,
                   audio=request.audio)
    return est.billed_seconds, est.cost_usd


def parse_quotas(text: str, keys: Mapping[str, str]) -> tuple[Limits | None, dict[str, Limits]]:
    """``OPENR2V_QUOTAS`` (JSON, or a path to a JSON file) -> (default limits, {API key: limits}).

    A key's entry is read over the default's fields. Keys not in the key ring are refused, so a
    typo cannot leave a key without its limits."""
    text = text.strip()
    if not text:
        return None, {}
    where = "OPENR2V_QUOTAS"
    if not text.startswith("{"):
        path = Path(text).expanduser()
        try:
            text = path.read_text()
        except OSError as e:
            raise ValueError(f"OPENR2V_QUOTAS: cannot read {path}: {e.strerror or e}.") from None
        where = str(path)
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{where} is not valid JSON: {e}.") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a JSON object: {{\"default\": {{...}}, \"<api key>\": {{...}}}}.")
    default = Limits.parse(data["default"], f"{where}.default") if "default" in data else None
    per_key: dict[str, Limits] = {}
    for key, value in data.items():
        if key == "default":
            continue
        if key not in keys:
            raise ValueError(f"{where}: {key[:6]}... is not a key of OPENR2V_API_KEYS.")
        per_key[key] = Limits.parse(value, f"{where}[{key[:6]}...]", default)
    return default, per_key


class QuotaBook:
    """The limits each key has: an admin's override from the store, else the configuration's.

    Overrides are read from the store at most every ``ttl`` seconds per key (a submit would otherwise
    pay a query for them): an admin's change applies at once on the node that took it, and within
    ``ttl`` on the others."""

    def __init__(self, store: Any, default: Limits | None, configured: Mapping[str, Limits],
                 ttl: float = 2.0) -> None:
        self.store = store  # a TaskStore (quota_override, set_quota_override, ...)
        self.default = default
        self.configured = dict(configured)  # {owner: Limits}
        self.ttl = ttl
        self._overrides: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def _override(self, owner: str) -> dict[str, Any] | None:
        now = time.monotonic()
        cached = self._overrides.get(owner)
        if cached is None or cached[0] <= now:
            cached = (now + self.ttl, self.store.quota_override(owner))
            self._overrides[owner] = cached
        return cached[1]

    def set_override(self, owner: str, limits: Limits, now: float) -> None:
        self.store.set_quota_override(owner, limits.as_dict(), now)
        self._overrides.pop(owner, None)

    def drop_override(self, owner: str) -> None:
        self.store.delete_quota_override(owner)
        self._overrides.pop(owner, None)

    def limits(self, owner: str) -> tuple[Limits | None, str]:
        """(limits, where they come from: admin | config | default | none)."""
        override = self._override(owner)
        if override is not None:
            return Limits.parse(override, "override"), "admin"
        if owner in self.configured:
            return self.configured[owner], "config"
        if self.default is not None:
            return self.default, "default"
        return None, "none"

    def status(self, owner: str, now: float) -> dict[str, Any]:
        """What a key may read about itself: limits, free quota, used and reserved amounts, what remains."""
        limits, source = self.limits(owner)
        used = self.store.quota_totals(owner, window_starts(now), state="used")
        held = self.store.quota_totals(owner, window_starts(now), state="reserved")
        out: dict[str, Any] = {"limits": limits.as_dict() if limits else None, "source": source, "windows": {}}
        free_cap = limits.free_seconds if limits else 0.0
        out["free"] = {"seconds": free_cap, "used": round(used.free_seconds, 3),
                       "reserved": round(held.free_seconds, 3),
                       "remaining": round(max(0.0, free_cap - used.free_seconds - held.free_seconds), 3)}
        for window in WINDOWS:
            entry: dict[str, Any] = {
                "billed_seconds": round(used.seconds[window], 3),
                "reserved_seconds": round(held.seconds[window], 3),
                "cost_usd": round(used.cost_usd[window], 4),
                "reserved_cost_usd": round(held.cost_usd[window], 4),
                "seconds_limit": None, "seconds_remaining": None, "cost_usd_limit": None, "cost_usd_remaining": None,
            }
            if limits is not None:
                if (cap := limits.seconds_cap(window)) is not None:
                    entry["seconds_limit"] = cap
                    entry["seconds_remaining"] = round(max(0.0, cap - used.seconds[window] - held.seconds[window]), 3)
                if (cap := limits.cost_cap(window)) is not None:
                    entry["cost_usd_limit"] = cap
                    entry["cost_usd_remaining"] = round(
                        max(0.0, cap - used.cost_usd[window] - held.cost_usd[window]), 4)
            if window != "total":
                entry["since"] = datetime.fromtimestamp(window_starts(now)[window], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            out["windows"][window] = entry
        return out
