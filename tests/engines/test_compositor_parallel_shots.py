"""OPENR2V_PARALLEL_SHOTS: a 4-shot task's shots render side by side (2 workers) and join with hard cuts into
the same bytes as the shots rendered one after the other (1 worker); the audio is the whole task's, made once."""

from __future__ import annotations

from pathlib import Path

from openr2v.engines.compositor import CompositorEngine
from tests.engines.conftest import detect_cuts, previz_job, render, resolved
from tests.helpers import assert_contract_mp4

PROMPT = ("Shot 1 [0-1s]: Wide shot. Image 1 waves in Image 3. "
          "Shot 2 [1-2s]: Image 2 walks in from the left in Image 4. "
          "Shot 3 [2-3s]: Close-up of Image 1 in Image 5, saying: 'We made it!' "
          "Shot 4 [3-4s]: Image 2 in Image 3, the camera zooms in.")


def _job(tmp_path: Path, previz_dir: Path, name: str) -> object:
    refs = [resolved("Image 1", previz_dir / "red.png"), resolved("Image 2", previz_dir / "blue.png"),
            resolved("Image 3", previz_dir / "room.png"), resolved("Image 4", previz_dir / "studio.png"),
            resolved("Image 5", previz_dir / "garden.png")]
    return previz_job(tmp_path, refs, PROMPT, name, duration=4, audio=True, width=640, height=360)


def test_four_shots_on_two_workers_are_the_serial_bytes(tmp_path: Path, previz_dir: Path) -> None:
    serial = CompositorEngine(preset="ultrafast", parallel_shots=True, shot_workers=1)
    parallel = CompositorEngine(preset="ultrafast", parallel_shots=True, shot_workers=2)
    one, one_notes = render(_job(tmp_path, previz_dir, "serial"), serial)  # type: ignore[arg-type]
    two, two_notes = render(_job(tmp_path, previz_dir, "parallel"), parallel)  # type: ignore[arg-type]
    assert one.read_bytes() == two.read_bytes()
    assert_contract_mp4(two, 640, 360, 4, audio=True)
    assert [s["frames"] for s in two_notes["shots"]] == [[0, 30], [30, 60], [60, 90], [90, 120]]
    # Side by side: with 2 workers a shot starts before the one before it has finished; with 1, never.
    windows = [s["seconds"] for s in two_notes["shots"]]
    assert any(b[0] < a[1] for a, b in zip(windows, windows[1:], strict=False)), windows
    serial_windows = [s["seconds"] for s in one_notes["shots"]]
    assert all(b[0] >= a[1] for a, b in zip(serial_windows, serial_windows[1:], strict=False)), serial_windows
    found = detect_cuts(two)
    assert len(found) == 3 and all(abs(f - c) <= 1 for f, c in zip(found, [30, 60, 90], strict=True)), found
    assert not list(two.parent.glob(".shot-*.mp4"))  # segments removed after the join
