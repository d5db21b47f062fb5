"""Blinks: when a face's eyes close (seeded, so every render of a task blinks alike), and the lids' look.

A blink comes every 2-6 s and lasts 100-200 ms: the lid drops fast (40% of the blink) and lifts
slower, as real lids do. The first one comes within 2.5 s, so even a short clip shows one. The rig
warps the upper lid down onto the lower one; ``paint_lid`` then covers the eye with lid skin in the
lid's lit skin tone, the fine texture of the skin just above it, and a lash line at its edge, because a
photo's thin band above the lashes, stretched over the eye, would read as a dark smear.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from openr2v.engines.compositor.blend import Picture, Planes
from openr2v.engines.compositor.paint import blend_patch, poly_box, poly_mask

__all__ = ["LidLook", "blink_track", "lid_look", "paint_lid"]

GAP = (2.0, 6.0)  # seconds between blinks
LENGTH = (0.10, 0.20)  # seconds a blink lasts
FIRST = (0.4, 2.5)  # seconds to the first blink


def blink_track(frames: int, fps: int, seed: int, index: int) -> np.ndarray:
    """Lid closure per frame, 0 open .. 1 shut, for the ``index``-th character of a task seeded ``seed``."""
    rng = np.random.default_rng([seed, index, 47])
    track = np.zeros(frames, np.float32)
    t = np.arange(frames) / fps
    start = float(rng.uniform(*FIRST))
    while start < frames / fps:
        length = float(rng.uniform(*LENGTH))
        close = 0.4 * length
        p = t - start
        down = (p >= 0) & (p < close)
        up = (p >= close) & (p < length)
        # Smooth ramps: sin^2 down, cos^2 up; the frame nearest the turn is fully shut.
        track[down] = np.maximum(track[down], np.sin(0.5 * np.pi * p[down] / close) ** 2)
        track[up] = np.maximum(track[up], np.cos(0.5 * np.pi * (p[up] - close) / (length - close)) ** 2)
        turn = min(frames - 1, round((start + close) * fps))
        if turn >= 0:
            track[turn] = 1.0
        start += length + float(rng.uniform(*GAP))
    return track


def _lid_height(lid: np.ndarray, crease: np.ndarray) -> float:
    """The largest vertical distance from the crease down to the lid's edge (both corner to corner)."""
    order = np.argsort(crease[:, 0])
    above = np.interp(lid[:, 0], crease[order, 0], crease[order, 1])
    return max(1.0, float(np.max(lid[:, 1] - above)))


@dataclass
class LidLook:
    """One eye's lid colours in the neutral photo: the skin above the lid, and its lash line."""

    skin: tuple[float, float, float]
    lash: tuple[float, float, float]


def _mean_yuv(pic: Picture, mask: np.ndarray) -> tuple[float, float, float] | None:
    half = cv2.resize(mask.astype(np.uint8), (pic.u.shape[1], pic.u.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    if mask.sum() < 4 or not half.any():
        return None
    return float(pic.y[mask].mean()), float(pic.u[half].mean()), float(pic.v[half].mean())


def lid_look(pic: Picture, lid: np.ndarray, crease: np.ndarray) -> LidLook:
    """Colours from the photo: skin from the band above the crease (as high as the lid is), lashes at the lid."""
    h, w = pic.y.shape
    height = max(2.0, 1.5 * _lid_height(lid, crease))
    band = np.concatenate([crease, (crease - (0, height))[::-1]])
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(band).astype(np.int32)], (1,))
    inside = mask.astype(bool)
    if inside.sum() >= 8:  # the lit skin, not the lashes or a shadow in the band
        lit = np.zeros_like(inside)
        lit[inside] = pic.y[inside] >= np.percentile(pic.y[inside], 40)
        inside = lit
    skin = _mean_yuv(pic, inside) or (float(pic.y.mean()), 128.0, 128.0)
    line = np.zeros((h, w), np.uint8)
    cv2.polylines(line, [np.round(lid).astype(np.int32)], False, (1,), 2)
    on = line.astype(bool)
    lash = skin
    if on.sum() >= 4:
        ys = pic.y[on]
        dark = np.zeros((h, w), bool)
        dark[on] = ys <= np.percentile(ys, 30)
        lash = _mean_yuv(pic, dark) or skin
    return LidLook(skin=skin, lash=lash)


def paint_lid(frame: Planes, lid: np.ndarray, crease: np.ndarray, look: LidLook, amount: float) -> None:
    """Cover the eye with lid skin from ``crease`` down to the moving ``lid`` edge (corner to corner, output px)."""
    strength = float(np.clip((amount - 0.15) / 0.45, 0.0, 1.0))
    if strength <= 0:
        return
    poly = np.concatenate([crease, lid[::-1]])
    box = poly_box(poly, frame, margin=3)
    if box is None:
        return
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    eye_h = _lid_height(lid, crease)
    mask = cv2.GaussianBlur(poly_mask(poly, box), (0, 0), max(0.6, 0.12 * eye_h)).astype(np.float32) / 255
    if not mask.any():
        return
    # The lid's lit skin tone, with the fine texture (grain, pores) of the skin just above the crease moved
    # down over the eye; only the fine part, so a brow or a spectacle rim above does not come along.
    lift = min(y0, max(2, round(eye_h)))
    above = frame[0][y0 - lift:y1 - lift, x0:x1].astype(np.float32)
    texture = np.clip(above - cv2.GaussianBlur(above, (0, 0), 1.5), -12, 12)
    order = np.argsort(lid[:, 0])
    edge_y = np.interp(np.arange(w) + x0, lid[order, 0], lid[order, 1])[None, :]
    rows = (np.arange(h, dtype=np.float32) + y0)[:, None]
    up = np.clip((edge_y - rows) / eye_h, 0.0, 1.0)  # 0 at the lid's edge, 1 at the crease
    y = look.skin[0] * (0.84 + 0.16 * up) + texture
    lash = np.zeros((h, w), np.uint8)
    cv2.polylines(lash, [np.round((lid - (x0, y0)) * 8).astype(np.int32)], False, (255,),
                  max(1, round(0.12 * eye_h)), cv2.LINE_AA, 3)
    la = lash.astype(np.float32) / 255 * 0.8
    y = y * (1 - la) + look.lash[0] * la
    alpha = np.maximum(mask, la) * strength
    hw, hh = w // 2, h // 2
    ac = cv2.resize(alpha, (hw, hh), interpolation=cv2.INTER_AREA)
    lc = cv2.resize(la, (hw, hh), interpolation=cv2.INTER_AREA)
    u = look.skin[1] * (1 - lc) + look.lash[1] * lc
    v = look.skin[2] * (1 - lc) + look.lash[2] * lc
    blend_patch(frame, box, y, u, v, alpha, ac)
