"""The prompt grammar on the documents' own prompts."""

from __future__ import annotations

from openr2v.domain.prompt import ShotPlan, find_cues, find_labels, plan_prompt, plan_to_prompt

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


# -- framing cues: a framing tied to a line or an action ----------------------------------------

DUO = ["character1", "character2"]
WHILE_SHE_SPEAKS = ('Wide shot of the kitchen. character1 says: "Dinner is ready." Close-up of character2 while she '
                    'speaks: "I am starving, thank you."')
AS_X_SPEAKS_TO_HER = ('character1 says to character2: "Did you finish the report?" Medium shot of character2 as '
                      'character1 speaks to her: "We need it by noon."')
WHEN_SHE_LAUGHS = ('character1 tells a joke. Close-up of character2 when she laughs. character2 says: "That was '
                   'terrible."')
CUE_FIRST = ('character1 and character2 sit at a table. When character2 answers, the camera pushes in to a close-up '
             'of her. character1 asks: "Where were you?" character2 answers: "At the library, reading."')


def test_cues_name_framing_subject_and_speaker() -> None:
    [(cue, _, _)] = find_cues(WHILE_SHE_SPEAKS, DUO)
    assert (cue.framing, cue.subject, cue.speaker, cue.verb) == ("close-up", "character2", "character2", "speaks")
    [(cue, _, _)] = find_cues(AS_X_SPEAKS_TO_HER, DUO)
    assert (cue.framing, cue.subject, cue.speaker) == ("medium", "character2", "character1")
    [(cue, _, _)] = find_cues(CUE_FIRST, DUO)  # "when X answers, ... close-up of her": her is X
    assert (cue.framing, cue.subject, cue.speaker, cue.verb) == ("close-up", "character2", "character2", "answers")
    [(cue, _, _)] = find_cues(HOLIDAY, ["character1"])  # "Close-up as Character1 carefully unwraps the gift"
    assert (cue.framing, cue.subject, cue.verb) == ("close-up", "character1", "unwraps")
    # Framing words without a "while / as / when" are no cue; nor is an "as" without a framing word.
    assert find_cues("Close-up of character1. character2 waves as character1 speaks.", DUO) == []


def test_single_shot_keeps_each_cue_for_its_line() -> None:
    for prompt, line, framing, subject in ((WHILE_SHE_SPEAKS, 1, "close-up", "character2"),
                                           (AS_X_SPEAKS_TO_HER, 1, "medium", "character2"),
                                           (CUE_FIRST, 1, "close-up", "character2")):
        plan = plan_prompt(prompt, DUO, 5, "single")
        [shot] = plan.shots
        assert shot.framing == "wide"  # the shot's own framing; the cue is a move inside it
        [cue] = shot.cues
        assert (cue.framing, cue.subject, cue.line) == (framing, subject, line)
        ln = shot.lines[line]
        assert (cue.start, cue.end) == (ln.start, ln.end) and 0 < cue.start < cue.end <= 5
    # "as character1 speaks to her": the line goes to the one framed.
    assert plan_prompt(AS_X_SPEAKS_TO_HER, DUO, 5, "single").shots[0].lines[1].addressee == "character2"
    # An action cue holds for its sentence's share of the video.
    [shot] = plan_prompt(WHEN_SHE_LAUGHS, DUO, 6, "single").shots
    [cue] = shot.cues
    assert cue.line is None and cue.verb == "laughs" and 0 < cue.start < cue.end < 6
    assert cue.end <= shot.lines[0].start  # the laugh comes before her line, in the prompt's order


def test_multi_shot_gives_the_lines_shot_its_cue() -> None:
    for prompt, framing, subject, speaker in ((WHILE_SHE_SPEAKS, "close-up", "character2", "character2"),
                                              (AS_X_SPEAKS_TO_HER, "medium", "character2", "character1"),
                                              (CUE_FIRST, "close-up", "character2", "character2")):
        plan = plan_prompt(prompt, DUO, 5, "multi")
        covers(plan, 5)
        cued = [s for s in plan.shots if s.cues]
        assert len(cued) == 1, prompt
        shot = cued[0]
        assert (shot.framing, shot.focus) == (framing, subject) and subject in shot.on_screen
        line = shot.lines[shot.cues[0].line]
        assert line.speaker == speaker and shot.start <= line.start < line.end <= shot.end
    # The cue's line is the shot's own, not merged into a neighbour's (three shots at most in 4 s).
    plan = plan_prompt(CUE_FIRST, DUO, 4, "multi")
    shot = next(s for s in plan.shots if s.cues)
    assert [ln.speaker for ln in shot.lines] == ["character2"]
    # A timed shot's cue: the shot's framing word wins, the cue is a move inside it.
    timed = plan_prompt('Shot 1 [0-5s]: wide shot. character1 says: "Hi." Close-up of character2 as she answers: '
                        '"Hello there."', DUO, 5)
    [shot] = timed.shots
    assert shot.framing == "wide" and shot.cues[0].subject == "character2" and shot.cues[0].line == 1


def test_cues_survive_the_recorded_plan() -> None:
    plan = plan_prompt(WHILE_SHE_SPEAKS, DUO, 5, "single")
    again = ShotPlan.from_dict(plan.as_dict())
    assert again == plan and again.shots[0].cues[0].framing == "close-up"
    old = plan.as_dict()
    for s in old["shots"]:
        del s["cues"]  # a plan recorded before cues existed
    assert ShotPlan.from_dict(old).shots[0].cues == []
