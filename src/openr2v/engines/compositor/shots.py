"""One shot, prepared once and drawn frame by frame.

Preparing a shot renders its plate canvas (the part of the world its camera sees, at the scale
its tightest view needs) and binds each actor's cut-out, placement and motion. Drawing frame k is
then array work only: one warp of the canvas for the camera, one warp and blend per actor (its
staging, motion and the camera folded into one matrix), then a rigged face's warp (a photo that
talks and blinks, ``face_rig``), else a drawn mouth for whoever is speaking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from openr2v.engines.compositor.blend import (
    Planes,
    draw_ellipse,
    draw_picture,
    drawn_matrix,
    plate_box,
    resize_plate,
    rgb_colour_yuv,
)
from openr2v.engines.compositor.camera import CameraMove, View
from openr2v.engines.compositor.cutouts import Cutout
from openr2v.engines.compositor.face_rig import FaceRig, Warp
from openr2v.engines.compositor.motion import Motion
from openr2v.engines.compositor.staging import Placement
from openr2v.engines.compositor.visemes import Visemes

__all__ = ["Actor", "FramePlan", "ShotRender"]

MOUTH_RGB = (62, 22, 28)
MOUTH_WIDTH = 0.16  # half-width, of the face width
MOUTH_OPEN = 0.10  # half-height at full loudness, of the face height
_MOUTH = rgb_colour_yuv(MOUTH_RGB)


@dataclass
class Actor:
    placement: Placement
    cutout: Cutout
    motion: Motion
    holder: Actor | None = None  # a held object moves with its holder's body
    rig: FaceRig | None = None  # a photo's face, animated by warping it
    visemes: Visemes | None = None  # a character's mouth shapes over the video (a drawn mouth follows them)

    def mouth(self, k: int) -> tuple[float, float, float]:
        """A drawn mouth at frame ``k``: how open (0..1), how wide (-1 puckered .. 1 spread) and how round
        (0..1), from the same visemes a photo's rig follows, so it shuts on m/b/p and between sounds, opens
        on vowels and narrows on rounded ones, not only following the volume."""
        if self.visemes is None:
            return self.motion.speech(k), 0.0, 0.0
        shape = self.visemes.at(k)
        return (0.0 if shape.closed else shape.open * (1 - 0.6 * shape.tuck)), shape.width, shape.round

    @property
    def label(self) -> str:
        return self.placement.label

    def world(self, k: int) -> np.ndarray:
        """3x3 cut-out pixels -> world units at frame k."""
        m = self.motion.matrix(k, self.placement.anchor) @ self.placement.matrix()
        if self.holder is not None:
            m = self.holder.motion.matrix(k, self.holder.placement.anchor) @ m
        return m


@dataclass
class ShotRender:
    first: int  # frames [first, last)
    last: int
    canvas: Planes
    region: View
    scale: float  # canvas pixels per world unit
    camera: CameraMove
    actors: list[Actor]
    width: int
    height: int
    fps: int
    fade_frames: int = 0  # actors fade in over these frames (a first frame shows alone at frame 0)
    notes: dict[str, object] = field(default_factory=dict)

    def view(self, k: int) -> View:
        span = max(1, self.last - self.first - 1)
        return self.camera.at((k - self.first) / span, (k - self.first) / self.fps, self.width, self.height)

    def plan(self, k: int) -> FramePlan:
        """Frame ``k``'s geometry and face warps. It reads no pixels, so frame k + 1's plan can be made while
        frame k is drawn; call it in frame order (a face keeps its last warp for reuse)."""
        view, s, r = self.view(k), self.scale, self.region
        box = plate_box(self.canvas[0].shape, ((view.x - r.x) * s, (view.y - r.y) * s,
                                               (view.x + view.w - r.x) * s, (view.y + view.h - r.y) * s))
        x0, y0, x1, y1 = box
        # The view the plate really shows (whole canvas pixels): the actors are placed in it.
        shown = View(r.x + x0 / s, r.y + y0 / s, (x1 - x0) / s, (y1 - y0) / s)
        to_out = shown.to_output(self.width, self.height)
        matrices = [to_out @ actor.world(k) for actor in self.actors]
        # A face is warped where its picture is really drawn (a resize lands on whole pixels).
        warps = [actor.rig.prepare(drawn_matrix(actor.cutout.at(k)[0].size, m, (self.height, self.width)), k)
                 if actor.rig is not None else None for actor, m in zip(self.actors, matrices, strict=True)]
        return FramePlan(box, matrices, warps)

    def draw(self, k: int, frame: Planes, plan: FramePlan | None = None) -> None:
        """Draw frame ``k`` into ``frame`` by ``plan`` (``self.plan(k)`` when not given)."""
        plan = plan or self.plan(k)
        resize_plate(self.canvas, plan.plate, frame)
        opacity = min(1.0, (k - self.first) / self.fade_frames) if self.fade_frames else 1.0
        for actor, m, warp in zip(self.actors, plan.matrices, plan.warps, strict=True):
            picture, face = actor.cutout.at(k)
            draw_picture(frame, picture, m[:2], opacity, still=len(actor.cutout.pictures) == 1)
            if actor.rig is not None:
                if warp is not None:
                    actor.rig.paint(frame, warp, k, opacity)
                continue
            opening, width, rounding = actor.mouth(k)
            if opening > 0.05 and face is not None and opacity > 0:
                _mouth(frame, m, face.mouth, face.w, face.h, opening * opacity, width, rounding)


@dataclass
class FramePlan:
    """What drawing one frame needs besides pixels: the plate's box, each actor's matrix, each face's warp."""

    plate: tuple[int, int, int, int]
    matrices: list[np.ndarray]
    warps: list[Warp | None]


def _mouth(frame: Planes, m: np.ndarray, mouth: tuple[float, float], face_w: float, face_h: float,
           opening: float, width: float, rounding: float) -> None:
    """An open mouth at the face's mouth point: as tall as it is open, wider when spread, narrower when round."""
    scale = math.sqrt(abs(np.linalg.det(m[:2, :2])))
    rx = MOUTH_WIDTH * face_w * scale * (0.8 + 0.2 * opening + 0.2 * width - 0.35 * rounding)
    if rx < 1.5:
        return  # too far away to see a mouth
    ry = max(0.6, MOUTH_OPEN * face_h * scale * opening)
    cx, cy = (m @ np.array([mouth[0], mouth[1], 1.0]))[:2]
    angle = math.degrees(math.atan2(m[1, 0], m[0, 0]))
    # The jaw drops: the opening grows downward from the lips.
    draw_ellipse(frame, (cx, cy + 0.25 * ry), (rx, ry), angle, _MOUTH, 0.92)
