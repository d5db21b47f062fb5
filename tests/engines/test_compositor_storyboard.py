"""Storyboard images: a grid of panels is found, split in reading order, and each panel plates one shot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openr2v.engines.common.storyboard import find_grid
from tests import mediagen
from tests.engines.conftest import (
    draw_grid,
    draw_person,
    draw_place,
    frames_rgb,
    previz_job,
    render,
    resolved,
    shot_middles,
)

COLOURS = [(200, 60, 60), (60, 200, 60), (60, 60, 200), (200, 200, 60), (200, 60, 200), (60, 200, 200),
           (120, 120, 120), (240, 150, 50), (90, 40, 10)]
STORYBOARD = ("Reference image, 3D cartoon adventure style. Storyboard: 1. Wide shot: Tall trees in a forest. "
              "2. Medium shot: The boy pushes aside vines. 3. Medium shot: The robot flies beside him. "
              "4. Close-up: An old map unfolds. 5. Close-up: He looks excited. 6. Action shot: The two jump over "
              "roots. 7. Medium shot: A chest is revealed. 8. Close-up: A golden glow. 9. Final shot: They stand "
              "before the chest.")


@pytest.mark.parametrize(("rows", "cols", "gutter", "page"), [(3, 3, 16, (250, 250, 250)), (2, 2, 10, (0, 0, 0)),
                                                              (2, 3, 24, (255, 255, 255))])
def test_grid_panels_in_reading_order(rows: int, cols: int, gutter: int, page: tuple[int, int, int]) -> None:
    pw, ph = 400, 225
    grid = find_grid(draw_grid(rows, cols, (pw, ph), gutter, COLOURS, page=page))
    assert grid is not None and (grid.rows, grid.cols) == (rows, cols)
    for i, (x0, y0, x1, y1) in enumerate(grid.panels):
        r, c = divmod(i, cols)
        ex0, ey0 = gutter + c * (pw + gutter), gutter + r * (ph + gutter)
        # Inside the panel, within a few pixels of its edges.
        assert ex0 <= x0 <= ex0 + 4 and ey0 <= y0 <= ey0 + 4, (i, (x0, y0), (ex0, ey0))
        assert ex0 + pw - 4 <= x1 <= ex0 + pw and ey0 + ph - 4 <= y1 <= ey0 + ph, (i, (x1, y1))


def test_pictures_that_are_not_grids(tmp_path: Path) -> None:
    photo = Image.open(mediagen.make_image(tmp_path / "p.png", 1280, 720, seed=3))
    assert find_grid(photo) is None
    assert find_grid(draw_place(1280, 720, ((120, 150, 175), (90, 80, 70), (240, 240, 245)), 1)) is None
    assert find_grid(draw_person(480, 640, (200, 30, 30))) is None  # a flat backdrop is a margin, not a gutter
    # Panels of very different sizes are a layout, not a storyboard grid.
    page = Image.new("RGB", (1000, 600), (255, 255, 255))
    page.paste(Image.new("RGB", (700, 580), (200, 60, 60)), (10, 10))
    page.paste(Image.new("RGB", (270, 580), (60, 200, 60)), (720, 10))
    assert find_grid(page) is None


def test_a_storyboard_image_plates_one_shot_per_panel(tmp_path: Path) -> None:
    board = draw_grid(3, 3, (426, 240), 14, COLOURS)
    board.save(tmp_path / "board.png")
    refs = [resolved("reference image", tmp_path / "board.png")]
    path, notes = render(previz_job(tmp_path, refs, STORYBOARD, duration=9))
    assert notes["casting"]["reference image"]["role"] == "storyboard"
    assert notes["plan_mode"] == "storyboard"
    assert [s["plate"] for s in notes["shots"]] == [f"reference image panel {i}" for i in range(1, 10)]
    assert [s["framing"] for s in notes["shots"]] == ["wide", "medium", "medium", "close-up", "close-up", "action",
                                                      "medium", "close-up", "wide"]
    middles = shot_middles(notes)
    frames = frames_rgb(path, set(middles))
    for i, k in enumerate(middles):
        # The panel fills the frame: its colour (or its shape's complement) is what the frame is made of.
        rgb = frames[k].reshape(-1, 3).astype(np.int16)
        panel = np.array(COLOURS[i], dtype=np.int16)
        near = (np.abs(rgb - panel).max(axis=1) < 40) | (np.abs(rgb - (255 - panel)).max(axis=1) < 40)
        assert near.mean() > 0.9, (i, near.mean())


def test_a_storyboard_without_numbered_items_gets_a_shot_per_panel(tmp_path: Path) -> None:
    draw_grid(2, 2, (480, 270), 12, COLOURS[:4]).save(tmp_path / "board.png")
    refs = [resolved("reference image", tmp_path / "board.png")]
    path, notes = render(previz_job(tmp_path, refs, "Reference image, a short adventure.", duration=4))
    assert [s["plate"] for s in notes["shots"]] == [f"reference image panel {i}" for i in range(1, 5)]
    assert [s["frames"] for s in notes["shots"]] == [[0, 30], [30, 60], [60, 90], [90, 120]]
