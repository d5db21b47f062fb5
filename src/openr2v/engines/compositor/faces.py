"""Which actors get an animated face, and the performance each one gives over the video.

A character whose cut-out has face landmarks (a photo, or a video frozen on one picture) gets a
``FaceRig``: visemes from its speech, seeded blinks, and head motion that follows its speech and
turns toward whoever it is talking with. Drawn figures (even those the face mesh finds: their skin is
flat colour, which a photo's never is), objects and moving videos get none and keep their motion.
"""

from __future__ import annotations

import cv2
import numpy as np

from openr2v.domain.prompt import Line
from openr2v.engines.base import RenderJob
from openr2v.engines.compositor import face_mesh as fm
from openr2v.engines.compositor.blend import Picture
from openr2v.engines.compositor.blink import blink_track
from openr2v.engines.compositor.cutouts import Cutout
from openr2v.engines.compositor.face_rig import FaceRig
from openr2v.engines.compositor.head import Turn, head_pose
from openr2v.engines.compositor.staging import Placement
from openr2v.engines.compositor.visemes import Visemes, from_envelope, from_track
from openr2v.media.visemes import VisemeTrack

__all__ = ["rig_for", "turns_for", "visemes_for"]

SPEAKER_TURN = 0.5  # a speaker turns half as far toward its listener as the listener toward it
DRAWN_FLAT = 0.5  # a face whose skin is flatter than this share (no fine texture at all) is drawn, not shot


def photographed(picture: Picture, marks: np.ndarray) -> bool:
    """Whether the face inside the landmarks' oval has a photo's texture (measured: drawn ~0.9 flat, photos
    ~0.1, down to a 400 px WebP)."""
    oval = np.zeros(picture.y.shape, np.uint8)
    cv2.fillPoly(oval, [np.round(marks[list(fm.OVAL)]).astype(np.int32)], (1,))
    inside = cv2.erode(oval, np.ones((5, 5), np.uint8)) > 0
    if inside.sum() < 50:
        return False
    y = picture.y.astype(np.float32)
    fine = np.abs(y - cv2.GaussianBlur(y, (0, 0), 1.0))[inside]
    return float((fine < 0.5).mean()) < DRAWN_FLAT


def turns_for(label: str, lines: list[Line], placements: list[Placement], fps: int) -> list[Turn]:
    """While ``label`` listens to a line (it is the addressee), it turns toward the speaker; a speaker, toward
    its addressee. Both must be on screen (their placements give the direction)."""
    where = {p.label: p.anchor[0] for p in placements}
    out = []
    for ln in lines:
        if not ln.speaker or not ln.addressee or ln.speaker not in where or ln.addressee not in where:
            continue
        if label == ln.addressee:
            other, strength = ln.speaker, 1.0
        elif label == ln.speaker:
            other, strength = ln.addressee, SPEAKER_TURN
        else:
            continue
        direction = float(np.sign(where[other] - where[label]))
        if direction:
            out.append(Turn(round(ln.start * fps), round(ln.end * fps), direction, strength))
    return out


def visemes_for(label: str, job: RenderJob, envelopes: dict[str, np.ndarray],
                tracks: dict[str, VisemeTrack]) -> Visemes:
    """Character ``label``'s mouth over the video: from the soundtrack's phonemes, else from its loudness."""
    frames, fps = job.duration * job.fps, job.fps
    envelope, track = envelopes.get(label), tracks.get(label)
    return from_track(track, envelope, frames, fps) if track is not None else from_envelope(envelope, frames, fps)


def rig_for(p: Placement, cutout: Cutout, index: int, job: RenderJob, envelopes: dict[str, np.ndarray],
            lines: list[Line], placements: list[Placement], tracks: dict[str, VisemeTrack]) -> FaceRig | None:
    """The rig of actor ``p`` (None: not a still photographed face); ``tracks`` are the soundtrack's visemes."""
    if p.role != "character" or cutout.landmarks is None or len(cutout.pictures) != 1:
        return None
    if "photo" not in cutout.rig_cache:
        cutout.rig_cache["photo"] = photographed(cutout.pictures[0], cutout.landmarks)
    if not cutout.rig_cache["photo"]:
        return None
    frames, fps = job.duration * job.fps, job.fps
    envelope = envelopes.get(p.label)
    return FaceRig.build(cutout.pictures[0], cutout.landmarks, cutout.rig_cache, job.seed,
                         visemes=visemes_for(p.label, job, envelopes, tracks),
                         blinks=blink_track(frames, fps, job.seed, index),
                         head=head_pose(frames, fps, job.seed, index, envelope,
                                        turns_for(p.label, lines, placements, fps)),
                         frame_size=(job.width, job.height))
