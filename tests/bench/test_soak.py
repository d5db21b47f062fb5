"""bench/soak.py in short (about 90 s): the same mixed load and the same criteria as ``make soak``.

The script runs as its own process against its own ``openr2v serve`` (embedded default) and
reports JSON; this test checks the criteria from it. It needs nothing outside the venv, so it
never skips. Over one measured minute (about 60 tasks) only a steep leak shows, and RSS may still
be settling after a 20 s warm-up (it moves by a few tens of MB between samples), so the RSS bound is
150 MB instead of 50: a leak of 3 MB per task still fails it. fds and threads must be as flat as in
the long run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_short_soak_meets_the_criteria() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "soak.py"), "--minutes", "1", "--warmup", "20",
         "--sample-seconds", "2", "--rss-growth-mb", "150", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=840)
    assert proc.stdout.strip(), f"no JSON report (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    report = json.loads(proc.stdout)
    figures = proc.stderr[-6000:]  # the printed report, shown when an assertion fails
    criteria = {c["name"]: c for c in report["criteria"]}
    tasks = report["tasks"]

    assert tasks["submitted"] >= 10, figures
    assert tasks["terminal"] == tasks["submitted"], figures
    assert criteria["every task ended as expected"]["ok"], tasks["not_as_expected"]
    assert report["valid_errors"] == 0, report["error_samples"]
    assert report["bad_unexpected"] == 0, report["error_samples"]
    assert any(k.startswith("bad: ") for k in report["requests"]), figures
    # Every dialect and every kind of task went through.
    assert set(tasks["by_kind"]) >= {"ds26-url", "ds27", "ds-badref", "aggregator", "gateway", "openai-json",
                                     "openai-multipart"}, figures
    assert tasks["by_status"].get("SUCCEEDED", 0) > 0, figures
    assert criteria["no traceback in the server log"]["ok"], report.get("server_log_tail")
    assert criteria["open files flat"]["ok"], figures
    assert criteria["threads flat"]["ok"], figures
    assert criteria["RSS flat"]["ok"], figures
    assert report["passed"] and proc.returncode == 0, figures
