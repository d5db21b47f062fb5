"""Numbers from wire text: one leaf module, importable by every dialect's translate module."""

from __future__ import annotations

import re

__all__ = ["parse_size", "small_int"]


def small_int(text: str, digits: int = 9) -> int | None:
    """A whole number written in 1 to ``digits`` ASCII digits (surrounding spaces allowed), else None.

    Not ``str.isdigit``: it takes "²", which ``int`` refuses, and any length, which ``int`` refuses
    past 4300 digits; either was a 500 where the client deserves a 400."""
    text = text.strip()
    return int(text) if re.fullmatch(f"[0-9]{{1,{digits}}}", text) else None


def parse_size(text: str | None, separators: str = "*") -> tuple[int, int] | None:
    """``WIDTH<sep>HEIGHT`` with any of ``separators`` as two whole numbers, else None; each dialect
    words its own refusal."""
    if not text:
        return None
    parts = re.split(f"[{re.escape(separators)}]", text)
    dims = [small_int(p) for p in parts]
    if len(dims) != 2 or dims[0] is None or dims[1] is None:
        return None
    return dims[0], dims[1]
