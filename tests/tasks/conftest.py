"""Fixtures of the task-layer tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL on each backend."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_db").url)
    return f"sqlite:///{tmp_path / 'db.sqlite'}"
