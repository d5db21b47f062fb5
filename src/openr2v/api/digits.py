"""Whole numbers from wire text: one leaf module, importable by every dialect's translate module."""

from __future__ import annotations

import re

__all__ = ["small_int"]

_DIGITS = re.compile(r"[0-9]{1,9}")


def small_int(text: str) -> int | None:
    """A whole number written in 1 to 9 ASCII digits (surrounding spaces allowed), else None.

    Not ``str.isdigit``: it takes "²", which ``int`` refuses, and any length, which ``int`` refuses
    past 4300 digits; either was a 500 where the client deserves a 400."""
    text = text.strip()
    return int(text) if _DIGITS.fullmatch(text) else None
