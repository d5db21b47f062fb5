"""Synthesize assets/demo: the four references of the wan2.6-r2v guide's four-reference example, and a photograph.

character1 = role1.mp4 (a person, talking), character2 = role2.mp4 (another person),
character3 = object3.png (a guitar, on a transparent background), character4 =
background4.png (a room with a window). Nothing is downloaded: people are drawn with Pillow
(distinct colours and shapes, moving head and arms, lips following the voice) and voices are
additive formant synthesis with syllable envelopes. Deterministic: the same bytes every run
(for one FFmpeg build). photo5.jpg, for the demo's talking photo, is matplotlib's sample portrait
of Grace Hopper (a US Navy photograph, public domain), copied from the installed package.
Run: python scripts/make_demo_assets.py [out_dir]
"""

from __future__ import annotations

import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw

from openr2v.media.encode import AUDIO_RATE, Mp4Writer

OUT = Path(__file__).resolve().parent.parent / "assets" / "demo"
PHOTO = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
FPS = 30
SECONDS = 3
W, H = 480, 640
SS = 2  # supersampling factor: shapes are drawn large and shrunk, for smooth edges

RGB = tuple[int, int, int]

# Vowel formants (F1, F2) in Hz, for an adult male voice; other voices scale them.
VOWELS = [(730, 1090), (530, 1840), (270, 2290), (570, 840), (300, 870), (660, 1720)]


@dataclass(frozen=True)
class Person:
    name: str
    backdrop: tuple[RGB, RGB]
    skin: RGB
    hair: RGB
    shirt: RGB
    pants: RGB
    long_hair: bool
    pitch_hz: float
    formant_scale: float
    gesture: str  # "wave" (one arm talks) or "strum" (both arms play)
    seed: int


PEOPLE = [
    Person("role1", ((196, 214, 226), (150, 172, 190)), (233, 190, 160), (60, 40, 30), (40, 90, 170),
           (50, 50, 60), False, 112.0, 1.0, "wave", 1),
    Person("role2", ((236, 214, 190), (204, 170, 150)), (190, 140, 105), (25, 20, 20), (200, 70, 60),
           (70, 60, 90), True, 205.0, 1.17, "strum", 2),
]


# -- voices ---------------------------------------------------------------------------------------


def syllables(seconds: float, rng: np.random.Generator) -> list[tuple[float, float, int]]:
    """(start, length, vowel) of each syllable: bursts of 2-5 syllables between short pauses."""
    out: list[tuple[float, float, int]] = []
    t = 0.15
    while t < seconds - 0.3:
        for _ in range(int(rng.integers(2, 6))):
            length = float(rng.uniform(0.14, 0.26))
            if t + length > seconds - 0.1:
                break
            out.append((t, length, int(rng.integers(0, len(VOWELS)))))
            t += length + float(rng.uniform(0.02, 0.07))
        t += float(rng.uniform(0.25, 0.45))
    return out


def envelope(seconds: float, sylls: list[tuple[float, float, int]]) -> np.ndarray:
    """Loudness 0..1 per sample: a raised-cosine hump per syllable."""
    n = int(seconds * AUDIO_RATE)
    env = np.zeros(n)
    for start, length, _ in sylls:
        a, b = int(start * AUDIO_RATE), min(n, int((start + length) * AUDIO_RATE))
        env[a:b] = np.maximum(env[a:b], np.sin(np.linspace(0, np.pi, b - a)) ** 0.7)
    return env


def voice(person: Person, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Mono speech-like audio (1, n) and its loudness envelope (n,)."""
    rng = np.random.default_rng(person.seed)
    sylls = syllables(seconds, rng)
    n = int(seconds * AUDIO_RATE)
    t = np.arange(n) / AUDIO_RATE
    env = envelope(seconds, sylls)
    # Intonation: slow drift plus a fall over each burst, as in statements.
    f0 = person.pitch_hz * (1 + 0.06 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) - 0.04 * (t % 1.2))
    f1 = np.full(n, 500.0)
    f2 = np.full(n, 1500.0)
    for start, length, vowel in sylls:
        a, b = int(start * AUDIO_RATE), min(n, int((start + length) * AUDIO_RATE))
        f1[a:b], f2[a:b] = VOWELS[vowel]
    # Formants glide between vowels instead of jumping (a 40 ms moving average).
    kernel = np.ones(int(0.04 * AUDIO_RATE)) / int(0.04 * AUDIO_RATE)
    f1 = np.convolve(f1, kernel, mode="same") * person.formant_scale
    f2 = np.convolve(f2, kernel, mode="same") * person.formant_scale
    phase = 2 * np.pi * np.cumsum(f0) / AUDIO_RATE
    out = np.zeros(n)
    for k in range(1, int(4000 / person.pitch_hz)):
        fk = k * f0
        gain = (np.exp(-(((fk - f1) / 110) ** 2)) + 0.6 * np.exp(-(((fk - f2) / 160) ** 2)) + 0.05) / k**0.6
        out += gain * np.sin(k * phase)
    # A breath of noise at each onset reads as a consonant.
    noise = rng.standard_normal(n) * 0.02
    onset = np.zeros(n)
    for start, _, _ in sylls:
        a = int(start * AUDIO_RATE)
        onset[a:a + 1600] = np.linspace(1, 0, len(onset[a:a + 1600]))
    audio = out * env + noise * onset
    audio *= 0.3 / (np.abs(audio).max() or 1)
    return audio.astype(np.float32)[None, :], env


# -- people ---------------------------------------------------------------------------------------


def backdrop(colours: tuple[RGB, RGB], w: int, h: int) -> Image.Image:
    top, bottom = np.array(colours[0], float), np.array(colours[1], float)
    y = np.linspace(0, 1, h)[:, None, None]
    return Image.fromarray(np.broadcast_to(top * (1 - y) + bottom * y, (h, w, 3)).astype(np.uint8))


def arm(draw: ImageDraw.ImageDraw, shoulder: tuple[float, float], a1: float, a2: float, length: float,
        width: int, sleeve: RGB, skin: RGB) -> None:
    """A two-segment arm from ``shoulder``; angles in radians from straight down, elbow relative."""
    elbow = (shoulder[0] + length * math.sin(a1), shoulder[1] + length * math.cos(a1))
    hand = (elbow[0] + length * math.sin(a1 + a2), elbow[1] + length * math.cos(a1 + a2))
    draw.line([shoulder, elbow], fill=sleeve, width=width)
    draw.line([elbow, hand], fill=skin, width=int(width * 0.8))
    for (x, y), r, c in ((shoulder, width / 2, sleeve), (elbow, width / 2.2, skin), (hand, width * 0.6, skin)):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=c)


def draw_person(p: Person, plate: Image.Image, t: float, mouth: float) -> Image.Image:
    img = plate.copy()
    d = ImageDraw.Draw(img)
    w, h = img.size
    sway = 0.02 * w * math.sin(2 * math.pi * 0.4 * t + p.seed)
    bob = 0.008 * h * math.sin(2 * math.pi * 1.1 * t + p.seed)
    cx, head_y = w / 2 + sway, 0.30 * h + bob
    head_rx, head_ry = 0.13 * w, 0.095 * h

    # Long hair falls behind the shoulders, so it is drawn first.
    if p.long_hair:
        d.rounded_rectangle((cx - head_rx * 1.25, head_y - head_ry, cx + head_rx * 1.25, head_y + 0.17 * h),
                            radius=int(head_rx), fill=p.hair)
    # Torso, cut off by the bottom of the frame.
    shoulder_y = 0.45 * h + bob * 0.5
    d.rounded_rectangle((cx - 0.22 * w, shoulder_y, cx + 0.22 * w, 0.88 * h), radius=int(0.07 * w), fill=p.shirt)
    d.rectangle((cx - 0.2 * w, 0.86 * h, cx + 0.2 * w, h), fill=p.pants)
    d.rectangle((cx - 0.04 * w, head_y + head_ry * 0.7, cx + 0.04 * w, shoulder_y + 0.02 * h), fill=p.skin)

    # Arms (angles from straight down, positive toward the viewer's right): one arm waves while
    # talking ("wave"), or the arms hold and strum an invisible guitar ("strum").
    if p.gesture == "wave":
        lift = 0.5 - 0.5 * math.cos(2 * math.pi * 0.5 * t)
        left = (-0.3 - 2.0 * lift, -0.4 - 0.4 * lift * (1 + math.sin(2 * math.pi * 1.6 * t)))
        right = (0.18 + 0.04 * math.sin(2 * math.pi * 0.7 * t), 0.1)
    else:
        strum = math.sin(2 * math.pi * 2.0 * t)
        left = (-0.55 - 0.05 * math.sin(2 * math.pi * 0.5 * t), -1.1)
        right = (0.3, -1.9 - 0.3 * strum)
    limb = int(0.075 * w)
    arm(d, (cx - 0.2 * w, shoulder_y + 0.03 * h), *left, 0.11 * h, limb, p.shirt, p.skin)
    arm(d, (cx + 0.2 * w, shoulder_y + 0.03 * h), *right, 0.11 * h, limb, p.shirt, p.skin)

    # Head, hair on top, face.
    d.ellipse((cx - head_rx, head_y - head_ry, cx + head_rx, head_y + head_ry), fill=p.skin)
    if p.long_hair:
        d.chord((cx - head_rx * 1.1, head_y - head_ry * 1.15, cx + head_rx * 1.1, head_y + head_ry * 0.5),
                180, 360, fill=p.hair)
    else:
        d.chord((cx - head_rx * 1.05, head_y - head_ry * 1.2, cx + head_rx * 1.05, head_y + head_ry * 0.1),
                170, 370, fill=p.hair)
    blink = (t * 10) % 31 < 1.2  # a blink every ~3 s
    eye_y, eye_dx, eye_r = head_y - 0.1 * head_ry, 0.42 * head_rx, 0.07 * head_rx
    for sx in (-1, 1):
        ex = cx + sx * eye_dx
        if blink:
            d.line((ex - eye_r, eye_y, ex + eye_r, eye_y), fill=(30, 20, 20), width=max(2, int(eye_r / 2)))
        else:
            d.ellipse((ex - eye_r, eye_y - eye_r * 1.3, ex + eye_r, eye_y + eye_r * 1.3), fill=(30, 20, 20))
    mouth_y, mouth_w = head_y + 0.5 * head_ry, 0.35 * head_rx
    opening = max(0.02, mouth) * 0.28 * head_ry
    d.ellipse((cx - mouth_w, mouth_y - opening, cx + mouth_w, mouth_y + opening), fill=(120, 40, 45))
    return img


def make_person_video(p: Person, path: Path) -> None:
    audio, env = voice(p, SECONDS)
    plate = backdrop(p.backdrop, W * SS, H * SS)
    frames = SECONDS * FPS
    with Mp4Writer(path, W, H, frames, fps=FPS, audio=audio, preset="slow", crf=27, threads=1,
                   audio_bitrate=64_000) as out:
        for i in range(frames):
            t = i / FPS
            # Lips follow the voice: the loudness around this frame opens the mouth.
            a = int(t * AUDIO_RATE)
            mouth = float(env[a:a + AUDIO_RATE // FPS].mean()) if a < len(env) else 0.0
            img = draw_person(p, plate, t, mouth).resize((W, H), Image.Resampling.LANCZOS)
            out.write(np.asarray(img))


# -- the guitar and the room ----------------------------------------------------------------------


def make_guitar(path: Path, size: int = 600) -> None:
    s = size * SS
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    # Drawn upright, then tilted as if leaning, which reads as "guitar" at a glance.
    cx = s / 2
    wood, dark, edge = (196, 128, 62, 255), (92, 52, 24, 255), (60, 34, 16, 255)
    d.rectangle((cx - 0.035 * s, 0.08 * s, cx + 0.035 * s, 0.55 * s), fill=(110, 66, 34, 255))  # neck
    d.rounded_rectangle((cx - 0.055 * s, 0.0 * s + 10, cx + 0.055 * s, 0.11 * s), radius=18, fill=dark)
    for k in range(3):  # tuning pegs
        y = 0.025 * s + k * 0.028 * s
        for sx in (-1, 1):
            d.ellipse((cx + sx * 0.075 * s - 12, y - 12, cx + sx * 0.075 * s + 12, y + 12), fill=(210, 210, 200, 255))
    bouts = ((0.70, 0.24, 0.20), (0.47, 0.18, 0.14))  # (centre y, half width, half height): lower, upper
    for grow, colour in ((0.015, edge), (0.0, wood)):  # the outline first, so both bouts share one edge
        for ry, rx, ryy in bouts:
            d.ellipse((cx - (rx + grow) * s, (ry - ryy - grow) * s, cx + (rx + grow) * s, (ry + ryy + grow) * s),
                      fill=colour)
    d.ellipse((cx - 0.065 * s, 0.52 * s - 0.065 * s, cx + 0.065 * s, 0.52 * s + 0.065 * s), fill=(30, 18, 10, 255))
    d.rounded_rectangle((cx - 0.09 * s, 0.74 * s, cx + 0.09 * s, 0.77 * s), radius=8, fill=dark)  # bridge
    for k in range(6):  # strings
        x = cx - 0.025 * s + k * 0.01 * s
        d.line((x, 0.1 * s, x, 0.755 * s), fill=(235, 235, 225, 255), width=3)
    img = img.rotate(-28, resample=Image.Resampling.BICUBIC, center=(s / 2, s / 2))
    img.resize((size, size), Image.Resampling.LANCZOS).save(path, optimize=True)


def make_room(path: Path, w: int = 1280, h: int = 720) -> None:
    floor_y = int(0.72 * h)
    wall = backdrop(((214, 196, 170), (190, 168, 140)), w, floor_y)
    img = Image.new("RGB", (w, h))
    img.paste(wall, (0, 0))
    d = ImageDraw.Draw(img)
    d.rectangle((0, floor_y, w, h), fill=(140, 96, 60))
    for k in range(9):  # floorboards
        x = k * w / 8 - (k % 2) * 40
        d.line((x, floor_y, x - 120 + k * 30, h), fill=(118, 80, 50), width=3)
    d.rectangle((0, floor_y - 8, w, floor_y + 4), fill=(235, 228, 215))  # skirting board
    # The window: sky, a hill, frame and mullions, curtains either side.
    wx0, wy0, wx1, wy1 = int(0.52 * w), int(0.12 * h), int(0.86 * w), int(0.6 * h)
    sky = backdrop(((120, 170, 225), (200, 225, 245)), wx1 - wx0, wy1 - wy0)
    ImageDraw.Draw(sky).ellipse((-80, sky.height - 90, sky.width + 120, sky.height + 200), fill=(110, 160, 90))
    img.paste(sky, (wx0, wy0))
    d.rectangle((wx0, wy0, wx1, wy1), outline=(245, 242, 235), width=14)
    d.line(((wx0 + wx1) / 2, wy0, (wx0 + wx1) / 2, wy1), fill=(245, 242, 235), width=10)
    d.line((wx0, (wy0 + wy1) / 2, wx1, (wy0 + wy1) / 2), fill=(245, 242, 235), width=10)
    d.rectangle((wx0 - 20, wy1, wx1 + 20, wy1 + 16), fill=(235, 228, 215))  # sill
    for cx0 in (wx0 - 70, wx1 - 10):
        d.rounded_rectangle((cx0, wy0 - 30, cx0 + 80, wy1 + 60), radius=30, fill=(150, 60, 60))
    d.rectangle((wx0 - 100, wy0 - 44, wx1 + 100, wy0 - 32), fill=(90, 70, 50))  # curtain rail
    # A chair by the window, a rug, a lamp and a picture on the wall.
    d.ellipse((int(0.2 * w), int(0.8 * h), int(0.8 * w), int(0.98 * h)), fill=(120, 130, 150))
    chx, chy = int(0.6 * w), floor_y + 30
    d.rectangle((chx, chy - 170, chx + 20, chy + 60), fill=(100, 62, 35))
    d.rectangle((chx, chy - 10, chx + 150, chy + 10), fill=(120, 75, 40))
    for lx in (chx + 5, chx + 135):
        d.rectangle((lx, chy, lx + 12, chy + 80), fill=(100, 62, 35))
    d.rectangle((int(0.1 * w), int(0.16 * h), int(0.28 * w), int(0.42 * h)), fill=(70, 55, 40))
    d.rectangle((int(0.1 * w) + 12, int(0.16 * h) + 12, int(0.28 * w) - 12, int(0.42 * h) - 12), fill=(90, 140, 170))
    d.polygon([(int(0.12 * w), int(0.38 * h)), (int(0.19 * w), int(0.24 * h)), (int(0.26 * w), int(0.38 * h))],
              fill=(230, 230, 235))
    lx = int(0.4 * w)
    d.rectangle((lx - 4, int(0.32 * h), lx + 4, floor_y + 20), fill=(50, 50, 50))
    d.polygon([(lx - 50, int(0.32 * h)), (lx + 50, int(0.32 * h)), (lx + 30, int(0.22 * h)),
               (lx - 30, int(0.22 * h))], fill=(245, 225, 170))
    img.save(path, optimize=True)


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for person in PEOPLE:
        make_person_video(person, out / f"{person.name}.mp4")
    make_guitar(out / "object3.png")
    make_room(out / "background4.png")
    shutil.copyfile(PHOTO, out / "photo5.jpg")
    for f in sorted(out.iterdir()):
        print(f"{f.name}: {f.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
