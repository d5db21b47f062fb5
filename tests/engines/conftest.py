"""Fixtures for the compositor's previz tests: drawn people and places with colours that identify them.

Each character wears a shirt of a colour nothing else in the scene has, so a frame tells who is
on screen by counting pixels of that colour; each place has its own palette, so shots on
different sets cut hard. People are drawn like the demo's (head, face, hair, shirt, arms), which
mediapipe's person segmentation and face detection both recognise.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from openr2v.domain.request import GenerationRequest
from openr2v.engines.base import RenderJob, ResolvedReference
from openr2v.engines.compositor import CompositorEngine
from openr2v.media.probe import probe

RGB = tuple[int, int, int]
SHIRTS: dict[str, RGB] = {"red": (215, 30, 30), "green": (30, 185, 60), "blue": (40, 70, 220)}
FAST = CompositorEngine(preset="ultrafast")


def draw_person(w: int, h: int, shirt: RGB, *, backdrop: RGB = (225, 225, 215), mouth_open: float = 0.0,
                arm: float = 0.0, skin: RGB = (232, 190, 160), hair: RGB = (60, 40, 30)) -> Image.Image:
    """A front-facing cartoon person from the chest up (cut off by the bottom edge), on a plain backdrop."""
    ss = 2
    img = Image.new("RGB", (w * ss, h * ss), backdrop)
    d = ImageDraw.Draw(img)
    cx = w * ss // 2
    head_r = int(0.11 * h * ss)
    head_y = int(0.28 * h * ss)
    body_top = head_y + int(1.35 * head_r)
    d.rounded_rectangle((cx - int(1.5 * head_r), body_top, cx + int(1.5 * head_r), h * ss + 10), radius=head_r // 2,
                        fill=shirt)
    # Arms: the left one can swing (a video character waves).
    for side, lift in ((-1, arm), (1, 0.0)):
        x0 = cx + side * int(1.5 * head_r)
        x1 = x0 + side * int(0.9 * head_r)
        y1 = body_top + int((1.8 - 2.2 * lift) * head_r)
        d.line((x0, body_top + head_r // 2, x1, y1), fill=shirt, width=int(0.7 * head_r))
        d.ellipse((x1 - head_r // 3, y1 - head_r // 3, x1 + head_r // 3, y1 + head_r // 3), fill=skin)
    d.rectangle((cx - head_r // 3, head_y + head_r // 2, cx + head_r // 3, body_top + 4), fill=skin)
    d.ellipse((cx - head_r, head_y - head_r, cx + head_r, head_y + head_r), fill=skin)
    d.chord((cx - head_r - 4, head_y - head_r - 6, cx + head_r + 4, head_y + head_r // 2), 180, 360, fill=hair)
    for ex in (-1, 1):
        ex_c = cx + ex * head_r * 2 // 5
        d.ellipse((ex_c - head_r // 9, head_y - head_r // 9, ex_c + head_r // 9, head_y + head_r // 9),
                  fill=(30, 30, 30))
    my = head_y + head_r // 2
    open_h = max(2, int(mouth_open * head_r * 0.35))
    d.ellipse((cx - head_r // 3, my - open_h // 2, cx + head_r // 3, my + open_h // 2), fill=(120, 40, 40))
    return img.resize((w, h), Image.Resampling.LANCZOS)


def draw_place(w: int, h: int, palette: tuple[RGB, RGB, RGB], seed: int) -> Image.Image:
    """A room-like set: wall, floor and a few framed shapes in the palette's colours."""
    wall, floor, accent = palette
    img = Image.new("RGB", (w, h), wall)
    d = ImageDraw.Draw(img)
    d.rectangle((0, int(0.72 * h), w, h), fill=floor)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, w * 3 // 4)), int(rng.integers(0, h // 2))
        x1, y1 = x0 + int(rng.integers(w // 10, w // 4)), y0 + int(rng.integers(h // 10, h // 4))
        d.rectangle((x0, y0, x1, y1), fill=accent, outline=floor, width=6)
    return img


def write_person_video(path: Path, shirt: RGB, seconds: float = 3.0, w: int = 480, h: int = 640) -> Path:
    """A person waving and talking (mouth and arm move), H.264, no audio."""
    n = int(seconds * 30)
    with av.open(str(path), "w", format="mp4") as c:
        v = c.add_stream("libx264", rate=30, options={"preset": "ultrafast", "crf": "20", "threads": "1"})
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            t = i / 30
            img = draw_person(w, h, shirt, mouth_open=abs(np.sin(7 * t)), arm=0.5 + 0.5 * np.sin(3 * t))
            frame = av.VideoFrame.from_ndarray(np.asarray(img), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
    return path


def draw_grid(rows: int, cols: int, panel: tuple[int, int], gutter: int, colours: list[RGB],
              page: RGB = (250, 250, 250)) -> Image.Image:
    """A storyboard page: rows x cols panels (each a colour with a shape in it) on a page-coloured grid."""
    pw, ph = panel
    img = Image.new("RGB", (cols * pw + (cols + 1) * gutter, rows * ph + (rows + 1) * gutter), page)
    d = ImageDraw.Draw(img)
    for r in range(rows):
        for c in range(cols):
            x0, y0 = gutter + c * (pw + gutter), gutter + r * (ph + gutter)
            colour = colours[(r * cols + c) % len(colours)]
            d.rectangle((x0, y0, x0 + pw - 1, y0 + ph - 1), fill=colour)
            d.ellipse((x0 + pw // 4, y0 + ph // 4, x0 + 3 * pw // 4, y0 + 3 * ph // 4),
                      fill=tuple(255 - v for v in colour))
    return img


@pytest.fixture(scope="session")
def previz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("previz")
    for name, shirt in SHIRTS.items():
        draw_person(480, 640, shirt).save(d / f"{name}.png")
    write_person_video(d / "green.mp4", SHIRTS["green"])
    draw_place(1280, 720, ((120, 150, 175), (90, 80, 70), (240, 240, 245)), 1).save(d / "room.png")
    draw_place(1280, 720, ((225, 180, 110), (140, 95, 60), (90, 60, 120)), 2).save(d / "studio.png")
    draw_place(1280, 720, ((70, 110, 70), (40, 60, 35), (200, 200, 140)), 3).save(d / "garden.png")
    return d


def resolved(label: str, path: Path) -> ResolvedReference:
    info = probe(path)
    return ResolvedReference(label=label, kind=info.kind, path=path, info=info)


def previz_job(tmp_path: Path, refs: list[ResolvedReference], prompt: str, name: str = "job", *,
               model: str = "wan2.7-r2v", shot_type: str = "multi", extensions: dict[str, object] | None = None,
               **kw: object) -> RenderJob:
    """A job as the worker builds it (no recorded plan: the engine plans from the prompt)."""
    workdir = tmp_path / name
    workdir.mkdir(parents=True, exist_ok=True)
    values: dict[str, object] = dict(task_id=name, references=refs, width=1280, height=720, duration=5, fps=30,
                                     audio=False, watermark=False, seed=1, workdir=workdir)
    values.update(kw)
    values["request"] = GenerationRequest(model=model, prompt=prompt, shot_type=shot_type,
                                          duration=int(values["duration"]),  # type: ignore[call-overload]
                                          extensions=extensions or {})
    return RenderJob(**values)  # type: ignore[arg-type]


def render(job: RenderJob, engine: CompositorEngine = FAST) -> tuple[Path, dict]:
    result = engine.render(job, lambda p: None, lambda: False)
    return result.path, result.notes


def frames_rgb(path: Path, indices: set[int] | None = None) -> dict[int, np.ndarray]:
    """Decoded frames (RGB uint8) by index; all of them when ``indices`` is None."""
    out: dict[int, np.ndarray] = {}
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if indices is None or i in indices:
                out[i] = frame.to_ndarray(format="rgb24")
    return out


def colour_share(rgb: np.ndarray, colour: RGB, tolerance: int = 45) -> float:
    """The fraction of pixels within ``tolerance`` (max channel difference) of ``colour``."""
    diff = np.abs(rgb.astype(np.int16) - np.array(colour, dtype=np.int16)).max(axis=2)
    return float((diff <= tolerance).mean())


def detect_cuts(path: Path) -> list[int]:
    """Frames where PySceneDetect's ContentDetector (default threshold) starts a new scene."""
    level = av.logging.get_level()
    from scenedetect import ContentDetector, SceneManager, open_video

    try:
        video = open_video(str(path), backend="pyav")
        manager = SceneManager()
        manager.add_detector(ContentDetector())
        manager.detect_scenes(video)
        return [start.frame_num for start, _ in manager.get_scene_list()[1:]]
    finally:
        av.logging.set_level(level)  # PySceneDetect turns FFmpeg's logging up; keep other tests' output quiet


def shot_middles(notes: dict) -> list[int]:
    """The middle frame of each rendered shot."""
    return [(a + b) // 2 for a, b in (s["frames"] for s in notes["shots"])]
