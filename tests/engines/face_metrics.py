"""Measuring a rendered talking face: mediapipe's face mesh on every output frame, the output's speech loudness.

Used by the face rig's tests and by anyone checking a render by hand:
``face_track`` gives per frame whether a face was found, the mouth opening (inner-lip gap / face
height), the eye aspect ratio, the landmark centroid and the mouth's box; ``audio_envelope`` the
output audio's RMS per video frame; ``flat_share`` how much of a box is perfectly flat (3x3);
``mouth_texture`` how grainy the open mouth's dark inside is next to the skin above the lips.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

UPPER_INNER_MID, LOWER_INNER_MID = 13, 14
FOREHEAD, CHIN = 10, 152
EYES = ((159, 145, 33, 133), (386, 374, 263, 362))  # upper lid, lower lid, corners
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321, 375)


@dataclass
class FaceTrack:
    found: np.ndarray  # bool per frame
    opening: np.ndarray  # inner-lip gap / face height (nan where no face)
    eyes: np.ndarray  # eye aspect ratio, both eyes' mean (nan where no face)
    centroid: np.ndarray  # (frames, 2) landmark centroid, pixels
    face_h: np.ndarray  # pixels
    mouth_box: np.ndarray  # (frames, 4) x0, y0, x1, y1 of the outer lips, pixels

    def blinks(self, dip: float = 0.6) -> int:
        """Dips of the eye aspect ratio below ``dip`` x its median (runs of such frames count once)."""
        ear = self.eyes[self.found]
        low = ear < dip * float(np.median(ear))
        return int(np.count_nonzero(low[1:] & ~low[:-1]) + int(low[0]))

    def max_jump(self) -> float:
        """The largest centroid move between consecutive frames, in face heights."""
        both = self.found[1:] & self.found[:-1]
        steps = np.linalg.norm(np.diff(self.centroid, axis=0), axis=1)[both]
        return float((steps / self.face_h[1:][both]).max()) if steps.size else 0.0


def face_track(path: Path) -> tuple[FaceTrack, list[np.ndarray]]:
    """The face mesh on every frame of ``path`` (tracking mode, as for a video) and the decoded RGB frames."""
    from mediapipe.python.solutions import face_mesh

    frames: list[np.ndarray] = []
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    n = len(frames)
    found = np.zeros(n, bool)
    opening, eyes, face_h = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    centroid, box = np.full((n, 2), np.nan), np.full((n, 4), np.nan)
    with face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True) as mesh:
        for i, rgb in enumerate(frames):
            result = mesh.process(rgb)
            if not result.multi_face_landmarks:
                continue
            h, w = rgb.shape[:2]
            p = np.array([(q.x * w, q.y * h) for q in result.multi_face_landmarks[0].landmark])
            fh = float(np.linalg.norm(p[FOREHEAD] - p[CHIN]))
            found[i], face_h[i] = True, fh
            opening[i] = float(np.linalg.norm(p[UPPER_INNER_MID] - p[LOWER_INNER_MID])) / fh
            eyes[i] = float(np.mean([np.linalg.norm(p[a] - p[b]) / np.linalg.norm(p[c] - p[d]) for a, b, c, d in EYES]))
            centroid[i] = p[:468].mean(axis=0)
            lips = p[list(LIPS_OUTER)]
            box[i] = (*lips.min(axis=0), *lips.max(axis=0))
    return FaceTrack(found, opening, eyes, centroid, face_h, box), frames


def audio_envelope(path: Path, frames: int, fps: int = 30) -> np.ndarray:
    """The output audio's RMS per video frame (all channels mixed)."""
    with av.open(str(path)) as c:
        chunks = [f.to_ndarray().astype(np.float64) for f in c.decode(audio=0)]
        rate = c.streams.audio[0].rate
    samples = np.concatenate(chunks, axis=1).mean(axis=0) if chunks else np.zeros(0)
    hop = rate / fps
    out = np.zeros(frames)
    for k in range(frames):
        seg = samples[int(k * hop):int((k + 1) * hop)]
        out[k] = float(np.sqrt(np.mean(seg**2))) if seg.size else 0.0
    return out


def flat_share(rgb: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """The share of pixels in ``box`` whose whole 3x3 neighbourhood has exactly their colour."""
    x0, y0, x1, y1 = box
    patch = rgb[max(0, y0 - 1):y1 + 1, max(0, x0 - 1):x1 + 1].astype(np.int16)
    if patch.shape[0] < 3 or patch.shape[1] < 3:
        return 0.0
    centre = patch[1:-1, 1:-1]
    flat = np.ones(centre.shape[:2], bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = patch[1 + dy:patch.shape[0] - 1 + dy, 1 + dx:patch.shape[1] - 1 + dx]
            flat &= (shifted == centre).all(axis=2)
    return float(flat.mean())


def mouth_texture(rgb: np.ndarray, box: tuple[int, int, int, int]) -> float | None:
    """Fine texture (mean |luma - its 1 px blur|) inside the mouth's dark part, over that of the skin above it.

    A flat painted mouth scores far below 1 (x264 keeps a little noise even there, so an exact-flatness
    count barely sees it); a mouth with the photo's grain scores near 1. None when no dark inside shows.
    """
    x0, y0, x1, y1 = box
    h = y1 - y0
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    fine = np.abs(g - cv2.GaussianBlur(g, (0, 0), 1.0))
    inside = g[y0:y1, x0:x1]
    dark = (inside < 0.6 * np.median(inside)).astype(np.uint8)
    core = cv2.erode(dark, np.ones((5, 5), np.uint8)) > 0  # away from the lips' edge
    skin = fine[max(0, y0 - h):y0, x0:x1]
    if core.sum() < 20 or skin.size == 0:
        return None
    return float(fine[y0:y1, x0:x1][core].mean() / max(1e-6, skin.mean()))

