"""The compositor's building blocks: layer blending, cover fitting, video resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openr2v.engines.common.cards import Layer, feather_mask
from openr2v.engines.common.sources import cover_box, video_frames
from openr2v.media.encode import rgb_to_yuv420, yuv420_planes
from tests import mediagen


def _reference_blend(dst: np.ndarray, layer_rgb: np.ndarray, alpha: np.ndarray, x: int, y: int) -> np.ndarray:
    """The same composite done the slow, obvious way: float blend of every pixel of every plane."""
    out = dst.astype(np.float64).copy()
    planes_out = yuv420_planes(out)
    src = [p.astype(np.float64) for p in yuv420_planes(rgb_to_yuv420(layer_rgb))]
    h, w = alpha.shape
    a_c = alpha.reshape(h // 2, 2, w // 2, 2).astype(np.float64).mean(axis=(1, 3))
    for plane, s, a, (px, py) in zip(planes_out, src, (alpha.astype(np.float64), a_c, a_c),
                                     ((x, y), (x // 2, y // 2), (x // 2, y // 2)), strict=True):
        region = plane[py:py + s.shape[0], px:px + s.shape[1]]
        region[:] = s * a / 255 + region * (1 - a / 255)
    return out


def test_layer_fast_path_matches_a_plain_blend() -> None:
    rng = np.random.default_rng(0)
    frame = rgb_to_yuv420(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    rgb = rng.integers(0, 256, (120, 96, 3), dtype=np.uint8)
    mask = feather_mask(96, 120, feather=10, radius=12)
    assert mask[60, 48] == 255 and mask[0, 0] == 0
    expected = _reference_blend(frame, rgb, mask, 51, 33)
    Layer([rgb], mask).draw(frame, 51, 33)
    assert np.abs(frame.astype(np.float64) - expected).max() <= 1.0


def test_layer_clips_at_the_frame_edge() -> None:
    frame = np.full((180, 160), 16, np.uint8)  # a 160 x 120 picture
    layer = Layer([np.full((40, 40, 3), 255, np.uint8)], np.full((40, 40), 255, np.uint8))
    layer.draw(frame, 140, 100)  # only a 20 x 20 corner is inside
    y, _, _ = yuv420_planes(frame)
    assert (y[100:, 140:] > 200).sum() == 400 and (y[:100] == 16).all() and (y[:, :140] == 16).all()
    layer.draw(frame, 500, 500)  # wholly outside: nothing happens


def test_layer_opacity_and_loop() -> None:
    black, white = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    layer = Layer([black, white], np.full((8, 8), 255, np.uint8))
    assert layer.frame_count == 2
    frame = rgb_to_yuv420(np.zeros((16, 16, 3), np.uint8))
    layer.draw(frame, 0, 0, index=3, opacity=0.5)  # index 3 loops to the white picture
    y = yuv420_planes(frame)[0]
    assert 120 < y[4, 4] < 140  # half way between black (16) and white (235)


def test_layer_needs_even_sides() -> None:
    with pytest.raises(ValueError, match="even"):
        Layer([np.zeros((9, 8, 3), np.uint8)], np.zeros((9, 8), np.uint8))


def test_cover_box_crops_the_centre() -> None:
    assert cover_box(800, 600, 1280, 720) == pytest.approx((0, 75, 800, 525))
    assert cover_box(600, 800, 600, 600) == pytest.approx((0, 100, 600, 700))


def test_video_frames_resample_to_the_output_rate(tmp_path: Path) -> None:
    clip = mediagen.make_video(tmp_path / "24.mp4", 320, 240, 1.0, fps=24, audio=False, seed=2)
    frames = list(video_frames(clip, 64, 48, 30, 1000, label="character1"))
    assert len(frames) == 30  # one second at 30 fps
    assert len({id(f) for f in frames}) == 24  # every source frame used, some held twice
    assert frames[0].shape == (48, 64, 3)
    assert len(list(video_frames(clip, 64, 48, 30, 10, label="c"))) == 10  # the cap
