"""The camera: each shot's view of the world from its framing word, moved as the plan says.

World units are output pixels at the widest view (the world is W x H). A view is a rectangle of
the world with the output's aspect; the frame shows it scaled to W x H. Framing words pick the
view (wide: the set; medium: the people on screen, waist up; close-up: the focus's face, found by
face detection; overhead: the set, pushing in; action: a tighter, panning, shaking view) and
camera words move it (zoom in/out, pan left/right). Without a camera word a seeded gentle drift
keeps the picture alive. Moves are eased and never leave the world, so the plate always fills
the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["CameraMove", "Subject", "View", "keep_heads", "plan_camera"]

MEDIUM_MIN = 0.62  # of the world width: a medium view is never tighter than this
CLOSE_FACES = 2.1  # a close-up's view is this many face heights tall (the face fills about half the frame)
ZOOM = 1.25  # how much wider a zoom starts (zoom in) or ends (zoom out)
PAN = 0.10  # of the world width a pan travels
DRIFT = 0.05  # the default drift: a 5% push, pull or slide
SHAKE = 0.004  # of the world width, the amplitude of an action shot's handheld shake
CUE_RAMP = 0.6  # seconds the camera takes to reach a cue's framing
MAX_CANVAS = 2.5  # a shot's canvas is at most this many frame widths wide


@dataclass(frozen=True)
class View:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    def scaled(self, f: float) -> View:
        w, h = self.w * f, self.h * f
        return View(self.cx - w / 2, self.cy - h / 2, w, h)

    def moved(self, dx: float, dy: float = 0.0) -> View:
        return View(self.x + dx, self.y + dy, self.w, self.h)

    def clamped(self, width: float, height: float) -> View:
        """Inside the world: shrunk to fit if needed (keeping the aspect), then slid in."""
        f = min(1.0, width / self.w, height / self.h)
        w, h = self.w * f, self.h * f
        return View(min(max(self.cx - w / 2, 0.0), width - w), min(max(self.cy - h / 2, 0.0), height - h), w, h)

    def to_output(self, width: int, height: int) -> np.ndarray:
        """3x3 matrix from world units to output pixels."""
        sx, sy = width / self.w, height / self.h
        return np.array([[sx, 0, -self.x * sx], [0, sy, -self.y * sy], [0, 0, 1]], dtype=np.float64)


@dataclass(frozen=True)
class Subject:
    """Someone or something on screen, in world units: its box and (for characters) its face."""

    label: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    face: tuple[float, float, float, float] | None = None  # x, y, w, h
    character: bool = True
    head: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1: the face with its hair or hat


def keep_heads(view: View, heads: list[tuple[float, float, float, float]], width: int, height: int) -> View:
    """``view`` slid (and widened if it must be) so every head is wholly inside it, with a little air."""
    if not heads:
        return view
    pad = 0.12 * max(h[3] - h[1] for h in heads)
    x0, y0 = min(h[0] for h in heads) - pad, min(h[1] for h in heads) - pad
    x1, y1 = max(h[2] for h in heads) + pad, max(h[3] for h in heads) + pad
    grow = max(1.0, (x1 - x0) / view.w, (y1 - y0) / view.h)
    if grow > 1.0:
        view = view.scaled(grow)
    x = min(max(view.x, x1 - view.w), x0)
    y = min(max(view.y, y1 - view.h), y0)
    return View(x, y, view.w, view.h).clamped(width, height)


@dataclass(frozen=True)
class CameraMove:
    start: View
    end: View
    shake: float  # world units
    phase: float
    kind: str = "drift"  # what the move is: zoom in, zoom out, pan left, pan right, push, pull, slide
    ease: bool = True
    # Cue moves over the shot's own: (from, there, hold to, back by, view) in shot fractions; the
    # view is blended in from ``from`` to ``there``, held, and blended out by ``back by`` (> 1: held to the end).
    cues: tuple[tuple[float, float, float, float, View], ...] = ()

    def base(self, t: float) -> View:
        """The view at fraction ``t`` without its shake."""
        u = t * t * (3 - 2 * t) if self.ease else t
        view = _mix(self.start, self.end, u)
        for u0, there, hold, back, cue in self.cues:
            if u0 <= t < there:
                view = _mix(view, cue, _smooth((t - u0) / (there - u0)))
            elif there <= t <= hold:
                view = cue
            elif hold < t < back:
                view = _mix(view, cue, 1.0 - _smooth((t - hold) / (back - hold)))
        return view

    def at(self, t: float, seconds: float, width: float, height: float) -> View:
        """The view at fraction ``t`` (0..1) of the shot, ``seconds`` into it."""
        view = self.base(t)
        if self.shake:
            dx = self.shake * (math.sin(2 * math.pi * 1.3 * seconds + self.phase)
                               + 0.5 * math.sin(2 * math.pi * 3.1 * seconds + 2 * self.phase))
            dy = self.shake * 0.7 * math.sin(2 * math.pi * 1.7 * seconds + 3 * self.phase)
            view = view.moved(dx, dy).clamped(width, height)
        return view

    def canvas(self, width: int, height: int) -> tuple[View, float]:
        """The world region the move sees (with its shake) and the canvas scale its tightest view needs."""
        margin = self.shake * 2
        views = [self.start, self.end] + [c[-1] for c in self.cues]
        x0 = max(0.0, min(v.x for v in views) - margin)
        y0 = max(0.0, min(v.y for v in views) - margin)
        x1 = min(float(width), max(v.x + v.w for v in views) + margin)
        y1 = min(float(height), max(v.y + v.h for v in views) + margin)
        region = View(x0, y0, x1 - x0, y1 - y0)
        scale = width / min(v.w for v in views)
        scale = min(scale, MAX_CANVAS * width / region.w)
        return region, scale


def _world(width: int, height: int) -> View:
    return View(0.0, 0.0, float(width), float(height))


def _union(subjects: list[Subject]) -> tuple[float, float, float, float]:
    return (min(s.box[0] for s in subjects), min(s.box[1] for s in subjects),
            max(s.box[2] for s in subjects), max(s.box[3] for s in subjects))


def framing_view(framing: str, subjects: list[Subject], focus: str | None, width: int, height: int) -> View:
    """The resting view for ``framing`` of these subjects."""
    world = _world(width, height)
    aspect = height / width
    people = [s for s in subjects if s.character] or subjects
    if framing in ("wide", "overhead") or not people:
        if framing == "close-up" and not people:
            return world.scaled(0.55)
        if framing == "medium" and not people:
            return world.scaled(0.8)
        return world
    if framing == "close-up":
        target = next((s for s in people if s.label == focus), people[0])
        fx, fy, fw, fh = target.face or (target.box[0], target.box[1], target.box[2] - target.box[0],
                                         0.25 * (target.box[3] - target.box[1]))
        vh = max(fh * CLOSE_FACES, 0.22 * height)
        vw = vh / aspect
        view = View(fx + fw / 2 - vw / 2, fy + fh / 2 - 0.47 * vh, vw, vh).clamped(width, height)
        return keep_heads(view, [target.head] if target.head else [], width, height)
    x0, y0, x1, _ = _union(people)
    if framing == "action":
        vw = max(0.8 * width, (x1 - x0) * 1.15)
    else:  # medium: waist up, everyone on screen in
        vw = max(MEDIUM_MIN * width, (x1 - x0) * 1.2)
    vh = vw * aspect
    view = View((x0 + x1) / 2 - vw / 2, y0 - 0.1 * vh, vw, vh).clamped(width, height)
    return keep_heads(view, _heads(people), width, height)


def _heads(subjects: list[Subject]) -> list[tuple[float, float, float, float]]:
    return [s.head for s in subjects if s.character and s.head is not None]


def heads_in_view(framing: str, subjects: list[Subject], focus: str | None) -> list[tuple[float, float, float, float]]:
    """The heads a framing must show whole: the focus's in a close-up, everyone's otherwise."""
    people = [s for s in subjects if s.character]
    if framing == "close-up" and people:
        target = next((s for s in people if s.label == focus), people[0])
        return _heads([target])
    return _heads(people)


def plan_camera(framing: str, camera: str | None, subjects: list[Subject], focus: str | None, width: int,
                height: int, rng: np.random.Generator, *, from_full: bool = False,
                cues: list[tuple[float, float, str, str | None]] | None = None, seconds: float = 0.0) -> CameraMove:
    """The shot's move. ``from_full`` starts on the whole world (a first frame is frame 0 exactly).

    ``cues`` (from, to, framing, subject; fractions of the shot, which lasts ``seconds``) move the
    camera to a framing for a while: a close-up while someone speaks.
    """
    rest = framing_view(framing, subjects, focus, width, height)
    full = rest.w >= width - 1e-6
    if camera is None:
        camera = "zoom in" if framing == "overhead" else ("pan" if framing == "action" else "drift")
    if camera == "zoom in":
        start, end = (rest, rest.scaled(1 / ZOOM)) if full else (rest.scaled(ZOOM), rest)
    elif camera == "zoom out":
        start, end = (rest.scaled(1 / ZOOM), rest) if full else (rest, rest.scaled(ZOOM))
    elif camera in ("pan left", "pan right", "pan"):
        sign = {"pan left": -1.0, "pan right": 1.0}.get(camera, float(rng.choice([-1.0, 1.0])))
        camera = "pan right" if sign > 0 else "pan left"
        base = rest.scaled(0.85) if full else rest
        travel = PAN * width * (1.6 if framing == "action" else 1.0)
        start, end = base.moved(-sign * travel / 2), base.moved(sign * travel / 2)
    else:  # a gentle seeded drift: push in, pull out, or slide sideways
        pick = int(rng.integers(0, 4))
        if pick == 0:
            start, end, camera = rest, rest.scaled(1 - DRIFT), "drift: push"
        elif pick == 1:
            start, end, camera = rest.scaled(1 - DRIFT), rest, "drift: pull"
        else:
            base = rest.scaled(1 - DRIFT)
            sign = 1.0 if pick == 2 else -1.0
            start, end = base.moved(-sign * DRIFT * width / 2), base.moved(sign * DRIFT * width / 2)
            camera = "drift: slide right" if sign > 0 else "drift: slide left"
    heads = heads_in_view(framing, subjects, focus)
    start, end = keep_heads(start, heads, width, height), keep_heads(end, heads, width, height)
    if from_full:
        start = _world(width, height)
    shake = SHAKE * width if framing == "action" else 0.0
    move = CameraMove(start=start.clamped(width, height), end=end.clamped(width, height), shake=shake,
                      phase=float(rng.uniform(0, 2 * math.pi)), kind=camera)
    return _cued(move, cues or [], subjects, width, height, seconds)


def _smooth(u: float) -> float:
    u = min(1.0, max(0.0, u))
    return u * u * (3 - 2 * u)


def _mix(a: View, b: View, u: float) -> View:
    return View(a.x + (b.x - a.x) * u, a.y + (b.y - a.y) * u, a.w + (b.w - a.w) * u, a.h + (b.h - a.h) * u)


def _cued(move: CameraMove, cues: list[tuple[float, float, str, str | None]], subjects: list[Subject],
          width: int, height: int, seconds: float) -> CameraMove:
    """The move with the camera going to each cue's framing for its window and back after it.

    ``cues`` are (from, to, framing, subject) in fractions of the shot. The camera starts moving at
    the window's start and is there within CUE_RAMP of it (or 40% of the window); it holds to the
    window's end, then returns to the shot's own move if there is time before the next cue.
    """
    ramp = CUE_RAMP / max(1e-6, seconds)
    timed = sorted(c for c in cues if c[1] > max(0.0, c[0]) and c[0] < 1.0)
    out: list[tuple[float, float, float, float, View]] = []
    for i, (u0, u1, framing, subject) in enumerate(timed):
        u0, u1 = max(0.0, u0, out[-1][2] if out else 0.0), min(1.0, u1)
        if u1 <= u0:
            continue
        view = framing_view(framing, subjects, subject, width, height)
        view = keep_heads(view, heads_in_view(framing, subjects, subject), width, height)
        following = timed[i + 1][0] if i + 1 < len(timed) else 1.0
        back = u1 + ramp if following - u1 > 2 * ramp else 2.0  # no time to go back: held
        out.append((u0, min(u1, u0 + min(ramp, 0.4 * (u1 - u0))), u1 if back <= 1.0 else 2.0, back, view))
    if not out:
        return move
    kind = move.kind + "; cues: " + ", ".join(f"{f} on {s}" if s else f for _, _, f, s in timed)
    return replace(move, cues=tuple(out), kind=kind)
