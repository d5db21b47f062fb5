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


def test_per_model_pairs_are_parsed_once_for_every_setting(tmp_path: Path) -> None:
    from openr2v.config import parse_pairs
    from openr2v.engines import engine_resolver

    assert parse_pairs(" wan2.6-r2v = vace ,, wan2.7-r2v=compositor", "X") == {"wan2.6-r2v": "vace",
                                                                             "wan2.7-r2v": "compositor"}
    for text, words in (("wan2.6-r2v", "'wan2.6-r2v' is not model=engine"), ("=vace", "is not model=engine"),
                        ("a=b,a=c", "a is given twice")):
        with pytest.raises(ValueError, match=words):
            parse_pairs(text, "OPENR2V_ENGINE_OVERRIDES", "model=engine")
    # A malformed engine override stops start-up naming the setting (it used to be skipped silently).
    with pytest.raises(ValueError, match="OPENR2V_ENGINE_OVERRIDES: 'wan2.7-r2v:vace' is not model=engine"):
        engine_resolver(Settings(data_dir=tmp_path, engine_overrides="wan2.7-r2v:vace"))
