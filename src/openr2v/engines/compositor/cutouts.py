"""Cut-outs: a character or object lifted off its reference, as 4:2:0 pictures with alpha, cached.

Images give one picture. Videos give one picture per distinct source frame shown at the output
rate (motion replication), decoded once straight to the encoder's Y'CbCr and, only when the masks
are not cached yet, to a small RGB for segmentation. Masks, the method and the faces are cached
by the file's hash (and the sizes that shaped them), so a reference reused by later tasks is not
segmented again. A character also gets dense face landmarks (``face_mesh``) on every picture, cached
alongside, which rig its face (``face_rig``): an image's one picture, a video's pictures tracked in
order (only when its first shows a photographed face: drawn figures are not rigged). Every picture
is cropped to the union of the subject's boxes over the loop.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from openr2v.engines.base import ResolvedReference
from openr2v.engines.common import vision
from openr2v.engines.common.segment import (
    ANALYSIS_SIDE,
    SEGMENT_SIDE,
    SOFTEN_SIDE,
    Look,
    ellipse_alpha,
    fit,
    flatten,
    grabcut_alpha,
    see_person,
    selfie_alpha,
    silhouette_face,
)
from openr2v.engines.common.sources import file_digest, load_still, video_frames
from openr2v.engines.common.vision import Face
from openr2v.engines.compositor import face_mesh
from openr2v.engines.compositor.blend import Picture

__all__ = ["Cutout", "cut_out"]

CACHE_VERSION = 12  # bump when a method changes its output
IMAGE_SIDE = 1600  # image cut-outs are kept at most this big (close-ups need pixels)
MIN_IMAGE_SIDE = 512  # and at least this big: the face mesh misses a face of a thumbnail's few dozen pixels
VIDEO_HEIGHT = 720  # video cut-outs: memory is frames x size
FACE_EVERY = 10  # video pictures between face detections (faces move slowly; a detection costs ~3-6 ms)
SMALL_FACE = 0.12  # a face shorter than this share of its photo: the person is cut out of a crop around the face
CACHE_BYTES = 2 * 1024 * 1024 * 1024  # the mask cache keeps the most recently used entries up to this size


@dataclass
class Cutout:
    """A reference lifted off its background: distinct pictures (cropped to the subject) and a frame map."""

    label: str
    method: str
    pictures: list[Picture]
    index: np.ndarray  # output frame k -> pictures[index[k % len(index)]]
    faces: list[Face | None]  # per picture, in cut-out pixels
    face_found: bool  # True when a detector (not the silhouette) found the face
    touches_bottom: bool  # the subject runs off the reference's lower edge (a bust, a cropped body)
    landmarks: np.ndarray | None = None  # (pictures, 478, 2) face mesh per picture, cut-out pixels; NaN: no face
    rig_cache: dict[str, object] = field(default_factory=dict, repr=False)  # the face rig's mesh, built once

    @property
    def size(self) -> tuple[int, int]:
        return self.pictures[0].size

    @property
    def loop_frames(self) -> int:
        return len(self.index)

    def at(self, k: int) -> tuple[Picture, Face | None]:
        i = int(self.index[k % len(self.index)])
        return self.pictures[i], self.faces[i]


def video_size(ref: ResolvedReference) -> tuple[int, int]:
    """The working size of a video reference's pictures."""
    w, h = fit(ref.info.width or 2, ref.info.height or 2, 10**6)
    if h > VIDEO_HEIGHT:
        w, h = max(2, 2 * round(w * VIDEO_HEIGHT / h / 2)), VIDEO_HEIGHT
    return w, h


# -- cache ----------------------------------------------------------------------------------------


def _cache_path(cache_dir: Path | None, ref: ResolvedReference, role: str, size: tuple[int, int],
                loop: int) -> Path | None:
    if cache_dir is None:
        return None
    h = hashlib.sha256(file_digest(ref.path).encode())
    h.update(f"|{CACHE_VERSION}|{role}|{size}|{loop}".encode())
    return cache_dir / f"{h.hexdigest()[:40]}.npz"


Masks = tuple[list[np.ndarray], str, list[Face | None], np.ndarray | None]  # alphas, method, faces, landmarks


def _load(path: Path | None, pictures: int) -> Masks | None:
    if path is None or not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            alpha, method, faces, marks = data["alpha"], str(data["method"]), data["faces"], data["landmarks"]
    except (OSError, ValueError, KeyError):
        return None  # a torn or foreign file: recompute (and overwrite) it
    if alpha.shape[0] != pictures:
        return None
    os.utime(path)  # recently used: the last to be pruned
    return (list(alpha), method, [None if np.isnan(r[0]) else Face(r[0], r[1], r[2], r[3], (r[4], r[5]), r[6])
                                  for r in faces], marks if marks.size else None)


def _save(path: Path | None, alphas: list[np.ndarray], method: str, faces: list[Face | None],
          landmarks: np.ndarray | None) -> None:
    if path is None:
        return
    rows = [[f.x, f.y, f.w, f.h, f.mouth[0], f.mouth[1], f.score] if f else [np.nan] * 7 for f in faces]
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per writer: two worker threads of one process may cut out the same reference at once.
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp.npz")
    # Stored, not deflated: compressing 90 masks costs more time than segmenting a few of them.
    np.savez(tmp, alpha=np.stack(alphas), method=np.array(method),
             faces=np.array(rows, dtype=np.float64).reshape(len(faces), 7),
             landmarks=np.zeros((0, 2), np.float32) if landmarks is None else landmarks)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
    _prune(path.parent)


def _prune(folder: Path) -> None:
    """Drop the least recently used entries beyond CACHE_BYTES."""
    entries = []
    for p in [*folder.glob("*.npz"), *folder.glob("*.look.json")]:  # masks, and looks (``segment.look_at``)
        if ".tmp" in p.name:  # another writer's file in progress
            continue
        try:
            st = p.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    for _, size, p in sorted(entries):
        if total <= CACHE_BYTES:
            break
        p.unlink(missing_ok=True)
        total -= size


# -- cutting --------------------------------------------------------------------------------------


def cut_out(ref: ResolvedReference, look: Look, role: str, *, fps: int, loop: int,
            cache_dir: Path | None) -> Cutout:
    """``ref`` cut out for ``role`` (character | object); a video covers at most ``loop`` output frames."""
    if ref.kind == "video":
        return _cut_video(ref, look, role, fps, loop, cache_dir)
    return _cut_image(ref, look, role, cache_dir)


def _cut_image(ref: ResolvedReference, look: Look, role: str, cache_dir: Path | None) -> Cutout:
    rgb, own_alpha = flatten(load_still(ref.path))
    w, h = fit(rgb.shape[1], rgb.shape[0], IMAGE_SIDE)
    if max(w, h) < MIN_IMAGE_SIDE:  # a thumbnail: enlarged now, as every shot would enlarge it anyway
        s = MIN_IMAGE_SIDE / max(w, h)
        w, h = max(2, 2 * round(w * s / 2)), max(2, 2 * round(h * s / 2))
    if (w, h) != (rgb.shape[1], rgb.shape[0]):
        shrink = w < rgb.shape[1]
        interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
        rgb = cv2.resize(rgb, (w, h), interpolation=interp)
        own_alpha = None if own_alpha is None else cv2.resize(own_alpha, (w, h), interpolation=interp)
    rgb, look = _around_face(rgb, look, role, own_alpha is None)
    h, w = rgb.shape[:2]
    cache = _cache_path(cache_dir, ref, role, (w, h), 1)
    found = _load(cache, 1)
    planes = [_yuv(rgb)]
    if found is None:
        sw, sh = fit(w, h, SEGMENT_SIDE)
        small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
        # Faces are looked for at the analysis size: at the segmentation size a face small in its photo is lost.
        aw, ah = fit(w, h, ANALYSIS_SIDE)
        mid = small if (aw, ah) == (sw, sh) else cv2.resize(rgb, (aw, ah), interpolation=cv2.INTER_AREA)
        group = _group_alpha(rgb, mid, role) if own_alpha is None else None
        if group is not None:
            alphas, method = [group], "selfie_segmentation"
        else:
            alphas, method = _masks([small], (w, h), look, role, own_alpha)
        faces = _faces([mid], w / aw, role, alphas)
        marks = _face_landmarks(planes, (w, h), role, faces)
        _save(cache, alphas, method, faces, marks)
    else:
        alphas, method, faces, marks = found
    return _crop(ref.label, method, planes, alphas, np.zeros(1, np.int32), faces, marks)


def _group_alpha(rgb: np.ndarray, mid: np.ndarray, role: str) -> np.ndarray | None:
    """A photo of several people: each one segmented in a crop around their face, the masks joined.

    Seen whole at 256 px, people side by side are each small, and a model may miss one of them
    (the other model sees both, but not confidently); around each face they are big enough.
    """
    if role != "character" or vision.available() is not None:
        return None
    found = vision.find_faces(mid)
    found = [f for f in found if f.score >= 0.7 and f.h >= 0.4 * max(g.h for g in found)] if found else []
    if len(found) < 2:
        return None
    h, w = rgb.shape[:2]
    alpha = np.zeros((h, w), np.uint8)
    for face in found:
        face = face.scaled(w / mid.shape[1])
        cx = face.x + face.w / 2
        x0, x1 = max(0, int(cx - 2.6 * face.w)) & ~1, min(w, int(cx + 2.6 * face.w)) & ~1
        y0, y1 = max(0, int(face.y - 1.0 * face.h)) & ~1, min(h, int(face.y + 7.0 * face.h)) & ~1
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        sw, sh = fit(crop.shape[1], crop.shape[0], SEGMENT_SIDE)
        small = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA)
        model, _ = see_person(small)
        part = selfie_alpha(small, model, (x1 - x0, y1 - y0)) if model is not None else None
        if part is not None:
            alpha[y0:y1, x0:x1] = np.maximum(alpha[y0:y1, x0:x1], part)
    return alpha if (alpha > 127).mean() > 0.01 else None


def _around_face(rgb: np.ndarray, look: Look, role: str, opaque: bool) -> tuple[np.ndarray, Look]:
    """A person small in a wide photo: the part of the photo around their face, and who the models see there.

    Segmentation sees the whole photo at 256 px, where a small person is a few pixels and is
    missed (the cut-out would be the whole photo). A crop from a face above the head to seven
    below it holds the person at a size the models see; if they run past its lower edge, they are
    a bust.
    """
    if role != "character" or not opaque or look.face is None:
        return rgb, look
    h, w = rgb.shape[:2]
    face = look.face.scaled(w / look.keyframe.shape[1])
    if face.h >= SMALL_FACE * h:
        return rgb, look
    cx = face.x + face.w / 2
    x0, x1 = max(0, int(cx - 2.6 * face.w)) & ~1, min(w, int(cx + 2.6 * face.w)) & ~1
    y0, y1 = max(0, int(face.y - 1.0 * face.h)) & ~1, min(h, int(face.y + 7.0 * face.h)) & ~1
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    sw, sh = fit(crop.shape[1], crop.shape[0], SEGMENT_SIDE)
    model, cover = see_person(cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA))
    if model is None:
        return rgb, look
    return crop, replace(look, person_model=model, person_cover=cover)


def _yuv(rgb: np.ndarray) -> np.ndarray:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG").to_ndarray()


def _cut_video(ref: ResolvedReference, look: Look, role: str, fps: int, loop: int,
               cache_dir: Path | None) -> Cutout:
    w, h = video_size(ref)
    sw, sh = fit(w, h, SEGMENT_SIDE)
    cache = _cache_path(cache_dir, ref, role, (w, h), loop)
    need_rgb = cache is None or not cache.exists()

    def convert(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray | None]:
        # Straight to the encoder's Y'CbCr (no RGB round trip; no scaler at all when the size already fits).
        sized: dict[str, Any] = ({} if (frame.width, frame.height) == (w, h)
                                 else {"width": w, "height": h, "interpolation": "AREA"})
        yuv = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG", **sized).to_ndarray()
        if not need_rgb:
            return yuv, None
        # Segmentation only needs a small RGB: OpenCV's I420 conversion is ten times cheaper than swscale's.
        small = cv2.resize(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420), (sw, sh), interpolation=cv2.INTER_AREA)
        return yuv, small

    planes: list[np.ndarray] = []
    smalls: list[np.ndarray | None] = []
    index: list[int] = []
    last = None
    for item in video_frames(ref.path, w, h, fps, loop, label=ref.label, convert=convert):
        if item is not last:  # a held source frame comes back as the same object
            planes.append(item[0])
            smalls.append(item[1])
            last = item
        index.append(len(planes) - 1)
    found = _load(cache, len(planes))
    if found is None:
        if any(s is None for s in smalls):  # the cache vanished between the check and the load
            return _cut_video(ref, look, role, fps, loop, None)
        rgb_small = [s for s in smalls if s is not None]
        alphas, method = _masks(rgb_small, (w, h), look, role, None)
        faces = _faces(rgb_small, w / sw, role, alphas)
        marks = _face_landmarks(planes, (w, h), role, faces)
        _save(cache, alphas, method, faces, marks)
    else:
        alphas, method, faces, marks = found
    return _crop(ref.label, method, planes, alphas, np.array(index, dtype=np.int32), faces, marks)


def _masks(smalls: list[np.ndarray], size: tuple[int, int], look: Look, role: str,
           own_alpha: np.ndarray | None) -> tuple[list[np.ndarray], str]:
    if own_alpha is not None:
        return [own_alpha], "alpha"
    if role == "character" and look.person_model is not None:
        # One picture (an image) gets a finer edge; a video's many pictures the standard one.
        side = 1024 if len(smalls) == 1 else SOFTEN_SIDE
        alphas = [selfie_alpha(s, look.person_model, size, soften_side=side) for s in smalls]
        if all(a is not None and (a > 127).mean() > 0.01 for a in alphas):
            return [a for a in alphas if a is not None], "selfie_segmentation"
    # Objects (and people mediapipe cannot see) hold still enough for one mask from the keyframe.
    cut = grabcut_alpha(smalls[0], size, open_bottom=role == "character")
    if cut is not None:
        return [cut] * len(smalls), "grabcut"
    return [ellipse_alpha(*size)] * len(smalls), "ellipse"


def _faces(pictures: list[np.ndarray], scale: float, role: str, alphas: list[np.ndarray]) -> list[Face | None]:
    """The subject's face per picture (every FACE_EVERY-th): the most confident head on the subject's mask.

    A face the mask does not cover belongs to someone else in the picture (a second person, a
    portrait on the wall): framing on it would frame empty background.
    """
    faces: list[Face | None] = [None] * len(pictures)
    if role != "character" or vision.available() is not None:
        return faces
    for i in range(0, len(pictures), FACE_EVERY):
        picture = pictures[i]
        if max(picture.shape[:2]) > ANALYSIS_SIDE:
            continue
        alpha = alphas[min(i, len(alphas) - 1)]
        on_mask = []
        for face in vision.find_faces(picture):
            big = face.scaled(scale)
            x, y = int(big.x + big.w / 2), int(big.y + big.h / 2)
            if 0 <= y < alpha.shape[0] and 0 <= x < alpha.shape[1] and alpha[y, x] > 127:
                on_mask.append(big)
        if on_mask:
            # A face with more of the subject right above it (a badge, a print on a shirt) is not a head.
            heads = [f for f in on_mask if _clear_above(f, alpha)]
            faces[i] = (heads or on_mask)[0]
    return faces


def _clear_above(face: Face, alpha: np.ndarray) -> bool:
    """Whether the band a face height above the face's hair is mostly not the subject (a head's is background)."""
    x0, x1 = max(0, int(face.x)), min(alpha.shape[1], int(face.x + face.w))
    y0, y1 = max(0, int(face.y - 1.6 * face.h)), max(0, int(face.y - 0.6 * face.h))
    band = alpha[y0:y1, x0:x1]
    return band.size == 0 or float((band > 127).mean()) < 0.5


def _face_landmarks(planes: list[np.ndarray], size: tuple[int, int], role: str,
                    faces: list[Face | None]) -> np.ndarray | None:
    """Face landmarks on every picture of a cut-out (its Y'CbCr planes: an image's one, a video's), tracked
    through a video's only when its first shows a photographed face. They are looked for around the faces
    the detector found: the face mesh's own detector misses a face under about a fifth of its picture."""
    w, h = size
    x0, y0, x1, y1 = _face_region(faces, w, h)

    def rgb(yuv: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)[y0:y1, x0:x1])

    first = _landmarks(rgb(planes[0]), role)
    if first is None:
        return None
    offset = np.array([x0, y0], np.float32)
    if len(planes) == 1:
        return (first + offset)[None]
    if not face_mesh.photographed(planes[0][y0:y1, x0:x1], first):
        return None  # a drawn figure: never rigged, so not worth tracking
    marks = face_mesh.track_landmarks(rgb(p) for p in planes)
    return None if marks is None else marks + offset


def _face_region(faces: list[Face | None], w: int, h: int) -> tuple[int, int, int, int]:
    """The part of a cut-out's pictures its face is seen in (over a video: moves in), grown by a face's size around
    (even-aligned); all of it when no face was detected."""
    found = [f for f in faces if f is not None]
    if not found:
        return 0, 0, w, h
    side = max(max(f.w, f.h) for f in found)
    x0 = max(0, int(min(f.x for f in found) - side)) & ~1
    y0 = max(0, int(min(f.y for f in found) - side)) & ~1
    x1 = min(w, int(max(f.x + f.w for f in found) + side) + 2) & ~1
    y1 = min(h, int(max(f.y + f.h for f in found) + side) + 2) & ~1
    return x0, y0, x1, y1


def _landmarks(rgb: np.ndarray, role: str) -> np.ndarray | None:
    if role != "character" or vision.available() is not None:
        return None
    return face_mesh.find_landmarks(rgb)


def _crop(label: str, method: str, planes: list[np.ndarray], alphas: list[np.ndarray], index: np.ndarray,
          faces: list[Face | None], landmarks: np.ndarray | None = None) -> Cutout:
    """Crop every picture to the union of the subject's boxes (even-aligned); faces follow the crop."""
    h, w = alphas[0].shape
    union = np.zeros((h, w), bool)
    for a in alphas:
        union |= a > 8
    rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
    if rows.size == 0:
        rows, cols = np.array([0, h - 1]), np.array([0, w - 1])
    y0, x0 = max(0, int(rows[0]) - 2) & ~1, max(0, int(cols[0]) - 2) & ~1
    y1, x1 = min(h, (int(rows[-1]) + 4) & ~1), min(w, (int(cols[-1]) + 4) & ~1)
    bottom = any(float((a[-1] > 127).mean()) > 0.05 for a in alphas)
    quarter = h * w // 4
    pictures = []
    for yuv, a in zip(planes, alphas, strict=True):
        chroma = yuv[h:].reshape(-1)
        u, v = chroma[:quarter].reshape(h // 2, w // 2), chroma[quarter:].reshape(h // 2, w // 2)
        pictures.append(Picture(np.ascontiguousarray(yuv[y0:y1, x0:x1]),
                                np.ascontiguousarray(u[y0 // 2:y1 // 2, x0 // 2:x1 // 2]),
                                np.ascontiguousarray(v[y0 // 2:y1 // 2, x0 // 2:x1 // 2]),
                                np.ascontiguousarray(a[y0:y1, x0:x1])))
    found = any(f is not None for f in faces)
    known = [i for i, f in enumerate(faces) if f is not None]
    # Every picture gets a face: the nearest detected one, else the silhouette's head.
    full = ([faces[min(known, key=lambda j: abs(j - i))] for i in range(len(faces))] if known
            else [silhouette_face(a) for a in alphas])
    shifted = [f.scaled(1.0, -x0, -y0) if f else None for f in full]
    marks = None if landmarks is None else (landmarks - np.array([x0, y0], np.float32)).astype(np.float32)
    return Cutout(label=label, method=method, pictures=pictures, index=index, faces=shifted, face_found=found,
                  touches_bottom=bottom, landmarks=marks)
