"""Settings: deprecated environment names keep working, with a warning."""

from __future__ import annotations

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
