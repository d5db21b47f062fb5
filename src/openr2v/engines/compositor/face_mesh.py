"""Dense face landmarks: mediapipe 0.10.21's bundled Face Mesh (478 points with the irises), when importable.

Like ``vision``'s graphs, a Face Mesh graph is not thread-safe, so each thread builds its own once.
The named groups below are indices into mediapipe's canonical face topology; lids and lips are
listed corner to corner so an upper point and the lower point at the same rank face each other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import cv2
import numpy as np

from openr2v.engines.common import vision
from openr2v.native_logs import quiet_native_stderr

__all__ = ["COUNT", "find_landmarks", "photographed", "track_landmarks"]

COUNT = 478  # 468 face points and 10 iris points (refine_landmarks)
MIN_FACE_SIDE = 40  # px: below this the mesh is guesswork (and a mouth too small to animate)

# Lips, mouth corner to mouth corner (the person's right to left, the picture's left to right).
UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
MOUTH_CORNERS = (61, 291, 78, 308)
# Lids, outer corner to inner corner: (upper, lower) for each eye.
RIGHT_LIDS = ((246, 161, 160, 159, 158, 157, 173), (7, 163, 144, 145, 153, 154, 155))
LEFT_LIDS = ((466, 388, 387, 386, 385, 384, 398), (249, 390, 373, 374, 380, 381, 382))
EYE_CORNERS = ((33, 133), (263, 362))
IRISES = (tuple(range(468, 473)), tuple(range(473, 478)))
BROWS = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107, 276, 282, 283, 285, 293, 295, 296, 300, 334, 336)  # right, left
OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149,
        150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
NOSE = (1, 2, 4, 6, 19, 48, 64, 98, 168, 197, 278, 294, 327)  # ridge, tip, wings
# Cheeks, chin and the skin around the mouth: they spread the jaw's and lips' motion smoothly.
SKIN = (18, 200, 175, 57, 287, 43, 273, 106, 335, 212, 432, 214, 434, 202, 422, 50, 280, 205, 425, 118, 347, 123,
        352, 187, 411)
FOREHEAD, CHIN, NOSE_TIP = 10, 152, 1
CHEEK_RIGHT, CHEEK_LEFT = 234, 454

_local = threading.local()
_lock = threading.Lock()
_module: Any = None
_missing: str | None = None


def _graph() -> Any | None:
    global _module, _missing
    if vision.available() is not None:
        return None
    with _lock:
        if _module is None and _missing is None:
            try:
                from mediapipe.python.solutions import face_mesh
            except Exception as exc:  # a broken install: no rig, photos keep the plain motion
                _missing = f"{type(exc).__name__}: {exc}"[:200]
            else:
                _module = face_mesh
    if _module is None:
        return None
    if not hasattr(_local, "graph"):
        _local.graph = _module.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                        min_detection_confidence=0.5)
    return _local.graph


def find_landmarks(rgb: np.ndarray) -> np.ndarray | None:
    """(478, 2) float32 pixel coordinates of the most prominent face in ``rgb``, or None (no face, or too small)."""
    graph = _graph()
    if graph is None:
        return None
    h, w = rgb.shape[:2]
    with quiet_native_stderr():  # once per picture (landmarks are cached); its graph warns on every run
        result = graph.process(np.ascontiguousarray(rgb))
    return _points(result, w, h)


def _points(result: Any, w: int, h: int) -> np.ndarray | None:
    if not result.multi_face_landmarks:
        return None
    pts = np.array([(p.x * w, p.y * h) for p in result.multi_face_landmarks[0].landmark], dtype=np.float32)
    if pts.shape[0] != COUNT or float(np.linalg.norm(pts[FOREHEAD] - pts[CHIN])) < MIN_FACE_SIDE:
        return None
    return pts


def track_landmarks(pictures: Iterable[np.ndarray]) -> np.ndarray | None:
    """Landmarks of the face through a video's pictures (RGB, in order): (P, 478, 2) float32, NaN where the face
    is lost. The graph tracks from picture to picture (mediapipe's video mode, ~4 ms a 720p picture)."""
    if _graph() is None:
        return None
    out = []
    with quiet_native_stderr(), _module.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True,
                                                 min_detection_confidence=0.5) as graph:
        for rgb in pictures:
            h, w = rgb.shape[:2]
            pts = _points(graph.process(np.ascontiguousarray(rgb)), w, h)
            out.append(np.full((COUNT, 2), np.nan, np.float32) if pts is None else pts)
    return np.stack(out) if out else None


DRAWN_FLAT = 0.5  # a face whose skin is flatter than this share (no fine texture at all) is drawn, not shot


def photographed(luma: np.ndarray, marks: np.ndarray) -> bool:
    """Whether the face inside the landmarks' oval has a photo's texture (measured: drawn ~0.9 flat, photos
    ~0.1, down to a 400 px WebP)."""
    oval = np.zeros(luma.shape, np.uint8)
    cv2.fillPoly(oval, [np.round(marks[list(OVAL)]).astype(np.int32)], (1,))
    inside = cv2.erode(oval, np.ones((5, 5), np.uint8)) > 0
    if inside.sum() < 50:
        return False
    y = luma.astype(np.float32)
    fine = np.abs(y - cv2.GaussianBlur(y, (0, 0), 1.0))[inside]
    return float((fine < 0.5).mean()) < DRAWN_FLAT
