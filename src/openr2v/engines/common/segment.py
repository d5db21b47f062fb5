"""Segmentation: what a reference shows (a person? a face?) and the masks that lift a subject off it.

Mask methods, best first (``cutouts`` picks one per reference and records it):
- ``alpha``: the reference's own transparency (a PNG cut-out);
- ``selfie_segmentation``: mediapipe person segmentation (people), every picture of a video;
- ``grabcut``: OpenCV GrabCut on a downscaled keyframe (objects; people mediapipe does not see);
- ``ellipse``: a feathered ellipse, when nothing else finds a subject or mediapipe is missing.
Faces (for close-ups and talking mouths) come from mediapipe face detection, else from the
silhouette: the top of the mask, as wide as the shape is there.

A look (``look_at``) can be cached by the reference's bytes: a reference seen again is not searched
for people and faces again (the background of a scene costs ~0.1 s: nobody is in it, so it is
searched again at a larger size for small faces).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from PIL import Image

from openr2v.engines.base import ResolvedReference
from openr2v.engines.common import vision
from openr2v.engines.common.sources import file_digest, load_still, video_frames
from openr2v.engines.common.vision import Face

__all__ = ["Look", "ellipse_alpha", "fit", "flatten", "grabcut_alpha", "look_at", "see_person", "selfie_alpha",
           "silhouette_face"]

ANALYSIS_SIDE = 640  # keyframes are analysed at most this big
SMALL_FACE_SIDE = 1600  # a picture with no one in its keyframe is searched for small faces at most this big
SEGMENT_SIDE = 256  # the person models see 256 px (model 1: 144 x 256): feeding more only costs time
GRABCUT_SIDE = 256
TOPOLOGY_SIDE = 256  # blobs and holes of a mask are found at this size
SOFTEN_SIDE = 400  # person masks are cleaned at this size, then scaled to the cut-out's
PERSON_CONFIDENCE = 0.95  # mean |p - 0.5| * 2 of a segmentation that really saw someone
_BACKDROP = (128, 128, 128)
LOOK_VERSION = 1  # bump when what ``look_at`` finds changes: cached looks of the old kind are ignored


@dataclass
class Look:
    """What a reference's keyframe shows; cheap enough to run on every reference before casting."""

    label: str
    kind: str
    width: int
    height: int
    has_alpha: bool
    face: Face | None  # in keyframe pixels
    person_model: int | None  # the segmentation model that saw a person, if any
    person_cover: float
    keyframe: np.ndarray  # RGB, at most ANALYSIS_SIDE

    @property
    def person(self) -> bool:
        return self.face is not None or self.person_model is not None

    @property
    def aspect(self) -> float:
        return self.width / max(1, self.height)


# -- looking --------------------------------------------------------------------------------------


def flatten(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB (transparent pixels on grey) and the alpha channel if the picture has real transparency."""
    if img.mode == "RGBA" and cast(int, img.getchannel("A").getextrema()[0]) < 250:
        alpha = np.asarray(img.getchannel("A"))
        flat = Image.alpha_composite(Image.new("RGBA", img.size, (*_BACKDROP, 255)), img).convert("RGB")
        return np.asarray(flat), alpha
    return np.asarray(img.convert("RGB")), None


def fit(w: int, h: int, side: int) -> tuple[int, int]:
    s = min(1.0, side / max(w, h))
    return max(2, 2 * round(w * s / 2)), max(2, 2 * round(h * s / 2))


def _keyframe(ref: ResolvedReference) -> tuple[np.ndarray, np.ndarray | None, int, int]:
    if ref.kind == "video":
        sw, sh = ref.info.width or 2, ref.info.height or 2
        w, h = fit(sw, sh, ANALYSIS_SIDE)
        return next(iter(video_frames(ref.path, w, h, 30, 1, label=ref.label))), None, sw, sh
    img = load_still(ref.path)
    rgb, alpha = flatten(img)
    w, h = fit(img.width, img.height, ANALYSIS_SIDE)
    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    small_alpha = None if alpha is None else cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)
    return small, small_alpha, img.width, img.height


def see_person(rgb: np.ndarray) -> tuple[int | None, float]:
    """The segmentation model that sees a person in ``rgb`` (the larger confident mask), and its cover."""
    best: tuple[int | None, float] = (None, 0.0)
    for model in vision.MODELS:
        mask = vision.person_mask(rgb, model)
        if mask is None:
            return None, 0.0
        cover = float((mask > 0.5).mean())
        confidence = float(np.mean(np.abs(mask - 0.5)) * 2)
        if confidence >= PERSON_CONFIDENCE and 0.04 <= cover <= 0.95 and cover > best[1]:
            best = (model, cover)
    return best


def look_at(ref: ResolvedReference, cache_dir: Path | None = None) -> Look:
    """What ``ref``'s keyframe shows; with ``cache_dir``, what was found is kept there by the file's bytes."""
    rgb, alpha, w, h = _keyframe(ref)
    path = None if cache_dir is None else cache_dir / f"{file_digest(ref.path)[:40]}.v{LOOK_VERSION}.look.json"
    seen = _load_seen(path, rgb.shape)
    if seen is None:
        seen = _see(ref, rgb, w, h)
        _save_seen(path, seen, rgb.shape)
    face, model, cover = seen
    return Look(label=ref.label, kind=ref.kind, width=w, height=h, has_alpha=alpha is not None,
                face=face, person_model=model, person_cover=cover, keyframe=rgb)


Seen = tuple[Face | None, int | None, float]  # the face, the segmentation model that saw a person, its cover


def _see(ref: ResolvedReference, rgb: np.ndarray, w: int, h: int) -> Seen:
    model, cover = see_person(rgb)
    face = vision.find_face(rgb)
    if face is None and model is None and ref.kind == "image" and max(w, h) > ANALYSIS_SIDE:
        # Nobody at this size: a person small in a big photo is still a person (and a character).
        full, _ = flatten(load_still(ref.path))
        fw, fh = fit(w, h, SMALL_FACE_SIDE)  # bounds the tiles: a 12 MP photo would cost seconds
        full = cv2.resize(full, (fw, fh), interpolation=cv2.INTER_AREA) if (fw, fh) != (w, h) else full
        small = vision.find_small_face(full)
        face = small.scaled(rgb.shape[1] / full.shape[1]) if small is not None else None
    return face, model, cover


def _load_seen(path: Path | None, shape: tuple[int, ...]) -> Seen | None:
    if path is None or not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if tuple(data["keyframe"]) != tuple(shape[:2]):
            return None
        f = data["face"]
        face = None if f is None else Face(f[0], f[1], f[2], f[3], (f[4], f[5]), f[6])
        model = data["person_model"]
        seen = face, None if model is None else int(model), float(data["person_cover"])
        os.utime(path)  # recently used: the last to be pruned (with the cut-outs kept beside it)
        return seen
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # a torn or foreign file: look again (and overwrite it)


def _save_seen(path: Path | None, seen: Seen, shape: tuple[int, ...]) -> None:
    if path is None:
        return
    face, model, cover = seen
    row = None if face is None else [face.x, face.y, face.w, face.h, face.mouth[0], face.mouth[1], face.score]
    data = {"keyframe": list(shape[:2]), "person_model": model, "person_cover": cover, "face": row}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)  # atomic: a concurrent reader sees no file or the whole one


# -- masks ----------------------------------------------------------------------------------------


def _largest(binary: np.ndarray) -> np.ndarray:
    """Keep the largest connected blob (and blobs at least a quarter its size): drops specks."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    if n <= 2:
        return binary
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= areas.max() / 4) + 1
    return np.isin(labels, keep)


def _fill_holes(binary: np.ndarray, max_share: float = 0.05) -> np.ndarray:
    """Fill background pockets enclosed by the subject and smaller than ``max_share`` of it.

    Person masks often miss the shadow under a chin or the gap between hair and neck; the old
    background would show through there. Bigger pockets (an arm on a hip) are real and stay.
    """
    background = (~binary).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(background, connectivity=4)
    if n <= 2:
        return binary
    h, w = binary.shape
    limit = max_share * max(1, int(binary.sum()))
    out = binary.copy()
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        enclosed = x > 0 and y > 0 and x + bw < w and y + bh < h
        if enclosed and area <= limit:
            out[labels == i] = True
    return out


def _soften(prob: np.ndarray) -> np.ndarray:
    """A probability map to a clean alpha: sharpened, despeckled, holes filled, pulled in a pixel (no halo
    of the old background), with a 1-2 px anti-aliased edge."""
    h, w = prob.shape
    hard = np.clip((prob - 0.45) * (1 / 0.3), 0.0, 1.0)
    # Blobs and pockets are found on a small copy: connected components cost most here and need no detail.
    sw, sh = fit(w, h, TOPOLOGY_SIDE)
    small = cv2.resize(hard, (sw, sh), interpolation=cv2.INTER_AREA) > 0.5
    body = _largest(small)
    keep_small = _fill_holes(body)
    holes = keep_small & ~body
    keep = cv2.resize(keep_small.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    if holes.any():  # filled solid, with the soft ring around each pocket
        ring = cv2.resize(cv2.dilate(holes.astype(np.uint8), np.ones((3, 3), np.uint8)), (w, h),
                          interpolation=cv2.INTER_NEAREST) > 0
        hard = np.where(ring, 1.0, hard)
    # The small copy's blocky outline must not clip the edge: only what lies beyond it is dropped.
    keep = cv2.dilate(keep.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    alpha: np.ndarray = (hard * keep * 255 + 0.5).astype(np.uint8)
    alpha = cv2.erode(alpha, np.ones((3, 3), np.uint8), iterations=max(1, w // 400))
    sigma = max(0.8, w / 350)  # smooths the stair steps of a 256 px model's mask, scaled up
    return cv2.GaussianBlur(alpha, (0, 0), sigma)


def selfie_alpha(small: np.ndarray, model: int, size: tuple[int, int], *,
                 soften_side: int = SOFTEN_SIDE) -> np.ndarray | None:
    """Person alpha at ``size`` (w, h) from ``small`` (RGB, at most SEGMENT_SIDE); None without mediapipe."""
    prob = vision.person_mask(small, model)
    if prob is None:
        return None
    # The model sees 256 px: cleaning its mask at more than SOFTEN_SIDE only costs time.
    sw, sh = fit(size[0], size[1], soften_side)
    if prob.shape[::-1] != (sw, sh):
        prob = cv2.resize(prob, (sw, sh), interpolation=cv2.INTER_AREA)
    alpha = _soften(prob)
    return alpha if (sw, sh) == size else cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)


def grabcut_alpha(rgb: np.ndarray, size: tuple[int, int], *, open_bottom: bool = False) -> np.ndarray | None:
    """GrabCut seeded with the picture minus a 4% border, alpha at ``size``; None when it finds no subject.

    ``open_bottom`` (people) leaves the lower edge inside the seed: a portrait's body runs off it,
    and a border that counts as background would teach GrabCut that the shirt is background.
    """
    h, w = rgb.shape[:2]
    sw, sh = fit(w, h, GRABCUT_SIDE)
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    inset_x, inset_y = max(1, round(sw * 0.04)), max(1, round(sh * 0.04))
    mask = np.zeros((sh, sw), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means draws from OpenCV's global RNG: fix it, or masks vary run to run
    try:
        rect = (inset_x, inset_y, sw - 2 * inset_x, sh - inset_y - (0 if open_bottom else inset_y))
        cv2.grabCut(np.ascontiguousarray(small[:, :, ::-1]), mask, rect, bgd, fgd, 5, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return None
    fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    cover = float(fg.mean())
    if not 0.03 <= cover <= 0.9:
        return None
    prob = cv2.resize(_largest(fg).astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    return _soften(cv2.GaussianBlur(prob, (0, 0), max(1.0, size[0] / 300)))


def ellipse_alpha(w: int, h: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2), (round(w * 0.46), round(h * 0.47)), 0, 0, 360, (255,), -1, cv2.LINE_AA)
    return cv2.GaussianBlur(mask, (0, 0), max(1.0, min(w, h) / 30))


def silhouette_face(alpha: np.ndarray) -> Face | None:
    """Where a head would be: the top of the silhouette, as wide as the shape is there."""
    rows = np.flatnonzero((alpha > 127).any(axis=1))
    if rows.size == 0:
        return None
    top, height = int(rows[0]), int(rows[-1] - rows[0] + 1)
    band = alpha[top:top + max(2, height // 10)] > 127
    cols = np.flatnonzero(band.any(axis=0))
    width = float(np.median(band.sum(axis=1))) or float(cols.size)
    width = min(width, 0.6 * alpha.shape[1])
    cx = float(cols.mean()) if cols.size else alpha.shape[1] / 2
    fh = min(1.25 * width, 0.45 * height)
    return Face(cx - width / 2, float(top), width, fh, (cx, top + 0.78 * fh), 0.0)
