"""Seeing people in pictures: mediapipe's bundled person segmentation and face detection, when importable.

Only ``mediapipe==0.10.21`` still ships the legacy ``solutions`` graphs with their models inside the
wheel (see DESIGN.md), so nothing is downloaded at run time. It is optional: without it ``available()``
says why, and the callers fall back to GrabCut and silhouettes. A graph is not thread-safe and costs
~50 ms to build, so each thread builds its own once and keeps it: references are cut out in
parallel, and a model gives the same answer whichever instance runs it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from openr2v.native_logs import quiet_native_stderr

__all__ = ["Face", "available", "find_face", "find_faces", "find_small_face", "person_mask"]

# Two segmentation models: 0 (general, 256x256) and 1 (landscape, 144x256). Each misses some
# pictures the other gets, so a reference is tried with both and keeps the better one.
MODELS = (0, 1)
FACE_CONFIDENCE = 0.5
TILE = 480  # find_small_face's tile side, in pixels of the full picture
CROWD = 2  # find_small_face: more small faces than this are a crowd

_lock = threading.Lock()  # guards the one-time import
_local = threading.local()  # this thread's graphs
_modules: tuple[Any, Any] | None = None
_missing: str | None = None
_loaded = False


@dataclass(frozen=True)
class Face:
    """A face in pixel coordinates of the picture it was found in."""

    x: float
    y: float
    w: float
    h: float
    mouth: tuple[float, float]
    score: float

    def scaled(self, s: float, dx: float = 0.0, dy: float = 0.0) -> Face:
        return Face(self.x * s + dx, self.y * s + dy, self.w * s, self.h * s,
                    (self.mouth[0] * s + dx, self.mouth[1] * s + dy), self.score)


def _load() -> None:
    global _missing, _loaded, _modules
    with _lock:
        if _loaded:
            return
        os.environ.setdefault("GLOG_minloglevel", "2")  # older mediapipe builds log through glog
        try:
            from mediapipe.python.solutions import face_detection, selfie_segmentation
        except Exception as exc:  # ImportError, or a broken install (protobuf/numpy mismatch)
            _missing = f"mediapipe not importable ({type(exc).__name__}: {exc})"[:200]
        else:
            _modules = (selfie_segmentation, face_detection)
        _loaded = True


def _graph(name: str) -> Any | None:
    """This thread's graph ``name`` (seg0, seg1, face0, face1), built on first use; None without mediapipe."""
    _load()
    if _modules is None:
        return None
    graphs: dict[str, Any] = _local.__dict__.setdefault("graphs", {})
    if name not in graphs:
        selfie, faces = _modules
        kind, model = name[:-1], int(name[-1])
        with quiet_native_stderr():  # the graph starts on its first run: warm it up while its chatter is muted
            if kind == "seg":
                graph = selfie.SelfieSegmentation(model_selection=model)
            else:  # full range (1) finds small faces in full-body shots; short range (0) some drawn faces 1 misses
                graph = faces.FaceDetection(model_selection=model, min_detection_confidence=FACE_CONFIDENCE)
            graph.process(np.zeros((64, 64, 3), np.uint8))
        graphs[name] = graph
    return graphs[name]


def available() -> str | None:
    """None when mediapipe works here, else the reason it does not."""
    _load()
    return _missing


def person_mask(rgb: np.ndarray, model: int) -> np.ndarray | None:
    """Person probability per pixel (float32, rgb's size) from segmentation ``model``; None without mediapipe."""
    graph = _graph(f"seg{model}")
    if graph is None:
        return None
    mask = graph.process(np.ascontiguousarray(rgb)).segmentation_mask
    return None if mask is None else np.asarray(mask, dtype=np.float32)


def find_faces(rgb: np.ndarray) -> list[Face]:
    """Every face in ``rgb`` (with its mouth keypoint), most confident first."""
    h, w = rgb.shape[:2]
    for name in ("face1", "face0"):
        graph = _graph(name)
        if graph is None:
            return []
        result = graph.process(np.ascontiguousarray(rgb))
        if result.detections:
            break
    else:
        return []
    faces = []
    for d in sorted(result.detections, key=lambda d: -d.score[0]):
        box = d.location_data.relative_bounding_box
        mouth = d.location_data.relative_keypoints[3]  # keypoints: eyes, nose tip, mouth centre, ears
        faces.append(Face(x=box.xmin * w, y=box.ymin * h, w=box.width * w, h=box.height * h,
                          mouth=(mouth.x * w, mouth.y * h), score=float(d.score[0])))
    return faces


def find_face(rgb: np.ndarray) -> Face | None:
    """The most confident face in ``rgb``, or None."""
    faces = find_faces(rgb)
    return faces[0] if faces else None


def find_small_face(rgb: np.ndarray, tile: int = TILE) -> Face | None:
    """A face too small to see in the whole picture: looked for in overlapping tiles of ``tile`` pixels.

    The detectors see 128-192 px; a person small in a wide photo has a face of a few pixels there.
    More than CROWD distinct faces make a crowd (a street, an audience): a place, not a person, so None.
    """
    h, w = rgb.shape[:2]
    if max(h, w) <= tile * 1.2:
        return None
    found: list[Face] = []
    step = tile // 2
    for y in range(0, max(1, h - step), step):
        for x in range(0, max(1, w - step), step):
            for face in find_faces(rgb[y:y + tile, x:x + tile]):
                face = face.scaled(1.0, x, y)
                same = [i for i, f in enumerate(found) if abs(f.x - face.x) < f.w and abs(f.y - face.y) < f.h]
                if not same:
                    found.append(face)
                elif face.score > found[same[0]].score:
                    found[same[0]] = face
    if not found or len(found) > CROWD:
        return None
    return max(found, key=lambda f: f.score)
