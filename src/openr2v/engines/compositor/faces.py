"""Which actors get an animated face, and the performance each one gives over the video.

A character whose cut-out has face landmarks (a photo, or a filmed video: its face tracked picture by
picture) gets a ``FaceRig``: visemes from its speech, seeded blinks, and head motion that follows its
speech and turns toward whoever it is talking with. Drawn figures (even those the face mesh finds: their
skin is flat colour, which a photo's never is) and objects get none and keep their motion.
"""

from __future__ import annotations

import numpy as np

from openr2v.domain.prompt import Line
from openr2v.engines.base import RenderJob
from openr2v.engines.compositor.blink import blink_track
from openr2v.engines.compositor.cutouts import Cutout
from openr2v.engines.compositor.face_mesh import photographed
from openr2v.engines.compositor.face_rig import FaceParts, FaceRig
from openr2v.engines.compositor.head import Turn, head_pose
from openr2v.engines.compositor.staging import Placement
from openr2v.engines.compositor.visemes import Visemes, from_envelope, from_track
from openr2v.media.visemes import VisemeTrack

__all__ = ["prepare_face", "rig_for", "turns_for", "visemes_for"]

SPEAKER_TURN = 0.5  # a speaker turns half as far toward its listener as the listener toward it


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
    """The rig of actor ``p`` (None: no photographed face); ``tracks`` are the soundtrack's visemes."""
    parts = _face_parts(cutout, job.seed) if p.role == "character" else None
    if parts is None:
        return None
    frames, fps = job.duration * job.fps, job.fps
    envelope = envelopes.get(p.label)
    return FaceRig(parts,
                   visemes=visemes_for(p.label, job, envelopes, tracks),
                   blinks=blink_track(frames, fps, job.seed, index),
                   head=head_pose(frames, fps, job.seed, index, envelope, turns_for(p.label, lines, placements, fps)),
                   frame_size=(job.width, job.height))


def prepare_face(cutout: Cutout, seed: int) -> None:
    """Build a character cut-out's first face (mesh, mouth and lid colours) now: done in the cut-out's worker,
    it is ready before the first frame instead of delaying it (~10 ms a face)."""
    parts = _face_parts(cutout, seed)
    if parts is not None:
        parts.at(0)


def _face_parts(cutout: Cutout, seed: int) -> FaceParts | None:
    """The faces of ``cutout``'s pictures, kept in its cache (None: no photographed face)."""
    marks = cutout.landmarks
    if marks is None:
        return None
    if "photo" not in cutout.rig_cache:
        found = [i for i in range(len(marks)) if np.isfinite(marks[i]).all()]
        cutout.rig_cache["photo"] = bool(found) and photographed(cutout.pictures[found[0]].y, marks[found[0]])
    if not cutout.rig_cache["photo"]:
        return None
    return FaceParts(cutout.pictures, marks, cutout.index, cutout.rig_cache, seed)
