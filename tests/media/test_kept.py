"""Kept arrays: made once per arguments, shared read-only, the oldest dropped past the limit."""

from __future__ import annotations

import numpy as np
import pytest

from openr2v.media.kept import Kept, kept_arrays


def test_an_array_is_made_once_shared_read_only_and_dropped_when_oldest() -> None:
    made: list[int] = []

    @kept_arrays(maxsize=2)
    def ramp(n: int) -> np.ndarray:
        made.append(n)
        return np.arange(n, dtype=np.float32)

    first = ramp(3)
    assert ramp(3) is first and made == [3]
    with pytest.raises(ValueError):
        first[0] = 9.0
    ramp(4), ramp(5)  # 3 is now the oldest of three: dropped
    assert made == [3, 4, 5]
    again = ramp(3)
    assert again is not first and np.array_equal(again, first) and made == [3, 4, 5, 3]


def test_values_are_kept_by_the_key_given_and_dropped_when_oldest() -> None:
    kept: Kept[str] = Kept(maxsize=2)
    made: list[str] = []

    def make(text: str) -> str:
        made.append(text)
        return text.upper()

    assert kept.get("digest-a", lambda: make("a")) == "A"
    assert kept.get("digest-a", lambda: make("another path, same bytes")) == "A" and made == ["a"]
    kept.get("digest-b", lambda: make("b"))
    kept.get("digest-a", lambda: make("a"))  # used: now the newest
    kept.get("digest-c", lambda: make("c"))  # b, the oldest, is dropped
    kept.get("digest-a", lambda: make("a"))
    kept.get("digest-b", lambda: make("b"))
    assert made == ["a", "b", "c", "b"]
    kept.clear()
    kept.get("digest-a", lambda: make("a"))
    assert made == ["a", "b", "c", "b", "a"]
