"""Staging and camera: where actors stand, what each framing word shows, how the camera moves."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from openr2v.engines.common.casting import Role
from openr2v.engines.common.vision import Face
from openr2v.engines.compositor.blend import CROP_SLACK, Picture, blend, draw_picture, drawn_matrix, planes_of
from openr2v.engines.compositor.camera import Subject, View, framing_view, keep_heads, plan_camera
from openr2v.engines.compositor.cutouts import Cutout
from openr2v.engines.compositor.staging import hand_point, stage_order, stage_shot

W, H = 1280, 720


def cutout(label: str, w: int = 400, h: int = 600, *, bottom: bool = True) -> Cutout:
    a = np.full((h, w), 255, np.uint8)
    pic = Picture(np.full((h, w), 120, np.uint8), np.full((h // 2, w // 2), 128, np.uint8),
                  np.full((h // 2, w // 2), 128, np.uint8), a)
    face = Face(w * 0.35, h * 0.05, w * 0.3, h * 0.2, (w * 0.5, h * 0.2), 0.9)
    return Cutout(label, "selfie_segmentation", [pic], np.zeros(1, np.int32), [face], True, bottom)


def test_characters_keep_one_order_and_stand_in_the_frame() -> None:
    roles = {"a": Role("a", "character", ""), "b": Role("b", "character", "", side="left"),
             "c": Role("c", "character", "", side="right"), "t": Role("t", "object", "", holder="a")}
    order = stage_order(roles)
    assert order == ["b", "a", "c"]
    cuts = {k: cutout(k) for k in "abc"} | {"t": cutout("t", 300, 300, bottom=False)}
    places = stage_shot(["a", "b", "c"], roles, order, cuts, W, H, seed=1, window_x=None)
    chars = [p for p in places if p.role == "character"]
    assert [p.label for p in chars] == ["b", "a", "c"]  # left to right
    assert all(0 <= p.box[0] and p.box[2] <= W for p in chars)
    xs = [p.anchor[0] for p in chars]
    assert xs == sorted(xs) and min(np.diff(xs)) >= 0.2 * W
    # Busts run off the bottom of the frame with the head near the top: large and readable.
    assert all(p.box[3] > H and p.box[1] < 0.2 * H for p in chars)
    held = [p for p in places if p.role == "object"]
    assert [p.label for p in held] == ["t"] and places[-1].label == "t"  # drawn in front of its holder
    hx, hy = hand_point(next(p for p in chars if p.label == "a"), W, H)
    assert held[0].anchor == pytest.approx((hx, hy))


def test_a_character_by_the_window_stands_at_it() -> None:
    roles = {"a": Role("a", "character", "", side="window"), "b": Role("b", "character", "")}
    cuts = {"a": cutout("a"), "b": cutout("b")}
    places = {p.label: p for p in stage_shot(["a", "b"], roles, stage_order(roles), cuts, W, H, 1, window_x=900.0)}
    assert abs(places["a"].anchor[0] - 900) < 0.12 * W and places["b"].anchor[0] < places["a"].anchor[0]


def test_placed_objects_stand_beside_their_neighbour() -> None:
    roles = {"a": Role("a", "character", ""), "o": Role("o", "object", "", near="a")}
    cuts = {"a": cutout("a"), "o": cutout("o", 300, 300, bottom=False)}
    places = {p.label: p for p in stage_shot(["a", "o"], roles, ["a"], cuts, W, H, 1, None)}
    a, o = places["a"].box, places["o"].box
    assert o[0] >= a[2] - 1 or o[2] <= a[0] + 1  # beside, not on top
    assert abs(o[3] - 0.96 * H) < 0.02 * H  # standing on the floor
    alone = stage_shot(["o"], roles, ["a"], cuts, W, H, 1, None)
    assert [p.label for p in alone] == ["o"] and alone[0].height == pytest.approx(0.5 * H)


def _subjects() -> list[Subject]:
    return [Subject("a", (200, 90, 600, 740), (330, 120, 120, 140)), Subject("b", (700, 90, 1100, 740),
                                                                            (830, 120, 120, 140))]


def test_framing_words() -> None:
    wide = framing_view("wide", _subjects(), None, W, H)
    assert (wide.x, wide.y, wide.w, wide.h) == (0, 0, W, H)
    close = framing_view("close-up", _subjects(), "b", W, H)
    assert close.h == pytest.approx(2.1 * 140) and close.x < 830 and close.x + close.w > 950  # b's face fills it
    medium = framing_view("medium", _subjects(), None, W, H)
    assert medium.w < W and medium.x <= 200 and medium.x + medium.w >= 1000 * 0.99
    for framing in ("wide", "medium", "close-up", "overhead", "action"):
        v = framing_view(framing, _subjects(), "a", W, H)
        assert 0 <= v.x and v.x + v.w <= W + 1e-6 and 0 <= v.y and v.y + v.h <= H + 1e-6
        assert v.w / v.h == pytest.approx(W / H)


@pytest.mark.parametrize(("camera", "check"), [
    ("zoom in", lambda a, b: b.w < a.w), ("zoom out", lambda a, b: b.w > a.w),
    ("pan left", lambda a, b: b.x < a.x and b.w == pytest.approx(a.w)),
    ("pan right", lambda a, b: b.x > a.x and b.w == pytest.approx(a.w)),
])
def test_camera_words_move_the_view(camera: str, check: object) -> None:
    for framing in ("wide", "medium"):
        move = plan_camera(framing, camera, _subjects(), None, W, H, np.random.default_rng(1))
        assert check(move.start, move.end), (framing, camera, move)  # type: ignore[operator]


def test_default_drift_is_gentle_and_seeded() -> None:
    moves = [plan_camera("medium", None, _subjects(), None, W, H, np.random.default_rng(s)) for s in range(8)]
    assert len({(round(m.end.x), round(m.end.w)) for m in moves}) > 1  # seeds choose different drifts
    for m in moves:
        assert abs(m.end.w / m.start.w - 1) <= 0.06 and abs(m.end.x - m.start.x) <= 0.06 * W
    first = plan_camera("close-up", None, _subjects(), "a", W, H, np.random.default_rng(1), from_full=True)
    assert first.start == View(0, 0, W, H) and first.end.w < W  # a first frame opens the shot, then it pushes in


def test_blend_is_exact_and_sprites_land_where_asked() -> None:
    rng = np.random.default_rng(0)
    dst, src = rng.integers(0, 256, (60, 80), dtype=np.uint8), rng.integers(0, 256, (60, 80), dtype=np.uint8)
    alpha = rng.integers(0, 256, (60, 80), dtype=np.uint8)
    alpha[:10], alpha[10:20] = 255, 0
    expected = np.round(src * (alpha / 255) + dst * (1 - alpha / 255))
    out = dst.copy()
    blend(out, src, alpha)
    assert np.abs(out.astype(np.int16) - expected).max() <= 1
    buf = np.zeros((720 * 3 // 2, 1280), np.uint8)
    frame = planes_of(buf)
    pic = cutout("p", 100, 200).pictures[0]
    draw_picture(frame, pic, np.array([[1.5, 0, 301.0], [0, 1.5, 99.0]]))
    ys, xs = np.nonzero(frame[0] == 120)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (301, 99, 451, 399)
    # Mostly off the frame (a close-up's body): only the visible part is drawn (a crop, resized).
    draw_picture(frame, pic, np.array([[10.0, 0, -300.0], [0, 10.0, -1500.0]]))
    assert (frame[0][:200, :690] == 120).all() and (frame[0][:200, 710:] == 0).all()


@pytest.mark.parametrize("angle", [0.0, 0.15])
def test_a_still_picture_warped_from_its_interleaved_planes_is_the_same(angle: float) -> None:
    """A still picture is warped from its 4-channel copy (a third of the cost): the pixels are those of warping each
    plane, also where the subject runs off the picture's edge (no streak past it, no dark fringe along it)."""
    rng = np.random.default_rng(7)
    h, w = 288, 256
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2 + 50), (100, 165), 0, 0, 360, (255,), -1)
    alpha = cv2.GaussianBlur(mask, (0, 0), 2)
    alpha[-20:, 50:200] = 255  # a bust: the body is cut by the picture's bottom edge
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 1.2)
    c, s = 3.1 * np.cos(angle), 3.1 * np.sin(angle)
    m = np.array([[c, -s, -260.3], [s, c, -80.6]])  # mostly off the frame, or turned: warped either way
    base = rng.integers(0, 256, (720 * 3 // 2, 1280), dtype=np.uint8)
    drawn = []
    for still in (False, True):
        buf = base.copy()
        draw_picture(planes_of(buf), Picture.from_rgb(rgb, alpha), m, still=still)
        drawn.append(buf)
    assert not np.array_equal(drawn[0], base)
    assert np.array_equal(drawn[0], drawn[1])


@pytest.mark.parametrize("offset", [(-260.3, -80.6), (-261.13, -79.94), (-500.5, -240.25), (-300.7, -3.35)])
def test_a_picture_mostly_off_the_frame_is_resized_where_it_shows_as_a_warp_would_draw_it(
        offset: tuple[float, float]) -> None:
    """An axis-aligned picture mostly off the frame (a close-up's neighbour) is resized only where it shows, at
    exactly its scale and within CROP_SLACK of its place: the pixels a warp by its drawn matrix gives."""
    rng = np.random.default_rng(7)
    h, w = 288, 256
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2 + 50), (100, 165), 0, 0, 360, (255,), -1)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    pic = Picture.from_rgb(rgb, cv2.GaussianBlur(mask, (0, 0), 2))
    m = np.array([[3.1, 0, offset[0]], [0, 3.1, offset[1]]])
    drawn = drawn_matrix(pic.size, m, (720, 1280))
    assert np.abs(drawn[:2, 2] - m[:, 2]).max() <= CROP_SLACK
    base = rng.integers(0, 256, (720 * 3 // 2, 1280), dtype=np.uint8)
    resized, warped = base.copy(), base.copy()
    draw_picture(planes_of(resized), pic, m)
    c, s = np.cos(1e-9), np.sin(1e-9)  # turned by a hair: warped
    draw_picture(planes_of(warped), pic, np.array([[3.1 * c, -3.1 * s, drawn[0, 2]], [3.1 * s, 3.1 * c, drawn[1, 2]]]))
    assert not np.array_equal(resized, base)
    diff = np.abs(resized.astype(np.int16) - warped)
    assert diff[:720].mean() < 0.1 and np.percentile(diff[:720], 99.9) <= 2
    assert diff[720:].mean() < 0.5


def test_a_still_picture_drawn_again_blends_as_a_fresh_one() -> None:
    """A kept resize reuses its coverage (per visible window); the pixels are those of a fresh blend."""
    rng = np.random.default_rng(3)
    pic = cutout("p", 100, 200).pictures[0]
    pic.a[:] = rng.integers(0, 256, pic.a.shape, dtype=np.uint8)  # partial alpha everywhere: every pixel an edge
    pic.ac[:] = rng.integers(0, 256, pic.ac.shape, dtype=np.uint8)
    for m in (np.array([[1.5, 0, 301.0], [0, 1.5, 99.0]]), np.array([[1.5, 0, -40.0], [0, 1.5, 99.0]]),
              np.array([[1.5, 0, 301.0], [0, 1.5, 99.0]])):  # inside, cut by the left edge, inside again
        background = rng.integers(0, 256, (720 * 3 // 2, 1280), dtype=np.uint8)
        kept, fresh = background.copy(), background.copy()
        draw_picture(planes_of(kept), pic, m, still=True)
        draw_picture(planes_of(kept), pic, m, still=True)  # the second draw blends with the kept coverage
        draw_picture(planes_of(fresh), pic, m)
        draw_picture(planes_of(fresh), pic, m)
        assert (kept == fresh).all()


@pytest.mark.parametrize("m", [np.array([[1.53, 0, 301.3], [0, 1.53, 99.6]]),  # a resize (whole pixels)
                               np.array([[2.05, 0, -50.4], [0, 2.05, 30.7]]),  # larger: rounding moves it ~1 px
                               np.array([[1.5, 0.05, 300.2], [-0.05, 1.5, 99.4]]),  # a rotation: a warp
                               np.array([[3.137, 0, -512.3], [0, 3.137, -398.55]])])  # mostly off: a crop resized
def test_drawn_matrix_is_where_the_picture_lands(m: np.ndarray) -> None:
    """What is drawn over a picture (a face's warp) uses ``drawn_matrix``: it must match the pixels drawn."""
    pic = cutout("p", 400, 300).pictures[0]
    pic.y[:] = 20
    pic.y[200:204, 280:284] = 235  # a bright 4x4 spot whose centre is at (281.5, 201.5)
    buf = np.zeros((720 * 3 // 2, 1280), np.uint8)
    draw_picture(planes_of(buf), pic, m, still=True)
    frame = planes_of(buf)[0].astype(np.float64)
    spot = np.clip(frame - 20, 0, None) * (frame > 60)
    ys, xs = np.nonzero(spot)
    centre = np.array([(xs * spot[ys, xs]).sum(), (ys * spot[ys, xs]).sum()]) / spot[ys, xs].sum()
    expected = (drawn_matrix(pic.size, m, buf[:720].shape) @ (281.5, 201.5, 1.0))[:2]
    assert np.abs(centre - expected).max() < 0.25, (centre, expected)


def bust(label: str, w: int, h: int, face: tuple[float, float, float, float]) -> Cutout:
    c = cutout(label, w, h)
    fx, fy, fw, fh = face
    c.faces = [Face(fx, fy, fw, fh, (fx + fw / 2, fy + 0.8 * fh), 0.9)]
    return c


def test_a_bust_is_sized_by_its_face_with_its_head_in_frame() -> None:
    roles = {"a": Role("a", "character", "")}
    # A tight portrait (the face is half the photo, its cap at the top edge): shrunk, not blown up.
    [tight] = stage_shot(["a"], roles, ["a"], {"a": bust("a", 450, 550, (90, 20, 270, 270))}, W, H, 1, None)
    face_h = tight.face.h * tight.scale
    assert 0.26 * H < face_h < 0.34 * H and tight.box[3] > H  # rises from the bottom edge
    # A waist-up photo (a small face): grows until the head nears the top, never past it.
    [tall] = stage_shot(["a"], roles, ["a"], {"a": bust("a", 400, 900, (150, 60, 100, 110))}, W, H, 1, None)
    for p in (tight, tall):
        x0, y0, x1, y1 = p.head  # the face with its headroom
        assert 0.02 * H <= y0 and y1 < H and 0 <= x0 and x1 <= W
    assert tall.head[1] < 0.1 * H
    # A group photo wider than the frame is shrunk to fit it, face and all.
    [wide] = stage_shot(["a"], roles, ["a"], {"a": bust("a", 3000, 600, (2700, 40, 150, 160))}, W, H, 1, None)
    assert 0 <= wide.box[0] and wide.box[2] <= W and 0 <= wide.head[0] and wide.head[2] <= W


def test_every_view_keeps_the_heads_it_shows() -> None:
    subjects = [Subject("a", (0, 300, 500, 740), (40, 310, 120, 140), True, (40, 250, 160, 450)),
                Subject("b", (700, 90, 1100, 740), (830, 120, 120, 140), True, (830, 60, 950, 260))]
    for framing in ("wide", "medium", "close-up", "action", "overhead"):
        for camera in (None, "zoom in", "zoom out", "pan left", "pan right"):
            for seed in range(3):
                move = plan_camera(framing, camera, subjects, "b", W, H, np.random.default_rng(seed))
                shown = [subjects[1]] if framing == "close-up" else subjects
                for t in np.linspace(0, 1, 9):
                    v = move.at(float(t), float(t), W, H)
                    for s in shown:
                        x0, y0, x1, y1 = s.head
                        assert v.x <= x0 and x1 <= v.x + v.w + 1e-6 and v.y <= y0 and y1 <= v.y + v.h + 1e-6, \
                            (framing, camera, seed, t)
    # keep_heads slides a view that cuts a head, and widens one too small for both.
    v = keep_heads(View(600, 300, 640, 360), [subjects[1].head], W, H)
    assert v.w == 640 and v.y <= 60 and v.x <= 830
    both = keep_heads(View(600, 300, 320, 180), [s.head for s in subjects], W, H)
    assert both.x <= 40 and both.x + both.w >= 950 and both.w / both.h == pytest.approx(W / H)


def test_a_cue_pushes_in_for_its_window_and_comes_back() -> None:
    subjects = _subjects()
    plain = plan_camera("wide", "zoom out", subjects, None, W, H, np.random.default_rng(1), seconds=6.0)
    move = plan_camera("wide", "zoom out", subjects, None, W, H, np.random.default_rng(1),
                       cues=[(0.3, 0.6, "close-up", "b")], seconds=6.0)
    close = framing_view("close-up", subjects, "b", W, H)
    assert move.at(0.0, 0.0, W, H) == plain.at(0.0, 0.0, W, H)  # the shot's own move until the cue
    assert move.at(0.25, 1.5, W, H) == plain.at(0.25, 1.5, W, H)
    for t in (0.42, 0.5, 0.6):  # there within 0.6 s (0.1 of the shot) of the window's start, held to its end
        assert move.at(t, 6 * t, W, H) == close
    assert move.at(1.0, 6.0, W, H) == plain.at(1.0, 6.0, W, H)  # back to the shot's own move after it
    assert "cues: close-up on b" in move.kind
    region, scale = move.canvas(W, H)
    assert scale == pytest.approx(min(W / close.w, 2.5 * W / region.w))  # the canvas is sharp enough for it
    # A cue near the end holds to the end.
    late = plan_camera("wide", None, subjects, None, W, H, np.random.default_rng(1),
                       cues=[(0.8, 0.95, "close-up", "a")], seconds=6.0)
    assert late.at(1.0, 6.0, W, H) == framing_view("close-up", subjects, "a", W, H)
