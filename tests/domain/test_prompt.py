"""The prompt grammar on the documents' own prompts."""

from __future__ import annotations

from openr2v.domain.prompt import ShotPlan, find_labels, plan_prompt, plan_to_prompt

FOUR = ('Character2 sits on a chair by the window, holding character3, and plays a soothing American country folk '
        'song next to character4. Character1 says to Character2: "that sounds great"')
HOLIDAY = ("Create a festive holiday unboxing experience.Shot 1 [0-2s]: Character1 sits by a tree. Shot 2 [2-4s]: "
           "Close-up as Character1 carefully unwraps the gift. Shot 3 [4-6s]: Character1 applies the product with "
           "delight, saying: \"This holiday glow is exactly what I wanted!\" Shot 4 [6-10s]: Character1 admires "
           "their radiant skin in a handheld mirror.")
WAN27 = ("Video 1 walks in from the deep left side of the frame. Then the shot cuts to a close-up of Image 1. Video 1 "
         "is leaning against the rusty wall on the right side from Image 2. Hearing the footsteps, she slowly turns "
         "her head. After seeing Image 1, Video 1 says, \"Why did you still come?\" Image 1 replies, \"Let's talk.\"")
STORY = ("Reference image, 3D cartoon adventure movie style. Storyboard: 1. Wide shot: Tall trees. 2. Medium shot: "
         "The boy pushes aside vines. 3. Medium shot: The small robot flies. 4. Close-up: An old treasure map.")


def covers(plan: ShotPlan, duration: float) -> None:
    assert plan.shots[0].start == 0 and plan.shots[-1].end == duration
    for a, b in zip(plan.shots, plan.shots[1:], strict=False):
        assert a.end == b.start and a.end > a.start
    for s in plan.shots:
        for ln in s.lines:
            assert s.start <= ln.start < ln.end <= s.end


def test_labels_any_case_and_aliases() -> None:
    assert find_labels("CHARACTER2 holds Character1", ["character1", "character2"]) == ["character2", "character1"]
    assert find_labels("Reference image, cartoon", ["reference image"]) == ["reference image"]
    assert find_labels("Image 1 smiles", ["reference image"]) == ["reference image"]


def test_timed_shots() -> None:
    plan = plan_prompt(HOLIDAY, ["character1"], 10, "multi", 1)
    assert plan.mode == "timed" and [(s.start, s.end) for s in plan.shots] == [(0, 2), (2, 4), (4, 6), (6, 10)]
    assert plan.shots[1].framing == "close-up"
    assert plan.style.startswith("Create a festive")
    line = plan.shots[2].lines[0]
    assert (line.speaker, line.text) == ("character1", "This holiday glow is exactly what I wanted!")
    covers(plan, 10)


def test_auto_plan_frames_the_speaker() -> None:
    plan = plan_prompt(FOUR, ["character1", "character2", "character3", "character4"], 10, "multi", 3)
    assert plan.mode == "auto" and len(plan.shots) == 2
    assert plan.shots[0].on_screen == ["character2", "character3", "character4"]
    talk = plan.shots[1]
    assert talk.focus == "character1" and talk.lines[0].addressee == "character2"
    covers(plan, 10)


def test_wan27_dialogue_turns() -> None:
    plan = plan_prompt(WAN27, ["Video 1", "Image 1", "Image 2"], 10, "multi", 3)
    lines = plan.lines
    assert [(ln.speaker, ln.text) for ln in lines] == [("Video 1", "Why did you still come?"),
                                                        ("Image 1", "Let's talk.")]
    assert plan.shots[0].entrance == "left"
    assert plan.shots[1].framing == "close-up" and plan.shots[1].focus == "Image 1"
    covers(plan, 10)


def test_storyboard() -> None:
    plan = plan_prompt(STORY, ["reference image"], 10, "single", 3)
    assert plan.mode == "storyboard" and len(plan.shots) == 4
    assert [s.framing for s in plan.shots] == ["wide", "medium", "medium", "close-up"]
    covers(plan, 10)


def test_single_is_one_shot_and_deterministic() -> None:
    plan = plan_prompt(FOUR, ["character1", "character2", "character3", "character4"], 5, "single", 3)
    assert plan.mode == "single" and len(plan.shots) == 1
    assert plan.lines[0].speaker == "character1"
    covers(plan, 5)
    a = plan_prompt(WAN27, ["Video 1", "Image 1", "Image 2"], 10, "multi", 9).as_dict()
    assert a == plan_prompt(WAN27, ["Video 1", "Image 1", "Image 2"], 10, "multi", 9).as_dict()
    assert ShotPlan.from_dict(a).as_dict() == a


def test_extended_prompt_is_explicit() -> None:
    text = plan_to_prompt(plan_prompt(FOUR, ["character1", "character2", "character3", "character4"], 10, "multi", 3))
    assert text.startswith("Shot 1 [0-") and "Shot 2 [" in text and '"that sounds great"' in text
    # The explicit form parses back to the same shot boundaries.
    again = plan_prompt(text, ["character1", "character2", "character3", "character4"], 10, "multi", 3)
    assert again.mode == "timed" and len(again.shots) == 2
