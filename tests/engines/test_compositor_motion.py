"""Motion: speakers' mouths move with their speech, entrances walk in, videos replay their own motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openr2v.domain.prompt import Line
from openr2v.engines.compositor.motion import fallback_envelopes, make_motion
from tests.engines.conftest import SHIRTS, colour_share, frames_rgb, previz_job, render, resolved

SKIN = (232, 190, 160)
LIPS = (120, 40, 40)  # the drawn people's mouths (tests/engines/conftest.py)


def _box_of(frame: np.ndarray, colour: tuple[int, int, int], tolerance: int = 30) -> tuple[int, int, int, int]:
    mask = np.abs(frame.astype(np.int16) - np.array(colour, np.int16)).max(axis=2) <= tolerance
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _centroid_x(frame: np.ndarray, colour: tuple[int, int, int]) -> float | None:
    mask = np.abs(frame.astype(np.int16) - np.array(colour, np.int16)).max(axis=2) <= 45
    return float(np.nonzero(mask)[1].mean()) if mask.sum() > 500 else None


def test_the_speakers_mouth_moves_inside_its_line_only(tmp_path: Path, previz_dir: Path) -> None:
    # The default voice (Piper where installed): its loudness moves little between syllables, so the drawn
    # mouth must follow the phonemes (open on vowels, nearly shut on the consonants between), not the volume.
    refs = [resolved("Image 1", previz_dir / "red.png"), resolved("Image 2", previz_dir / "room.png")]
    prompt = "Close-up of Image 1 in Image 2. Image 1 says: 'Hello there, it is really good to see you again today.'"
    path, notes = render(previz_job(tmp_path, refs, prompt, shot_type="single", duration=5))
    (line,) = notes["lines"]
    assert line["speaker"] == "Image 1" and 0 <= line["start"] < line["end"] <= 5
    frames = frames_rgb(path)
    grey = {k: f.astype(np.float32).mean(axis=2) for k, f in frames.items()}
    x0, y0, x1, y1 = _box_of(frames[0], SKIN)  # the face and neck: the speaker's head region
    energy = np.array([np.abs(grey[k][y0:y1, x0:x1] - grey[k - 1][y0:y1, x0:x1]).mean() for k in range(1, 150)])
    t = np.arange(1, 150) / 30
    inside = (t >= line["start"] + 0.1) & (t < line["end"] - 0.1)
    outside = (t < line["start"] - 0.05) | (t >= line["end"] + 0.3)
    assert inside.sum() > 20 and outside.sum() > 5
    # Medians: idle motion moves the head a whole pixel now and then; speech moves the mouth all the time.
    assert np.median(energy[inside]) > 3 * np.median(energy[outside]) + 0.05, (energy[inside], energy[outside])


def test_fallback_envelopes_follow_the_plan_windows() -> None:
    env = fallback_envelopes([Line("character1", "hi", start=1.0, end=2.0), Line(None, "narration", start=0, end=1)],
                             frames=90, fps=30)
    assert set(env) == {"character1"}
    e = env["character1"]
    assert (e[:30] == 0).all() and (e[60:] == 0).all()
    assert e[30:60].min() > 0.3 and e[30:60].std() > 0.1  # a syllable rhythm, not a flat 1


def test_idle_motion_is_seeded_and_gentle() -> None:
    a, b = make_motion("x", 0, 1, 30, 600.0, video=False), make_motion("x", 0, 2, 30, 600.0, video=False)
    assert a.breath != b.breath and a.sway != b.sway
    moves = [a.matrix(k, (640.0, 720.0)) for k in range(0, 300, 10)]
    assert 0 < max(abs(m[0, 2]) for m in moves) < 6  # a sway of a few pixels
    assert max(abs(m[1, 1] - 1) for m in moves) < 0.01  # breathing: under 1% stretch
    assert (make_motion("v", 0, 1, 30, 600.0, video=True).matrix(40, (0.0, 0.0)) == np.eye(3)).all()


def test_an_entrance_walks_in_from_the_named_side(tmp_path: Path, previz_dir: Path) -> None:
    refs = [resolved("Image 1", previz_dir / "red.png"), resolved("Image 2", previz_dir / "room.png")]
    path, _ = render(previz_job(tmp_path, refs, "Image 1 walks in from the left in Image 2.", shot_type="single",
                                duration=3))
    frames = frames_rgb(path, {0, 12, 24, 60, 89})
    assert colour_share(frames[0], SHIRTS["red"]) < 0.001  # still outside the frame
    xs = [_centroid_x(frames[k], SHIRTS["red"]) for k in (12, 24, 60, 89)]
    assert all(x is not None for x in xs)
    assert xs[0] < xs[1] < xs[2] and abs(xs[3] - xs[2]) < 30  # comes in from the left, then stays


def test_an_exit_walks_out(tmp_path: Path, previz_dir: Path) -> None:
    refs = [resolved("Image 1", previz_dir / "red.png"), resolved("Image 2", previz_dir / "room.png")]
    path, _ = render(previz_job(tmp_path, refs, "Image 1 waves in Image 2, then walks out to the right.",
                                shot_type="single", duration=3))
    frames = frames_rgb(path, {15, 89})
    assert colour_share(frames[15], SHIRTS["red"]) > 0.03 and colour_share(frames[89], SHIRTS["red"]) < 0.001


def test_a_video_reference_replays_its_own_motion(tmp_path: Path, previz_dir: Path) -> None:
    place = resolved("Image 2", previz_dir / "room.png")
    moving, _ = render(previz_job(tmp_path, [resolved("Video 1", previz_dir / "green.mp4"), place],
                                  "Video 1 waves in Image 2.", "video", shot_type="single", duration=2))
    still, _ = render(previz_job(tmp_path, [resolved("Image 1", previz_dir / "green.png"), place],
                                 "Image 1 waves in Image 2.", "image", shot_type="single", duration=2))

    def wobble(path: Path) -> float:
        """How much the drawn mouth (its own colour, not the speech overlay's) changes over the shot."""
        frames = frames_rgb(path, set(range(10, 50)))
        share = np.array([colour_share(frames[k], LIPS, tolerance=30) for k in range(10, 50)])
        return float(share.std())

    # The video's mouth opens and closes and its arm waves (its own frames); the image's only breathes.
    assert wobble(moving) > 3 * wobble(still) + 1e-4, (wobble(moving), wobble(still))
