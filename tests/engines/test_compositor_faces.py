"""A photo that talks: the compositor warps a photographed face (mouth with the speech, blinks, head motion).

A filmed video of a face is rigged the same way, its face tracked picture by picture.

Each test renders a close-up with one line of dialogue through our own server (DashScope dialect,
over HTTP), then measures the output with mediapipe's face mesh: the face stays findable, the
mouth opens with the output's speech and closes in silence, the eyes blink, the head moves
smoothly, and the open mouth is textured like the photo (not a flat fill). The photo is
matplotlib's public-domain Grace Hopper portrait, also mirrored, cropped and small, so the rig is
not fitted to one picture. The parameter tracks (blinks, lips, head) are checked on their own too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageOps

from openr2v.engines.compositor.blend import Picture, Planes, planes_of
from openr2v.engines.compositor.blink import blink_track
from openr2v.engines.compositor.face_rig import Warp
from openr2v.engines.compositor.head import Turn, head_pose
from openr2v.engines.compositor.visemes import from_track
from openr2v.media.visemes import silent_track
from tests.engines.conftest import previz_job, render, resolved
from tests.engines.face_metrics import audio_envelope, face_track, flat_share, mouth_texture
from tests.helpers import LiveServer, serve_directory

SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
PHOTO = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
LINE = "Good morning, everyone. Today we will talk about computers, compilers and the future."
SECONDS = 6


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The portrait and variants of it, served over HTTP."""
    d = tmp_path_factory.mktemp("photos")
    img = Image.open(PHOTO).convert("RGB")
    img.save(d / "hopper.jpg", quality=92)
    ImageOps.mirror(img).save(d / "mirrored.jpg", quality=92)
    w, h = img.size
    img.crop((int(0.1 * w), 0, int(0.9 * w), int(0.8 * h))).save(d / "cropped.png")
    img.resize((400, 469), Image.Resampling.LANCZOS).save(d / "small.webp", quality=90)
    _film(np.asarray(img), d / "filmed.mp4")
    with serve_directory(d) as url:
        yield url


def _film(rgb: np.ndarray, out: Path, seconds: int = 3, fps: int = 25, size: tuple[int, int] = (480, 560)) -> None:
    """The portrait filmed by a handheld camera: drift, a slight roll and a push, a loop that ends where it began
    (the video is replayed to fill the task), so the face moves in every picture."""
    import av
    import cv2

    h, w = rgb.shape[:2]
    with av.open(str(out), "w") as box:
        stream = box.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(seconds * fps):
            phase = 2 * np.pi * i / (seconds * fps)
            m = cv2.getRotationMatrix2D((w / 2, h / 2), 1.5 * np.sin(phase), 1.04 - 0.04 * np.cos(phase))
            m[:, 2] += (12 * np.sin(phase), 6 * np.sin(2 * phase))
            picture = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)[20:h - 20, 16:w - 16]
            picture = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)


def _render(server: LiveServer, url: str, seed: int, out: Path) -> Path:
    body = {"model": "wan2.6-r2v-flash",
            "input": {"prompt": f"Close-up of character1. character1 says: '{LINE}'", "reference_urls": [url]},
            "parameters": {"size": "1280*720", "duration": SECONDS, "shot_type": "single", "seed": seed,
                           "watermark": False, "audio": True}}
    with server.client() as c:
        r = c.post(SUBMIT, json=body, headers={"X-DashScope-Async": "enable"})
    assert r.status_code == 200, r.text
    task = server.wait(r.json()["output"]["task_id"], timeout=300)
    assert task["output"]["task_status"] == "SUCCEEDED", task
    path = out / "output.mp4"
    path.write_bytes(httpx.get(task["output"]["video_url"], timeout=60).content)
    return path


@pytest.mark.parametrize(("name", "seed"), [("hopper.jpg", 3), ("mirrored.jpg", 11), ("cropped.png", 5),
                                            ("small.webp", 8), ("filmed.mp4", 2)])
def test_a_photo_talks_blinks_and_moves(server: LiveServer, photos: str, name: str, seed: int,
                                         tmp_path: Path) -> None:
    path = _render(server, f"{photos}/{name}", seed, tmp_path)
    track, frames = face_track(path)
    n = len(frames)
    assert n == SECONDS * 30
    assert track.found.mean() >= 0.95, track.found.mean()

    loud = audio_envelope(path, n)
    speaking = loud > 0.25 * loud.max()
    silent = loud < 0.02 * loud.max()
    ok = track.found
    # The mouth follows the speech: correlated with the output's loudness, open while it speaks.
    r = float(np.corrcoef(track.opening[ok], loud[ok])[0, 1])
    assert r >= 0.6, r
    talk, hush = np.median(track.opening[ok & speaking]), np.median(track.opening[ok & silent])
    assert talk >= 1.5 * hush and talk > 0.02, (talk, hush)

    assert track.blinks() >= 1, track.eyes
    # The head moves, smoothly: the landmarks' centroid drifts, never jumps.
    spread = np.nanstd(track.centroid, axis=0).max() / np.nanmedian(track.face_h)
    assert spread > 0.002, spread
    assert track.max_jump() <= 0.05, track.max_jump()

    # Inside the open mouth the photo's grain goes on: few perfectly flat 3x3 neighbourhoods.
    widest = [k for k in np.argsort(np.nan_to_num(track.opening))[::-1][:12] if ok[k]]
    boxes = {k: (int(track.mouth_box[k, 0]), int(track.mouth_box[k, 1]), int(track.mouth_box[k, 2]),
                 int(track.mouth_box[k, 3])) for k in widest}
    shares = [flat_share(frames[k], boxes[k]) for k in widest]
    assert float(np.mean(shares)) < 0.10, shares
    # ... and its dark inside is about as grainy as the skin above the lips (a flat fill scores ~0.4).
    texture = [t for k in widest if (t := mouth_texture(frames[k], boxes[k])) is not None]
    assert len(texture) >= 6 and 0.6 <= float(np.median(texture)) <= 2.0, texture


def test_blinks_are_seeded_spaced_and_short() -> None:
    track = blink_track(60 * 30, 30, seed=4, index=0)
    shut = track > 0.5
    starts = np.flatnonzero(shut[1:] & ~shut[:-1]) + 1
    assert 10 <= starts.size <= 30 and starts[0] <= 2.6 * 30
    assert (np.diff(starts) >= 2.0 * 30).all() and (np.diff(starts) <= 6.3 * 30).all(), np.diff(starts)
    moving = np.flatnonzero(np.diff(np.concatenate([[0], (track > 0).astype(int), [0]])))
    lengths = (moving[1::2] - moving[::2])[moving[1::2] < track.size]  # a blink cut by the end is not whole
    assert (lengths >= 2).all() and (lengths <= 7).all(), lengths  # 100-200 ms at 30 fps
    assert (blink_track(900, 30, 4, 0) == track[:900]).all()
    assert not (blink_track(900, 30, 5, 0) == track[:900]).all()


def test_lips_close_on_m_b_p_and_in_silence() -> None:
    frames = 30
    track = silent_track(frames, 30)
    track.open[5:25] = 0.8
    track.closed[12:14] = True  # an "m" in the middle of the line
    track.open[12:14] = 0.0
    envelope = np.zeros(frames, np.float32)
    envelope[5:25] = 0.7
    v = from_track(track, envelope, frames, 30)
    assert v.closed[12] and v.closed[13] and v.open[12] == 0 and v.open[13] == 0
    assert v.open[8:11].min() > 0.3 and v.open[16:22].min() > 0.3
    assert (v.open[:5] == 0).all() and v.closed[:5].all() and v.closed[-3:].all()


def test_the_lower_lip_tucks_under_the_teeth_on_f_and_v() -> None:
    from openr2v.engines.compositor import face_mesh
    from openr2v.engines.compositor.face_rig import deform, face_mesh_of

    frames = 30
    track = silent_track(frames, 30)
    track.open[5:25] = 0.5
    track.teeth[12:15] = True  # a "v" in the middle of the line
    envelope = np.zeros(frames, np.float32)
    envelope[5:25] = 0.7
    v = from_track(track, envelope, frames, 30)
    assert v.tuck[13] > 0.5 and v.tuck[8] == 0 and v.tuck[22] < 0.2
    assert not v.closed[13] and v.open[13] > 0.2  # the jaw stays a little open: it is no closure
    marks = face_mesh.find_landmarks(np.asarray(Image.open(PHOTO).convert("RGB")))
    assert marks is not None
    mesh = face_mesh_of(marks)
    up, low = mesh.ids[face_mesh.UPPER_INNER[5]], mesh.ids[face_mesh.LOWER_INNER[5]]
    shape = v.at(13)
    plain = deform(mesh, shape.open, 0.0, 0.0, 0.0, (0.0, 0.0), 0.0, 0.0, 0.0, 0.0)
    tucked = deform(mesh, shape.open, 0.0, 0.0, 0.0, (0.0, 0.0), 0.0, 0.0, 0.0, 0.0, shape.tuck)
    gap_plain, gap_tucked = plain[low, 1] - plain[up, 1], tucked[low, 1] - tucked[up, 1]
    assert 0 < gap_tucked < 0.6 * gap_plain, (gap_tucked, gap_plain)  # the lip rises toward the teeth
    chin = mesh.ids[face_mesh.CHIN]
    assert tucked[chin, 1] == plain[chin, 1]  # while the jaw stays where it was


def test_a_small_face_in_a_wide_video_gets_landmarks_in_every_picture(tmp_path: Path) -> None:
    """A person filmed from afar (the face a quarter of the picture's height): the face mesh's own detector
    misses it on the whole picture, so the landmarks are looked for around the face the detector found."""
    import cv2

    from openr2v.engines.common.segment import look_at
    from openr2v.engines.compositor.cutouts import cut_out

    room = np.full((720, 1280, 3), (120, 100, 80), np.uint8)
    room[330:630, 860:1116] = cv2.resize(np.asarray(Image.open(PHOTO).convert("RGB")), (256, 300))
    _film(room, tmp_path / "wide.mp4", seconds=2, fps=10, size=(1280, 720))
    ref = resolved("character1", tmp_path / "wide.mp4")
    cutout = cut_out(ref, look_at(ref), "character", fps=30, loop=60, cache_dir=None)
    assert cutout.landmarks is not None and cutout.landmarks.shape == (len(cutout.pictures), 478, 2)
    assert np.isfinite(cutout.landmarks).all(axis=(1, 2)).mean() >= 0.9
    face = cutout.faces[0]
    assert face is not None  # the landmarks sit on the detected face, in cut-out pixels
    centre = np.nanmean(cutout.landmarks[0], axis=0)
    assert abs(centre[0] - (face.x + face.w / 2)) < face.w / 2 and abs(centre[1] - (face.y + face.h / 2)) < face.h / 2


def test_the_head_never_jumps() -> None:
    env = np.clip(np.sin(np.arange(300) / 2.5), 0, 1).astype(np.float32)
    pose = head_pose(300, 30, seed=2, index=1, envelope=env, turns=[Turn(60, 150, 1.0, 1.0)])
    assert np.abs(pose.tilt).max() <= 3.0 and np.abs(pose.nod).max() <= 0.025
    assert np.abs(np.diff(pose.tilt)).max() < 0.5 and np.abs(np.diff(pose.turn)).max() < 0.15
    assert pose.turn[100] > 0.8 and abs(pose.turn[250]) < 0.2  # toward the speaker while listening, then back


def test_a_drawn_figure_keeps_its_drawn_mouth(tmp_path: Path, previz_dir: Path) -> None:
    """The face mesh finds the drawn person's face, but its flat colours say it is no photo: no rig."""
    refs = [resolved("Image 1", previz_dir / "red.png"), resolved("Image 2", previz_dir / "room.png")]
    _, notes = render(previz_job(tmp_path, refs, "Close-up of Image 1 in Image 2. Image 1 says: 'Hello there.'",
                                 shot_type="single", duration=2, width=640, height=360))
    assert all(shot["animated_faces"] == [] for shot in notes["shots"]), notes["shots"]


@pytest.mark.parametrize("degrees", [0.0, 22.0, -35.0])
def test_a_tilted_head_opens_its_mouth_and_shuts_its_eyes_along_its_own_axis(degrees: float) -> None:
    """A photo of a tilted head: the jaw drops and the lids close toward the chin, not toward the picture's
    bottom (a mouth torn sideways, lids that slide across the eye and never read as shut)."""
    from openr2v.engines.compositor import face_mesh
    from openr2v.engines.compositor.face_rig import deform, face_mesh_of

    marks = face_mesh.find_landmarks(np.asarray(Image.open(PHOTO).convert("RGB")))
    assert marks is not None
    a = np.radians(degrees)
    turn = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = marks.mean(axis=0)
    tilted = (marks - centre) @ turn.T + centre
    mesh = face_mesh_of(tilted)
    rest = mesh.in_picture(mesh.points)
    lip, lid = mesh.ids[face_mesh.LOWER_INNER[5]], mesh.ids[face_mesh.RIGHT_LIDS[0][3]]
    assert np.abs(rest[lip] - tilted[face_mesh.LOWER_INNER[5]]).max() < 1e-6  # the mesh sits on the photo
    down = turn @ (0.0, 1.0)
    for moved, point in ((deform(mesh, 1.0, 0.0, 0.0, 0.0, (0.0, 0.0), 0.0, 0.0, 0.0, 0.0), lip),
                         (deform(mesh, 0.0, 0.0, 0.0, 1.0, (0.0, 0.0), 0.0, 0.0, 0.0, 0.0), lid)):
        step = mesh.in_picture(moved)[point] - rest[point]
        cosine = float(step @ down) / float(np.linalg.norm(step))
        assert cosine > np.cos(np.radians(4)), (degrees, point, np.degrees(np.arccos(min(1.0, cosine))))


def test_frames_drawn_two_at_a_time_are_the_serial_bytes(tmp_path: Path) -> None:
    """Two photos talking, a medium shot and a pushing close-up (resizes replaced frame after frame): drawn
    two frames at a time, the video is byte for byte the one drawn a frame at a time."""
    from openr2v.engines.compositor import CompositorEngine

    img = Image.open(PHOTO).convert("RGB")
    img.save(tmp_path / "one.jpg", quality=92)
    ImageOps.mirror(img).save(tmp_path / "two.jpg", quality=92)
    refs = [resolved("character1", tmp_path / "one.jpg"), resolved("character2", tmp_path / "two.jpg")]
    prompt = ("Shot 1 [0-2s]: Medium shot of character1 and character2. Character1 says to character2: 'Have you "
              "seen it?' Shot 2 [2-4s]: Close-up of character2, the camera pushes in. Character2 says to "
              "character1: 'I have.'")
    videos = [render(previz_job(tmp_path, refs, prompt, f"drawers{n}", duration=4, width=640, height=360,
                                audio=True), CompositorEngine(preset="ultrafast", drawers=n))[0] for n in (1, 2)]
    assert videos[0].read_bytes() == videos[1].read_bytes()


def _smile(opening: float) -> tuple[np.ndarray, Picture, Planes, Warp]:
    """scikit-image's astronaut (she smiles showing her teeth) at 1024 px, drawn as is, her face rigged and painted
    at frame 2 with the mouth ``opening`` (0: silent, lips sealed): her landmarks, picture, frame and warp."""
    import skimage

    from openr2v.engines.compositor import face_mesh
    from openr2v.engines.compositor.face_rig import FaceParts, FaceRig

    photo = Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png").convert("RGB").resize((1024, 1024))
    rgb = np.ascontiguousarray(np.asarray(photo))
    marks = face_mesh.find_landmarks(rgb)
    assert marks is not None
    pic = Picture.from_rgb(rgb, np.full(rgb.shape[:2], 255, np.uint8))
    frames = 4
    track = silent_track(frames, 30)
    if opening:
        track.open[:], track.closed[:] = opening, False
    rig = FaceRig(FaceParts([pic], marks[None], np.zeros(1, np.int64), {}, 1),
                  from_track(track, np.full(frames, 0.8 if opening else 0.0, np.float32), frames, 30),
                  np.zeros(frames, np.float32), head_pose(frames, 30, 1, 0, None, []), (1024, 1024))
    planes = planes_of(np.zeros((1024 * 3 // 2, 1024), np.uint8))
    for plane, source in zip(planes, (pic.y, pic.u, pic.v), strict=True):
        plane[:] = source
    warp = rig.prepare(np.eye(3), 2)
    assert warp is not None and rig.paint(planes, warp, 2)
    return marks, pic, planes, warp


def test_a_smile_closes_over_its_teeth_without_a_seam() -> None:
    """A photo that smiles showing its teeth closes its lips in silence: where the lips meet, lip, not the teeth
    (a coarse warp map blended the two lips' motions there and let a bright staircase of teeth through)."""
    import cv2

    from openr2v.engines.compositor import face_mesh

    marks, pic, planes, warp = _smile(0.0)
    gap = np.zeros(pic.y.shape, np.uint8)
    cv2.fillPoly(gap, [np.round(marks[list(face_mesh.UPPER_INNER + face_mesh.LOWER_INNER[::-1])]).astype(np.int32)], 1)
    teeth = float(np.percentile(pic.y[gap > 0], 90))
    lips = float(np.median(pic.y[tuple(np.round(marks[list(face_mesh.LOWER_OUTER[2:-2])][:, ::-1]).astype(int).T)]))
    assert teeth > lips + 40  # the photo does show bright teeth between its lips
    part = warp.part
    meet = (warp.dst[part.upper] + warp.dst[part.lower])[2:-2] / 2  # where the lips meet, corners left out
    xs = np.linspace(meet[0, 0], meet[-1, 0], 80)
    ys = np.interp(xs, meet[:, 0], meet[:, 1])
    seam = [int(planes[0][round(y) + d, round(x)]) for x, y in zip(xs, ys, strict=True) for d in (-1, 0, 1)]
    assert np.percentile(seam, 95) < (teeth + lips) / 2, (np.percentile(seam, 95), teeth, lips)


def test_an_open_smile_shows_the_photos_own_teeth_under_the_upper_lip() -> None:
    """Talking, the same photo shows its own teeth hanging from the upper lip (tooth by tooth, as bright as in the
    photo), the shadow of the open mouth below them, not a painted band of its teeth's mean colour."""
    import cv2

    from openr2v.engines.compositor import face_mesh

    marks, pic, planes, warp = _smile(0.9)
    part = warp.part
    gap = np.linalg.norm(warp.dst[part.upper] - warp.dst[part.lower], axis=1).max()
    assert gap > 20  # open well past the photo's own parting

    def row(luma: np.ndarray, lip: np.ndarray) -> np.ndarray:
        """Luma along a line 6 px under the middle three fifths of an upper inner lip."""
        lip = lip[len(lip) // 5: len(lip) - len(lip) // 5]
        xs = lip[0, 0] + np.linspace(0.05, 0.95, 60) * (lip[-1, 0] - lip[0, 0])
        smooth = cv2.GaussianBlur(luma.astype(np.float32), (0, 0), 0.8)
        return np.array([smooth[round(float(np.interp(x, lip[:, 0], lip[:, 1])) + 6), round(x)] for x in xs])

    photo = row(pic.y, marks[list(face_mesh.UPPER_INNER)].astype(np.float64))
    shown = row(planes[0], warp.dst[part.upper])
    assert float(np.corrcoef(photo, shown)[0, 1]) > 0.9 and abs(shown.mean() - photo.mean()) < 10, (photo, shown)
    # Below the teeth, the mouth's shadow: darker than the lips.
    low = warp.dst[part.lower][len(part.lower) // 2]
    assert planes[0][round(low[1]) - 4, round(low[0])] < part.look.lip[0] - 30


@pytest.mark.parametrize("width", [96, 64])
def test_a_thumbnail_photo_talks_with_its_own_face(tmp_path: Path, width: int) -> None:
    """An avatar-sized photo (its face a few dozen pixels) is enlarged before its face is looked for: the face
    mesh finds it and the close-up warps the photo, instead of pasting a drawn mouth on it."""
    img = Image.open(PHOTO).convert("RGB")
    img.resize((width, round(width * img.height / img.width)), Image.Resampling.LANCZOS).save(tmp_path / "avatar.jpg")
    refs = [resolved("character1", tmp_path / "avatar.jpg")]
    _, notes = render(previz_job(tmp_path, refs, "Close-up of character1. Character1 says: 'Hello there.'",
                                 shot_type="single", duration=2, width=640, height=360))
    assert notes["shots"][0]["animated_faces"] == ["character1"], notes["shots"]
