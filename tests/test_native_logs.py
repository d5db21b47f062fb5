"""Native libraries' start-up chatter is muted unless OPENR2V_NATIVE_LOGS asks for it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import numpy as np
from openr2v.engines.common import vision
assert vision.available() is None, vision.available()
vision.find_face(np.full((256, 256, 3), 128, np.uint8))
vision.person_mask(np.full((256, 256, 3), 128, np.uint8), 0)
print("done")
"""


def run(**env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "OPENR2V_NATIVE_LOGS"} | env
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=full, timeout=120)


def test_mediapipe_graphs_start_silently() -> None:
    done = run()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert done.stderr == ""


def test_the_setting_shows_them() -> None:
    done = run(OPENR2V_NATIVE_LOGS="1")
    assert done.returncode == 0, done.stderr
    if not done.stderr:
        pytest.fail("expected mediapipe's start-up lines on stderr with OPENR2V_NATIVE_LOGS=1 (is the check blind?)")
