"""The previz follows the shot plan: hard cuts exactly at the planned frames and nowhere else.

Each shot is on a different set, so every cut is a clear change of content; inside the shots the
camera drifts, zooms and pans and a character walks in, none of which may read as a cut.
"""

from __future__ import annotations

from pathlib import Path

from openr2v.domain.prompt import plan_prompt
from tests.engines.conftest import detect_cuts, previz_job, render, resolved
from tests.helpers import assert_contract_mp4

PROMPT = ("Shot 1 [0-1.5s]: Wide shot. Image 1 waves in Image 3. "
          "Shot 2 [1.5-3s]: Image 2 walks in from the left in Image 4, the camera zooms in. "
          "Shot 3 [3-5s]: Close-up of Image 1 in Image 5 as the camera pans left, saying: 'We made it at last!'")


def _refs(previz_dir: Path) -> list:
    return [resolved("Image 1", previz_dir / "red.png"), resolved("Image 2", previz_dir / "blue.png"),
            resolved("Image 3", previz_dir / "room.png"), resolved("Image 4", previz_dir / "studio.png"),
            resolved("Image 5", previz_dir / "garden.png")]


def test_hard_cuts_at_the_planned_frames_only(tmp_path: Path, previz_dir: Path) -> None:
    path, notes = render(previz_job(tmp_path, _refs(previz_dir), PROMPT))
    assert_contract_mp4(path, 1280, 720, 5, audio=False)
    assert [s["frames"] for s in notes["shots"]] == [[0, 45], [45, 90], [90, 150]]
    assert [s["plate"] for s in notes["shots"]] == ["Image 3", "Image 4", "Image 5"]
    assert [s["framing"] for s in notes["shots"]] == ["wide", "medium", "close-up"]
    assert notes["shots"][0]["camera"].startswith("drift") and [s["camera"] for s in notes["shots"][1:]] == [
        "zoom in", "pan left"]
    found = detect_cuts(path)
    assert len(found) == 2, found  # no false cut from the zoom, the pan or the entrance
    assert all(abs(f - planned) <= 1 for f, planned in zip(found, [45, 90], strict=True)), found


def test_a_recorded_plan_is_followed(tmp_path: Path, previz_dir: Path) -> None:
    """The worker hands the plan recorded at submit; the engine draws that plan, not its own reading."""
    refs = _refs(previz_dir)
    plan = plan_prompt(PROMPT, [r.label for r in refs], 5, "multi", seed=1)
    plan.shots[0].end = plan.shots[1].start = 2.0  # a plan that differs from what the prompt alone gives
    job = previz_job(tmp_path, refs, PROMPT, plan=plan.as_dict())
    path, notes = render(job)
    assert [s["frames"] for s in notes["shots"]] == [[0, 60], [60, 90], [90, 150]]
    found = detect_cuts(path)
    assert len(found) == 2 and abs(found[0] - 60) <= 1 and abs(found[1] - 90) <= 1, found
