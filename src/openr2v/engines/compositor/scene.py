"""The scene: from a job to a cast, cut-outs, plates, and the list of shots to draw.

Stages (``build_scene``): 1. the shot plan (recorded at submit, else planned now); 2. a look at
every reference (person? face? wide? a storyboard grid?) and casting; 3. cut-outs for characters
and objects, started in the background in the order the shots need them (the first shot waits
only for its own cast); 4. a plate per shot (the storyboard's panel, the first frame for shot 1, the background
the shot names, the scene's background, the first frame, or a plate derived from the main
reference). ``prepare_shot`` then stages one shot just before it is drawn, so only one shot's
canvas is in memory at a time.
"""

from __future__ import annotations

import math
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from openr2v.domain.prompt import Shot, ShotPlan, label_pattern
from openr2v.engines.base import RenderJob, ResolvedReference
from openr2v.engines.common import vision
from openr2v.engines.common.casting import Role, cast
from openr2v.engines.common.segment import Look, look_at
from openr2v.engines.common.sound import plan_for
from openr2v.engines.common.sources import load_still
from openr2v.engines.common.storyboard import Grid, find_grid
from openr2v.engines.compositor.camera import CameraMove, plan_camera
from openr2v.engines.compositor.cutouts import Cutout, cut_out, video_size
from openr2v.engines.compositor.faces import prepare_face, rig_for, visemes_for
from openr2v.engines.compositor.motion import WALK, Motion, exit_side, make_motion
from openr2v.engines.compositor.plates import Plate, derived_plate, plate_from, render_canvas
from openr2v.engines.compositor.shots import Actor, ShotRender
from openr2v.engines.compositor.staging import stage_order, stage_shot, subjects_of
from openr2v.media.visemes import VisemeTrack

__all__ = ["Scene", "ShotSpec", "build_scene", "prepare_shot"]

# Decoded video cut-outs are held in memory (4:2:0 + alpha, 2.5 bytes a pixel); past this a loop is shortened.
FRAME_BUDGET_BYTES = 256 * 1024 * 1024
FADE_SECONDS = 0.5  # with a first frame, actors fade in: frame 0 is the first frame itself
CLOSE_UP_BLUR = 0.004  # of the canvas width: a close-up's shallow depth of field


@dataclass
class ShotSpec:
    shot: Shot
    first: int
    last: int
    plate: Plate
    from_first_frame: bool = False


@dataclass
class Scene:
    plan: ShotPlan
    roles: dict[str, Role]
    pending: dict[str, Future[Cutout]]  # cut-outs, being made in the background in the order shots need them
    order: list[str]
    shots: list[ShotSpec]
    loop_seconds: dict[str, float]
    videos: set[str]
    notes: dict[str, object] = field(default_factory=dict)
    visemes: dict[str, VisemeTrack] = field(default_factory=dict)  # the soundtrack's, for the face rigs

    def cutouts(self, labels: set[str]) -> dict[str, Cutout]:
        """The cut-outs of ``labels`` (those that have one), waiting for any still being made."""
        return {label: self.pending[label].result() for label in self.pending if label in labels}

    def finish(self) -> dict[str, dict[str, str]]:
        """Wait for every cut-out and return the casting notes with each one's method."""
        for label, cut in self.cutouts(set(self.pending)).items():
            self.roles[label].method = cut.method
        return {label: role.note() for label, role in self.roles.items()}

    def cancel(self) -> None:
        for future in self.pending.values():
            future.cancel()


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Two long-lived threads for looking at and cutting out references side by side (2 cores).

    Long-lived because each keeps its own mediapipe graphs (see ``vision``), which cost ~50 ms to build.
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="openr2v-cutout")
        return _POOL


def build_scene(job: RenderJob, cache_dir: Path | None) -> Scene:
    width, height, frames = job.width, job.height, job.duration * job.fps
    # 1. Plan.
    plan = plan_for(job)
    # 2. Look and cast.
    looks = list(_pool().map(lambda ref: look_at(ref, cache_dir), job.references))
    grid = _storyboard_grid(job, plan)
    roles = cast(job.request.prompt, looks, grid)
    recast = _recast_speakers(plan, roles)
    # 3. Cut-outs.
    videos = {r.label for r in job.references if r.kind == "video" and roles[r.label].role in ("character", "object")}
    # Made in the background, in the order the shots need them: the first shot starts as soon as its own
    # cast is ready, and the rest are cut out while its frames are drawn and encoded.
    need = [label for spec in _shot_list(plan) for label in spec if label in roles]
    order = sorted((r for r in job.references if roles[r.label].role in ("character", "object")),
                   key=lambda r: need.index(r.label) if r.label in need else len(need))
    looks_by = {lk.label: lk for lk in looks}
    loops_wanted = {r.label: _loop_frames(r, frames, len(videos)) for r in order}
    pending = {r.label: _pool().submit(_cut_out, r, looks_by[r.label], roles[r.label].role, fps=job.fps,
                                       loop=loops_wanted[r.label], cache_dir=cache_dir, seed=job.seed) for r in order}
    # The soundtrack gets each video's loop before its pictures are decoded: from its duration.
    loops = {r.label: min(loops_wanted[r.label], math.ceil((r.info.duration or 0) * job.fps) or 1) / job.fps
             for r in order if r.label in videos}
    # 4. Plates, shot by shot.
    shots = _shots(job, plan, roles, looks, grid, width, height, frames)
    missing = vision.available()
    notes: dict[str, object] = {
        "plan_mode": plan.mode,
        "segmentation": "mediapipe" if missing is None else missing,
        "background": shots[0].plate.name if shots else None,
    }
    if recast:
        notes["speakers_recast"] = recast
    if loops:
        notes["video_loops_seconds"] = {k: round(v, 3) for k, v in loops.items()}
    return Scene(plan=plan, roles=roles, pending=pending, order=stage_order(roles), shots=shots, loop_seconds=loops,
                 videos=videos, notes=notes)


def _cut_out(ref: ResolvedReference, look: Look, role: str, *, fps: int, loop: int, cache_dir: Path | None,
             seed: int) -> Cutout:
    """A reference's cut-out; a character's with its face rig's first face built too."""
    cutout = cut_out(ref, look, role, fps=fps, loop=loop, cache_dir=cache_dir)
    if role == "character":
        prepare_face(cutout, seed)
    return cutout


def _shot_list(plan: ShotPlan) -> list[list[str]]:
    """The labels each shot shows, in shot order (held objects follow their holders)."""
    return [list(shot.on_screen) for shot in plan.shots]


def _loop_frames(ref: ResolvedReference, frames: int, videos: int) -> int:
    """Output frames a reference's pictures cover: all of them, unless videos' pictures would overflow the budget."""
    if ref.kind != "video":
        return frames
    w, h = video_size(ref)
    return max(1, min(frames, FRAME_BUDGET_BYTES // max(1, videos * w * h * 5 // 2)))


def _recast_speakers(plan: ShotPlan, roles: dict[str, Role]) -> list[str]:
    """A place cannot speak: a line (or a close-up) the grammar gave to a background goes to the shot's character.

    "Close-up of Image 1 in Image 5, saying: '...'" names the place last before the verb; the
    person on screen is the speaker. Changes the plan in place (the soundtrack follows it).
    """
    changes = []
    for shot in plan.shots:
        chars = [label for label in shot.on_screen if label in roles and roles[label].role == "character"]
        if not chars:
            continue
        for ln in shot.lines:
            if ln.speaker in roles and roles[ln.speaker].role in ("background", "storyboard"):
                who = shot.focus if shot.focus in chars else chars[0]
                changes.append(f"shot {shot.index}: {ln.speaker} -> {who}")
                ln.speaker = who
        if shot.focus in roles and roles[shot.focus].role in ("background", "storyboard"):
            shot.focus = chars[0]
    return changes


def _storyboard_grid(job: RenderJob, plan: ShotPlan) -> Grid | None:
    refs = job.references
    if len(refs) != 1 or refs[0].kind != "image":
        return None
    grid = find_grid(load_still(refs[0].path))
    # Two panels could be a photo with a flat band across it; ask for a storyboard prompt then.
    if grid is not None and (grid.count >= 4 or plan.mode == "storyboard"):
        return grid
    return None


def _frame_bounds(shots: list[Shot], fps: int, frames: int) -> list[tuple[Shot, int, int]]:
    starts = [min(frames, round(s.start * fps)) for s in shots] + [frames]
    starts[0] = 0
    return [(s, a, b) for s, a, b in zip(shots, starts, starts[1:], strict=False) if b > a]


def _panel_shots(plan: ShotPlan, grid: Grid, duration: int) -> list[Shot]:
    """A storyboard plan keeps its items; any other plan gets one shot per panel, in reading order."""
    if plan.mode == "storyboard":
        return plan.shots
    n = min(grid.count, max(1, duration * 2))
    return [Shot(index=i + 1, start=round(duration * i / n, 4), end=round(duration * (i + 1) / n, 4), text="",
                 framing="wide" if i == 0 else "medium") for i in range(n)]


def _shots(job: RenderJob, plan: ShotPlan, roles: dict[str, Role], looks: list[Look], grid: Grid | None,
           width: int, height: int, frames: int) -> list[ShotSpec]:
    plates: dict[str, Plate] = {}

    def plate(label: str) -> Plate:
        if label not in plates:
            ref = next(r for r in job.references if r.label == label)
            plates[label] = plate_from(load_still(ref.path), width, height, label)
        return plates[label]

    backgrounds = [label for label, r in roles.items() if r.role == "background"]
    first = plate_from(load_still(job.first_frame.path), width, height, "first frame") if job.first_frame else None
    if grid is not None:
        img = load_still(job.references[0].path)
        panels = [plate_from(img.crop(box), width, height, f"{job.references[0].label} panel {i + 1}")
                  for i, box in enumerate(grid.panels)]
        shots = _panel_shots(plan, grid, job.duration)
        bounds = _frame_bounds(shots, job.fps, frames)
        specs = [ShotSpec(s, a, b, panels[i * grid.count // len(bounds)]) for i, (s, a, b) in enumerate(bounds)]
        if first is not None:
            specs[0] = ShotSpec(specs[0].shot, specs[0].first, specs[0].last, first, True)
        return specs
    main_ref = next((lk for lk in looks if roles[lk.label].role == "character"), looks[0] if looks else None)
    fallback: Plate
    if backgrounds:
        fallback = plate(backgrounds[0])
    elif first is not None:
        fallback = first
    elif main_ref is not None:
        fallback = derived_plate(Image.fromarray(main_ref.keyframe), width, height, f"derived from {main_ref.label}")
    else:
        fallback = derived_plate(Image.new("RGB", (16, 9), (90, 90, 100)), width, height, "grey")
    out: list[ShotSpec] = []
    current = fallback
    for i, (s, a, b) in enumerate(_frame_bounds(plan.shots, job.fps, frames)):
        if i == 0 and first is not None:
            out.append(ShotSpec(s, a, b, first, True))
            continue
        named = [label for label in s.on_screen if label in backgrounds]
        # A shot that names a background goes there; one that does not stays where the story is.
        if named:
            current = plate(named[0])
        out.append(ShotSpec(s, a, b, current))
    return out


def _subject_label(shot: Shot, labels: list[str]) -> str | None:
    hits = sorted((m.start(), label) for label in labels
                  for m in [re.search(label_pattern(label), shot.text, re.I)] if m)
    return hits[0][1] if hits else (labels[0] if labels else None)


def prepare_shot(scene: Scene, spec: ShotSpec, job: RenderJob, envelopes: dict[str, np.ndarray]) -> ShotRender:
    """Stage, frame and light one shot: its canvas, its actors and their motion."""
    width, height, fps = job.width, job.height, job.fps
    shot = spec.shot
    window = spec.plate.window_x()
    holders = {label for label, r in scene.roles.items() if r.role == "object" and r.holder in shot.on_screen}
    cutouts = scene.cutouts(set(shot.on_screen) | holders)
    placements = stage_shot(shot.on_screen, scene.roles, scene.order, cutouts, width, height, job.seed, window)
    rng = np.random.default_rng([job.seed, shot.index, 31])
    subjects = subjects_of(placements)
    span = max(1, spec.last - spec.first - 1)  # a shot's frames run over fractions 0..1 of its move
    cues = [((c.start * fps - spec.first) / span, (c.end * fps - spec.first) / span, c.framing, c.subject)
            for c in shot.cues if (c.framing, c.subject) != (shot.framing, shot.focus)]
    move = plan_camera(shot.framing, shot.camera, subjects, shot.focus, width, height, rng,
                       from_full=spec.from_first_frame, cues=cues, seconds=(spec.last - spec.first) / fps)
    region, scale = move.canvas(width, height)
    if spec.from_first_frame:
        region, scale = move.start, 1.0  # frame 0 is the first frame: the canvas is it, pixel for pixel
    people = [p for p in placements if p.role == "character"]
    blur = CLOSE_UP_BLUR if shot.framing == "close-up" and people else 0.0
    canvas, _ = render_canvas(spec.plate, region, scale, blur)

    actors: dict[str, Actor] = {}
    for p in placements:
        index = list(scene.roles).index(p.label)
        motion = make_motion(p.label, index, job.seed, fps, p.height,
                             video=p.label in scene.videos or p.role == "object")
        if p.role == "character":
            motion.envelope = envelopes.get(p.label)
        actors[p.label] = Actor(p, cutouts[p.label], motion, holder=actors.get(p.holder or ""),
                                rig=rig_for(p, cutouts[p.label], index, job, envelopes, scene.plan.lines, placements,
                                            scene.visemes),
                                visemes=visemes_for(p.label, job, envelopes, scene.visemes)
                                if p.role == "character" else None)
    walker = _subject_label(shot, [p.label for p in people])
    if walker is not None:
        _walks(actors[walker].motion, actors[walker], shot, move, spec.first, spec.last, fps, width)
    fade = round(FADE_SECONDS * fps) if spec.from_first_frame else 0
    notes = {"index": shot.index, "frames": [spec.first, spec.last], "framing": shot.framing,
             "camera": move.kind, "plate": spec.plate.name, "actors": [p.label for p in placements],
             "animated_faces": [label for label, a in actors.items() if a.rig is not None]}
    return ShotRender(first=spec.first, last=spec.last, canvas=canvas, region=region, scale=scale, camera=move,
                      actors=list(actors.values()), width=width, height=height, fps=fps, fade_frames=fade, notes=notes)


def _walks(motion: Motion, actor: Actor, shot: Shot, move: CameraMove, first: int, last: int, fps: int,
           width: int) -> None:
    """The prompt's entrance ("walks in from the left") and exit ("walks out to the right") for the subject."""
    x0, _, x1, _ = actor.placement.box
    span = min(round(WALK * fps), max(1, int(0.6 * (last - first))))
    margin = 0.02 * width
    if shot.entrance in ("left", "right"):
        direction = 1.0 if shot.entrance == "left" else -1.0
        view = move.start
        motion.travel = (x1 - view.x + margin) if direction > 0 else (view.x + view.w - x0 + margin)
        motion.entrance = (direction, first, first + span)
    side = exit_side(shot.text)
    if side is not None:
        view = move.end
        motion.exit = (side, last - span, last)
        travel = (view.x + view.w - x0 + margin) if side > 0 else (x1 - view.x + margin)
        motion.travel = max(motion.travel, travel)
