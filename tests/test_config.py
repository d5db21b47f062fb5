"""Settings: deprecated environment names keep working, with a warning; the reference page is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from openr2v.config import Settings


def test_old_workers_variable_still_sets_render_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENR2V_RENDER_THREADS", raising=False)
    monkeypatch.setenv("OPENR2V_WORKERS", "5")
    with pytest.warns(DeprecationWarning, match="OPENR2V_WORKERS is deprecated; use OPENR2V_RENDER_THREADS"):
        assert Settings().render_threads == 5


def test_the_new_name_wins_over_the_old(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENR2V_WORKERS", "5")
    monkeypatch.setenv("OPENR2V_RENDER_THREADS", "3")
    with pytest.warns(DeprecationWarning, match="is set and wins"):
        assert Settings().render_threads == 3


def test_no_warning_without_old_names(monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder) -> None:
    monkeypatch.delenv("OPENR2V_WORKERS", raising=False)
    monkeypatch.setenv("OPENR2V_RENDER_THREADS", "4")
    assert Settings().render_threads == 4
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]


def test_configuration_reference_is_current() -> None:
    """docs/configuration.md is generated from config.py; a new or changed setting must regenerate it."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "config_reference.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
