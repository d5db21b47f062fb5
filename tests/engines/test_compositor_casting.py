"""Casting: every reference gets a role from the prompt and the picture, and the shots show who they name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from openr2v.engines.common import segment, vision
from openr2v.engines.common.casting import Role, cast
from openr2v.engines.common.segment import Look, look_at
from openr2v.engines.common.vision import Face
from tests.engines.conftest import SHIRTS, colour_share, frames_rgb, previz_job, render, resolved, shot_middles

WAN26_GUIDE_PROMPT = (
    'Character2 sits on a chair by the window, holding character3, and plays a soothing American country '
    'folk song next to character4. Character1 says to Character2: "that sounds great"')
WAN27_GUIDE_PROMPT = (
    "Video 1 walks in from the deep left side of the frame. Then the shot cuts to a close-up of Image 1. "
    "Video 1 is leaning against the rusty wall on the right side from Image 2. Hearing the footsteps, she "
    "slowly turns her head. After seeing Image 1, Video 1 says, 'Why did you still come?' Image 1 replies, "
    "'Let's talk.'")
FACE = Face(100, 80, 60, 70, (130, 135), 0.9)


def look(label: str, kind: str = "image", size: tuple[int, int] = (480, 640), *, person: bool = False,
         alpha: bool = False) -> Look:
    return Look(label=label, kind=kind, width=size[0], height=size[1], has_alpha=alpha,
                face=FACE if person else None, person_model=1 if person else None,
                person_cover=0.3 if person else 0.0, keyframe=np.zeros((8, 8, 3), np.uint8))


def roles(prompt: str, looks: list[Look]) -> dict[str, Role]:
    return cast(prompt, looks)


def test_wan26_guide_four_references() -> None:
    r = roles(WAN26_GUIDE_PROMPT, [look("character1", "video", person=True), look("character2", "video", person=True),
                        look("character3", size=(600, 600), alpha=True), look("character4", size=(1280, 720))])
    assert {k: v.role for k, v in r.items()} == {"character1": "character", "character2": "character",
                                                 "character3": "object", "character4": "background"}
    assert r["character3"].holder == "character2" and r["character3"].reason == "prompt: held"
    assert r["character2"].side == "window"
    assert r["character4"].reason == "picture: wide, nobody in it"


def test_wan27_guide_place_named_by_from() -> None:
    # A portrait-shaped picture is still the place when the prompt says "from Image 2".
    r = roles(WAN27_GUIDE_PROMPT, [look("Video 1", "video", person=True), look("Image 1", person=True),
                        look("Image 2", size=(720, 960))])
    assert r["Image 2"].role == "background" and r["Image 2"].reason == "prompt: names it as the place"
    assert r["Video 1"].role == "character" and r["Video 1"].side == "right"  # where she stays, not where she came from
    assert r["Image 1"].role == "character"


@pytest.mark.parametrize(("prompt", "held", "holder"), [
    ("A close-up of Image 1, who is holding Image 2 and eating it.", "Image 2", "Image 1"),
    ("character1 plays guitar while character2 sings along, holding character3.", "character3", "character2"),
    ("character1 drinks character2 while dancing.", "character2", "character1"),
])
def test_held_objects_and_their_holders(prompt: str, held: str, holder: str) -> None:
    labels = sorted({held, holder})
    r = roles(prompt, [look(label, person=label == holder) for label in labels])
    assert r[held].role == "object" and r[held].holder == holder


def test_the_picture_decides_when_the_prompt_does_not() -> None:
    r = roles("Image 1 and Image 2 meet. Image 3 is on the table. Image 4 glows.",
              [look("Image 1", person=True), look("Image 2", "video"), look("Image 3", size=(600, 600)),
               look("Image 4", size=(1600, 900))])
    assert [r[k].role for k in ("Image 1", "Image 2", "Image 3", "Image 4")] == [
        "character", "character", "object", "background"]
    assert r["Image 2"].reason == "video: a subject"
    # A wide cut-out (transparent background) is a thing, never a place.
    assert roles("Image 1 glows.", [look("Image 1", size=(1600, 900), alpha=True)])["Image 1"].role == "object"


def test_possessives_and_sides() -> None:
    r = roles("character1 stands on the left, a gift in character2's hands. character2 waits on the right side.",
              [look("character1", person=True), look("character2", person=True)])
    assert r["character2"].role == "character"  # "in character2's hands" does not make a place of it
    assert (r["character1"].side, r["character2"].side) == ("left", "right")


def test_looking_at_pictures(previz_dir: Path) -> None:
    person = look_at(resolved("Image 1", previz_dir / "red.png"))
    place = look_at(resolved("Image 2", previz_dir / "room.png"))
    assert not place.person and place.aspect > 1.3
    if vision.available() is None:
        assert person.person and person.face is not None
        assert 0.2 < person.face.mouth[1] / person.height < 0.5  # a mouth in the upper half of the picture


def test_looks_are_cached_by_the_file_bytes(tmp_path: Path, previz_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference seen again is not searched for people and faces again; a changed file is."""
    cache = tmp_path / "cache"
    person, place = resolved("Image 1", previz_dir / "red.png"), resolved("Image 2", previz_dir / "room.png")
    first = [look_at(person, cache), look_at(place, cache)]
    assert len(list(cache.glob("*.look.json"))) == 2
    calls: list[int] = []
    see = segment.see_person
    monkeypatch.setattr(segment, "see_person", lambda rgb: calls.append(1) or see(rgb))
    again = [look_at(resolved("Image 9", previz_dir / "red.png"), cache), look_at(place, cache)]
    assert not calls
    for a, b in zip(first, again, strict=True):
        assert (a.face, a.person_model, a.person_cover, a.width, a.height) == (b.face, b.person_model, b.person_cover,
                                                                                b.width, b.height)
        assert np.array_equal(a.keyframe, b.keyframe)
    assert again[0].label == "Image 9"
    # Other bytes (the same name) are looked at again; a torn cache file is looked at again and rewritten.
    changed = tmp_path / "red.png"
    ImageOps.mirror(Image.open(previz_dir / "red.png")).save(changed)
    mirrored = look_at(resolved("Image 1", changed), cache)
    assert len(calls) == 1
    face = first[0].face
    if face is not None:  # the mirrored picture's face is the mirror image of the first one's
        assert mirrored.face is not None and abs(mirrored.face.x + mirrored.face.w - (first[0].width - face.x)) < 12
    torn = sorted(cache.glob("*.look.json"))[0]
    torn.write_text("{")
    look_at(person, cache), look_at(place, cache)
    assert len(calls) == 2 and all(p.read_text().startswith("{\"") for p in cache.glob("*.look.json"))


def test_each_character_is_on_screen_only_in_its_shots(tmp_path: Path, previz_dir: Path) -> None:
    refs = [resolved("Image 1", previz_dir / "red.png"), resolved("Image 2", previz_dir / "blue.png"),
            resolved("Video 1", previz_dir / "green.mp4"), resolved("Image 3", previz_dir / "room.png")]
    prompt = ("Shot 1 [0-1s]: Image 1 waves in Image 3. Shot 2 [1-2s]: Video 1 smiles. "
              "Shot 3 [2-3s]: Image 2 and Video 1 talk. Shot 4 [3-4s]: Medium shot of Image 1 and Image 2.")
    path, notes = render(previz_job(tmp_path, refs, prompt, duration=4))
    casting = notes["casting"]
    assert {k: v["role"] for k, v in casting.items()} == {"Image 1": "character", "Image 2": "character",
                                                          "Video 1": "character", "Image 3": "background"}
    if vision.available() is None:
        assert {casting[k]["method"] for k in ("Image 1", "Image 2", "Video 1")} == {"selfie_segmentation"}
    expected = [{"red"}, {"green"}, {"blue", "green"}, {"red", "blue"}]
    middles = shot_middles(notes)
    frames = frames_rgb(path, set(middles))
    for k, present in zip(middles, expected, strict=True):
        for name, shirt in SHIRTS.items():
            share = colour_share(frames[k], shirt)
            if name in present:
                assert share > 0.03, (k, name, share)  # a large, readable character
            else:
                assert share < 0.001, (k, name, share)


def test_without_mediapipe_the_cut_outs_degrade(tmp_path: Path, previz_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vision, "available", lambda: "mediapipe not importable (test)")
    monkeypatch.setattr(vision, "person_mask", lambda rgb, model: None)
    monkeypatch.setattr(vision, "find_face", lambda rgb: None)
    refs = [resolved("Video 1", previz_dir / "green.mp4"), resolved("Image 1", previz_dir / "room.png")]
    path, notes = render(previz_job(tmp_path, refs, "Video 1 waves in Image 1.", duration=2))
    assert notes["segmentation"] == "mediapipe not importable (test)"
    assert notes["casting"]["Video 1"]["role"] == "character"
    assert notes["casting"]["Video 1"]["method"] in ("grabcut", "ellipse")
    frame = frames_rgb(path, {30})[30]
    assert colour_share(frame, SHIRTS["green"]) > 0.03
