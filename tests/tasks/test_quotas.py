"""The quota rules (tasks/quotas.py): configuration, free seconds first, which cap a charge breaks, windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from openr2v.domain.request import GenerationRequest, Reference
from openr2v.errors import QuotaExceeded
from openr2v.tasks.quotas import (
    WINDOWS,
    Admission,
    Limits,
    Totals,
    admit,
    parse_quotas,
    request_bill,
    window_starts,
)

KEYS = {"sk-a": "intl", "sk-b": "intl"}


def test_config_inline_or_file_with_defaults(tmp_path: Path) -> None:
    data = {"default": {"free_seconds": 50, "seconds_per_day": 600}, "sk-a": {"seconds_total": 10,
                                                                              "seconds_per_day": None}}
    default, per_key = parse_quotas(json.dumps(data), KEYS)
    assert default == Limits(free_seconds=50, seconds_per_day=600)
    assert per_key == {"sk-a": Limits(free_seconds=50, seconds_per_day=None, seconds_total=10)}
    path = tmp_path / "quotas.json"
    path.write_text(json.dumps(data))
    assert parse_quotas(str(path), KEYS) == (default, per_key)
    assert parse_quotas("", KEYS) == (None, {})


@pytest.mark.parametrize(("text", "words"), [
    ('{"sk-x": {}}', "is not a key of OPENR2V_API_KEYS"),
    ('{"sk-a": {"seconds_per_week": 1}}', "seconds_per_week is not a limit"),
    ('{"sk-a": {"cost_usd_total": -1}}', "cost_usd_total must be a number >= 0"),
    ('{"sk-a": {"free_seconds": null}}', "free_seconds must be a number >= 0."),
    ('{"sk-a": {"seconds_total": true}}', "seconds_total must be a number >= 0"),
    ('{"sk-a": {"seconds_total": 1e999}}', "seconds_total must be a number >= 0"),
    ('{"sk-a": [1]}', "must be an object of limits"),
    ("{nope", "is not valid JSON"),
    ("/no/such/quotas.json", "cannot read /no/such/quotas.json"),
])
def test_bad_config_names_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_quotas(text, KEYS)
    assert words in str(e.value)


def _totals(free: float = 0, seconds: float = 0, cost: float = 0) -> Totals:
    return Totals(free, dict.fromkeys(WINDOWS, seconds), dict.fromkeys(WINDOWS, cost))


def test_free_seconds_first_then_cost() -> None:
    limits = Limits(free_seconds=6, cost_usd_per_day=1.0)
    first = admit(limits, _totals(), 5, 0.5)
    assert (first.free_seconds, first.cost_usd) == (5, 0.0)
    second = admit(limits, _totals(free=5, seconds=5), 5, 0.5)  # 1 free second left: 4 s charged
    assert (second.free_seconds, second.cost_usd) == (1, 0.4)
    with pytest.raises(QuotaExceeded) as e:
        admit(limits, _totals(free=6, seconds=10, cost=0.8), 5, 0.5)
    assert e.value.code == "Arrearage" and e.value.http_status == 400
    assert "daily budget of 1 USD" in e.value.message and "0.8 USD are used or reserved" in e.value.message


def test_second_caps_count_free_seconds_and_each_window() -> None:
    assert admit(Limits(free_seconds=100, seconds_total=10), _totals(free=5, seconds=5), 5, 0.5).free_seconds == 5
    for field, word in (("seconds_per_day", "daily"), ("seconds_per_month", "monthly"), ("seconds_total", "total")):
        with pytest.raises(QuotaExceeded) as e:
            admit(Limits(free_seconds=100, **{field: 10}), _totals(free=6, seconds=6), 5, 0.5)
        assert f"{word} limit of 10 billed seconds" in e.value.detail and "bills up to 5 s" in e.value.detail


def test_windows_are_utc_day_and_month() -> None:
    now = datetime(2026, 12, 5, 23, 59, tzinfo=UTC).timestamp()
    starts = window_starts(now)
    assert starts["day"] == datetime(2026, 12, 5, tzinfo=UTC).timestamp()
    assert starts["month"] == datetime(2026, 12, 1, tzinfo=UTC).timestamp() and starts["total"] == 0


def test_the_reservation_is_an_upper_bound_of_the_bill() -> None:
    def req(kinds: list[str | None], **kw: object) -> GenerationRequest:
        refs = [Reference(kind=k, source=f"https://e.com/{i}", label=f"character{i + 1}")  # type: ignore[arg-type]
                for i, k in enumerate(kinds)]
        return GenerationRequest(model="wan2.6-r2v", size=(1280, 720), duration=5, references=refs, **kw)  # type: ignore[arg-type]

    assert request_bill(req(["image"]), "intl") == (5, 0.5)  # images are free; 720P at 0.10 USD/s
    assert request_bill(req(["video"]), "intl") == (10, 1.0)  # a video of unknown length: its 5 s cap
    assert request_bill(req(["video", None]), "intl")[0] == 10  # unknown kind: a video at the 2.5 s split


def test_a_check_reads_only_the_windows_its_caps_need() -> None:
    assert Admission(Limits(seconds_per_day=10), 5, 0.5).horizon() == "day"
    assert Admission(Limits(seconds_per_day=10, cost_usd_per_month=1), 5, 0.5).horizon() == "month"
    assert Admission(Limits(seconds_per_day=10, free_seconds=5), 5, 0.5).horizon() == "total"  # all-time free
    assert Admission(Limits(cost_usd_total=3), 5, 0.5).horizon() == "total"
