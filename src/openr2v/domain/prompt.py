"""The prompt grammar: from a prompt and its reference labels to a ``ShotPlan``.

Recognised, in this order of precedence:
- timed shots ``Shot 1 [0-2s]: ...`` (the wan2.6-r2v guide);
- storyboards ``Storyboard: 1. Wide shot: ... 2. Close-up: ...`` (the wan2.7-r2v guide);
- otherwise ``shot_type=multi`` plans shots itself (sentences and dialogue turns), and
  ``single`` is one continuous shot.
Labels: ``character1..5`` (wan2.6, any case), ``Image N`` / ``Video N`` and, with a single
reference, ``reference image`` / ``reference video`` (wan2.7). Dialogue: ``X says (to Y): "..."``,
``X replies: '...'``, ``..., saying: '...'``. Framing: wide, medium, close-up, overhead, action;
camera: zoom in/out, pan left/right. Framing cues tie a framing to a line or an action:
``Close-up of X while she speaks: "..."``, ``medium shot of Y as X speaks to her``, ``when X
laughs, close-up of her``: in a plan of many shots the shot holding that line gets the framing and
subject; inside one shot the camera moves to it for the line's window. Pure functions;
deterministic for a seed.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Cue", "Line", "Shot", "ShotPlan", "find_cues", "find_labels", "label_pattern", "plan_prompt",
           "plan_to_prompt"]

FPS = 30
ACTION_SECONDS = 1.5  # how long an action cue ("when she laughs") holds in one continuous shot

FRAMINGS = {
    "extreme close-up": "close-up", "close-up": "close-up", "close up": "close-up", "closeup": "close-up",
    "medium shot": "medium", "medium": "medium", "mid shot": "medium", "wide shot": "wide", "wide": "wide",
    "establishing": "wide", "long shot": "wide", "full shot": "wide", "overhead": "overhead",
    "bird's-eye": "overhead", "top-down": "overhead", "action shot": "action", "action": "action",
    "final shot": "wide",
}
CAMERAS = {"zoom in": "zoom in", "zooms in": "zoom in", "zooming in": "zoom in", "push in": "zoom in",
           "zoom out": "zoom out", "zooms out": "zoom out", "pull back": "zoom out", "pan left": "pan left",
           "pans left": "pan left", "pan right": "pan right", "pans right": "pan right", "pan": "pan right",
           "pans": "pan right", "tracking": "pan right"}

_QUOTED = r"(?:\"(?P<dq>[^\"]+)\"|“(?P<cq>[^”]+)”|‘(?P<sq2>[^’]+)’|'(?P<sq>.+?)'(?=\s|$|[.,;:!?)]))"
_SPEECH_VERB = r"(?:saying|says|said|say|speaks|speaking|spoke|talks|replying|asking|replies|replied|reply|asks|asked|answers|answered|shouts|shouted|whispers|whispered|adds|added|exclaims|exclaimed|responds|responded)"  # noqa: E501
_TIMED = re.compile(r"Shot\s*(\d+)\s*\[\s*(\d+(?:\.\d+)?)\s*s?\s*[-–~]\s*(\d+(?:\.\d+)?)\s*s?\s*\]\s*:?", re.I)
_STORY_ITEM = re.compile(r"(?:(?<=\s)|^)(\d{1,2})\.\s+(?=[A-Z])")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"”’'])\s+")
_OBJECT_WORDS = re.compile(r"\b(?:holding|holds|hold|seeing|sees|see|with|to|at|from|of|toward|towards|beside|"
                           r"watching|watches|eating|eats|next to|behind|near)\s*$", re.I)


@dataclass
class Line:
    speaker: str | None
    text: str
    addressee: str | None = None
    start: float = 0.0
    end: float = 0.0


@dataclass
class Cue:
    """A framing tied to a line or an action: "close-up of ``subject`` while ``speaker`` speaks"."""

    framing: str
    subject: str | None  # whom the framing is on
    speaker: str | None  # whose line or action it follows
    verb: str  # speaks, answers, laughs...
    line: int | None = None  # the shot's line it follows (index into Shot.lines), None for an action
    start: float = 0.0  # the window it holds for, in seconds of the video
    end: float = 0.0


@dataclass
class Shot:
    index: int
    start: float
    end: float
    text: str
    framing: str
    camera: str | None = None
    on_screen: list[str] = field(default_factory=list)
    focus: str | None = None
    lines: list[Line] = field(default_factory=list)
    entrance: str | None = None  # "left" | "right" when the prompt walks someone in
    cues: list[Cue] = field(default_factory=list)


@dataclass
class ShotPlan:
    duration: float
    mode: str  # timed | storyboard | auto | single
    shots: list[Shot]
    labels: list[str]
    style: str = ""  # preamble before the shots (style, scene, characters)

    @property
    def lines(self) -> list[Line]:
        return [ln for s in self.shots for ln in s.lines]

    def as_dict(self) -> dict[str, Any]:
        return {"duration": self.duration, "mode": self.mode, "labels": self.labels, "style": self.style,
                "shots": [asdict(s) for s in self.shots]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShotPlan:
        shots = [Shot(**{**s, "lines": [Line(**ln) for ln in s["lines"]],
                         "cues": [Cue(**c) for c in s.get("cues", [])]}) for s in d["shots"]]
        return cls(duration=d["duration"], mode=d["mode"], shots=shots, labels=d["labels"], style=d["style"])


# -- labels -----------------------------------------------------------------------------------


def label_pattern(label: str) -> str:
    """The regex that finds ``label`` in a prompt, in every spelling the grammar accepts."""
    m = re.fullmatch(r"character(\d)", label, re.I)
    if m:
        return rf"\bcharacter\s?{m.group(1)}\b"
    m = re.fullmatch(r"(Image|Video) (\d)", label)
    if m:
        return rf"\b{m.group(1)}\s?{m.group(2)}\b"
    m = re.fullmatch(r"reference (image|video)", label)
    if m:  # a lone wan2.7 reference answers to both names
        return rf"\breference\s+{m.group(1)}\b|\b{m.group(1)}\s?1\b"
    return r"\b" + re.escape(label).replace(r"\ ", r"\s+") + r"\b"


def find_labels(text: str, labels: list[str]) -> list[str]:
    """Labels named in text, in order of first mention."""
    hits: list[tuple[int, str]] = []
    for label in labels:
        m = re.search(label_pattern(label), text, re.I)
        if m:
            hits.append((m.start(), label))
    return [label for _, label in sorted(hits)]


def _framing(text: str) -> str | None:
    low = text.lower()
    best: tuple[int, str] | None = None
    for word, framing in FRAMINGS.items():
        i = low.find(word)
        if i >= 0 and (best is None or i < best[0]):
            best = (i, framing)
    return best[1] if best else None


def _camera(text: str) -> str | None:
    low = text.lower()
    for word in sorted(CAMERAS, key=len, reverse=True):
        if re.search(rf"\b{re.escape(word)}\b", low):
            return CAMERAS[word]
    return None


def _entrance(text: str) -> str | None:
    m = re.search(r"\b(?:walks|runs|comes|steps|enters)\s+in\b.*?\b(left|right)\b", text, re.I)
    if m:
        return m.group(1).lower()
    m = re.search(r"\benters\s+from\s+the\s+(?:\w+\s+)?(left|right)\b", text, re.I)
    return m.group(1).lower() if m else None


# -- dialogue ---------------------------------------------------------------------------------


def _quote_text(m: re.Match[str]) -> str:
    return next(g for g in (m.group("dq"), m.group("cq"), m.group("sq2"), m.group("sq")) if g).strip()


def _speaker(before: str, labels: list[str]) -> str | None:
    """The subject of a speech verb: a label right before it, else the first label not used as an object."""
    clause = re.split(r"(?<=[.!?])\s+", before.strip())[-1] if before.strip() else ""
    mentions = sorted((m.start(), m.end(), label) for label in labels
                      for m in re.finditer(label_pattern(label), clause, re.I))
    if not mentions:
        return None
    last_start, last_end, last = mentions[-1]
    if len(re.findall(r"[\w']+", clause[last_end:])) <= 3:
        return last
    subjects = [label for start, _, label in mentions if not _OBJECT_WORDS.search(clause[:start])]
    return subjects[-1] if subjects else mentions[0][2]


def find_lines(text: str, labels: list[str], context: list[str] | None = None) -> list[Line]:
    """Dialogue lines in text, with speaker (the label named last before the verb) and addressee."""
    lines: list[Line] = []
    speech = re.compile(rf"\b{_SPEECH_VERB}\b(?:\s+to\s+(?P<to>[\w ]+?))?\s*[,:]?\s*{_QUOTED}", re.I)
    for m in speech.finditer(text):
        speaker = _speaker(text[:m.start()], labels) or (context[-1] if context else None)
        to = find_labels(m.group("to") or "", labels)
        lines.append(Line(speaker=speaker, addressee=to[0] if to else None, text=_quote_text(m)))
    if not lines:
        # "... while saying: Why is not anyone coming?" (unquoted, to the end of the text)
        for m in re.finditer(r"\b(?:saying|says)\s*:\s*(?P<bare>[^\"“'‘\s][^\n]*)$", text, re.I):
            speaker = _speaker(text[:m.start()], labels) or (context[-1] if context else None)
            lines.append(Line(speaker=speaker, text=m.group("bare").strip()))
    return lines


_CUE_FRAMINGS = r"(?:extreme\s+close-?\s?ups?|close-?\s?ups?|medium(?:\s+shot)?|mid\s+shot|wide(?:\s+shot)?|long\s+shot|full\s+shot)"  # noqa: E501
_PRONOUNS = r"(?:she|he|they|her|him|them|it)"
_WHEN = r"(?:while|as|when|whenever|during)"


def _who(labels: list[str]) -> str:
    return "(?:" + "|".join([f"(?:{label_pattern(label)})" for label in labels] + [rf"\b{_PRONOUNS}\b"]) + ")"


def _label_of(text: str | None, labels: list[str]) -> str | None:
    found = find_labels(text or "", labels)
    return found[0] if found else None


def find_cues(text: str, labels: list[str]) -> list[tuple[Cue, int, int]]:
    """Framing cues in text with where each is: ``Close-up of X as she answers``, ``When X laughs, close-up of her``.

    A pronoun subject or speaker is the other one named in the cue (``close-up of X while she
    speaks``: X both); ``close-up as X unwraps the gift`` frames X.
    """
    if not labels:
        return []
    who = _who(labels)
    forward = re.compile(rf"(?P<fr>{_CUE_FRAMINGS})(?:\s+shot)?(?:\s+(?:of|on)\s+(?P<y>{who}))?[^.!?:\"“]{{0,40}}?"
                         rf"\b{_WHEN}\s+(?P<x>{who})\s+(?:\w+ly\s+)?(?P<verb>[a-z]+)", re.I)
    backward = re.compile(rf"\b{_WHEN}\s+(?P<x>{who})\s+(?:\w+ly\s+)?(?P<verb>[a-z]+)[^.!?\"“]{{0,60}}?,\s*"
                          rf"(?:[\w-]+\s+){{0,6}}?(?P<fr>{_CUE_FRAMINGS})(?:\s+shot)?"
                          rf"(?:\s+(?:of|on)\s+(?P<y>{who}))?", re.I)
    found: list[tuple[Cue, int, int]] = []
    for pattern in (forward, backward):
        for m in pattern.finditer(text):
            if any(a < m.end() and m.start() < b for _, a, b in found):
                continue
            x, y = _label_of(m.group("x"), labels), _label_of(m.group("y"), labels)
            framing = _framing(m.group("fr")) or "close-up"
            found.append((Cue(framing=framing, subject=y or x, speaker=x or y, verb=m.group("verb").lower()),
                          m.start(), m.end()))
    return sorted(found, key=lambda c: c[1])


def _bind_cues(text: str, lines: list[Line], labels: list[str]) -> list[Cue]:
    """Each cue of text follows the first line its speaker says from the cue on (else it is an action)."""
    cues = []
    quotes = [m.start() for m in re.finditer(_QUOTED, text)]
    for cue, start, _ in find_cues(text, labels):
        after = sum(1 for q in quotes if q < start)  # lines before the cue
        cue.line = next((i for i, ln in enumerate(lines) if i >= after and ln.speaker == cue.speaker), None)
        if cue.line is not None and lines[cue.line].addressee is None and cue.subject != cue.speaker:
            lines[cue.line].addressee = cue.subject  # "as X speaks to her": to the one framed
        cues.append(cue)
    return cues


def _outside(text: str, cues: list[tuple[Cue, int, int]]) -> str:
    """text without its cues (a framing word there is the shot's own)."""
    for _, a, b in sorted(cues, key=lambda c: -c[1]):
        text = text[:a] + " " + text[b:]
    return text


def speech_seconds(text: str) -> float:
    """How long a line takes to say at a conversational pace (about 2.6 words per second)."""
    words = max(1, len(re.findall(r"[\w']+", text)))
    return round(0.35 + words / 2.6, 2)


# -- planning ---------------------------------------------------------------------------------


def _frame_time(t: float) -> float:
    return round(round(t * FPS) / FPS, 4)


def _place_lines(shot: Shot, actions: list[tuple[int, Cue]] | None = None) -> None:
    """Lines sit inside their shot, one after the other; each gets its share if they overrun.

    ``actions`` (cues without a line, each with the number of lines before it) take a turn of
    ACTION_SECONDS in that sequence: "when she laughs" between two lines holds between them.
    """
    items: list[tuple[Line | Cue, float]] = [(ln, speech_seconds(ln.text)) for ln in shot.lines]
    for k, (before, cue) in enumerate(sorted(actions or [], key=lambda a: a[0])):
        items.insert(before + k, (cue, ACTION_SECONDS))
    if items:
        span = shot.end - shot.start
        gap = 0.15
        total = sum(n for _, n in items) + gap * (len(items) + 1)
        scale = min(1.0, span / total) if total > 0 else 1.0
        t = shot.start + gap * scale
        for item, n in items:
            item.start = round(t, 3)
            item.end = round(min(shot.end, t + n * scale), 3)
            t = item.end + gap * scale
    placed = [id(cue) for _, cue in actions or []]
    for cue in shot.cues:  # a cue holds for its line; an action cue not placed above, for the whole shot
        if cue.line is not None and cue.line < len(shot.lines):
            cue.start, cue.end = shot.lines[cue.line].start, shot.lines[cue.line].end
        elif id(cue) not in placed:
            cue.start, cue.end = shot.start, shot.end


def _characters_in(text: str, labels: list[str], fallback: list[str]) -> list[str]:
    found = find_labels(text, labels)
    return found or list(fallback)


def _finish(shot: Shot, labels: list[str], previous: list[str], default_framing: str) -> Shot:
    cues = find_cues(shot.text, labels)
    own = _framing(_outside(shot.text, cues))
    shot.framing = own or default_framing
    shot.camera = _camera(shot.text)
    shot.entrance = _entrance(shot.text)
    shot.lines = find_lines(shot.text, labels, context=previous)
    shot.on_screen = _characters_in(shot.text, labels, previous)
    shot.cues = _bind_cues(shot.text, shot.lines, labels)
    if shot.lines and shot.lines[0].speaker:
        shot.focus = shot.lines[0].speaker
        if shot.focus not in shot.on_screen:
            shot.on_screen.append(shot.focus)
    elif shot.framing == "close-up" and shot.on_screen:
        shot.focus = shot.on_screen[0]
    if shot.cues and not own:
        _take_cue(shot, shot.cues[0])
    _place_lines(shot)
    return shot


def _take_cue(shot: Shot, cue: Cue) -> None:
    """The shot is the cue's: its framing, on its subject."""
    shot.framing = cue.framing
    if cue.subject:
        shot.focus = cue.subject
        if cue.subject not in shot.on_screen:
            shot.on_screen.append(cue.subject)


def _timed(prompt: str, labels: list[str], duration: float) -> ShotPlan | None:
    marks = list(_TIMED.finditer(prompt))
    if not marks:
        return None
    shots: list[Shot] = []
    previous = list(labels)
    for i, m in enumerate(marks):
        end_text = marks[i + 1].start() if i + 1 < len(marks) else len(prompt)
        start, end = float(m.group(2)), float(m.group(3))
        start, end = min(start, duration), min(end, duration)
        if end <= start:
            continue
        shot = Shot(index=len(shots) + 1, start=_frame_time(start), end=_frame_time(end),
                    text=prompt[m.end():end_text].strip(), framing="medium")
        _finish(shot, labels, previous, "medium")
        previous = shot.on_screen or previous
        shots.append(shot)
    if not shots:
        return None
    # Gaps or a short last shot: stretch the shots so the plan covers the whole video.
    shots[0].start = 0.0
    for a, b in zip(shots, shots[1:], strict=False):
        a.end = b.start
    shots[-1].end = float(duration)
    for s in shots:
        _place_lines(s)
    return ShotPlan(duration=duration, mode="timed", shots=shots, labels=labels,
                    style=prompt[:marks[0].start()].strip())


def _storyboard(prompt: str, labels: list[str], duration: float) -> ShotPlan | None:
    anchor = re.search(r"\bstoryboard\s*:", prompt, re.I)
    body_start = anchor.end() if anchor else 0
    items = [m for m in _STORY_ITEM.finditer(prompt, body_start)]
    # Require a run 1, 2, 3... of at least two items.
    run: list[re.Match[str]] = []
    for m in items:
        if int(m.group(1)) == len(run) + 1:
            run.append(m)
    if len(run) < 2 or (not anchor and not all(re.match(r"\d+\.\s+[^:]{1,40}:", prompt[m.start():]) for m in run)):
        return None
    texts = [prompt[m.end():(run[i + 1].start() if i + 1 < len(run) else len(prompt))].strip()
             for i, m in enumerate(run)]
    n = len(texts)
    bounds = [_frame_time(duration * i / n) for i in range(n + 1)]
    shots: list[Shot] = []
    previous = list(labels)
    for i, text in enumerate(texts):
        shot = Shot(index=i + 1, start=bounds[i], end=bounds[i + 1], text=text, framing="medium")
        _finish(shot, labels, previous, "medium")
        previous = shot.on_screen or previous
        shots.append(shot)
    return ShotPlan(duration=duration, mode="storyboard", shots=shots, labels=labels,
                    style=prompt[:run[0].start()].strip())


def _beats(prompt: str, labels: list[str]) -> list[str]:
    """Sentences, with each dialogue turn its own beat."""
    sentences = [s.strip() for s in _SENTENCE.split(prompt.strip()) if s.strip()]
    beats: list[str] = []
    for s in sentences:
        if beats and not find_labels(s, labels) and not find_lines(s, labels) and len(s) < 40:
            beats[-1] += " " + s  # a fragment continues the previous beat
        else:
            beats.append(s)
    return _attach_cues(beats, labels) or [prompt]


def _attach_cues(beats: list[str], labels: list[str]) -> list[str]:
    """A sentence that only cues a later line ("When X answers, close-up of her.") joins that line's beat."""
    out = list(beats)
    i = 0
    while i < len(out):
        cues = find_cues(out[i], labels)
        speech = [c for c, _, _ in cues if re.fullmatch(_SPEECH_VERB, c.verb, re.I)]
        own = [ln.speaker for ln in find_lines(out[i], labels)]
        pending = [c for c in speech if c.speaker not in own]
        later = next((j for j in range(i + 1, len(out)) if pending
                      and any(ln.speaker == pending[0].speaker for ln in find_lines(out[j], labels))), None)
        if later is not None:
            out[later] = out[i] + " " + out[later]
            del out[i]
            continue
        i += 1
    return out


def _auto(prompt: str, labels: list[str], duration: float, seed: int) -> ShotPlan:
    beats = _beats(prompt, labels)
    max_shots = max(1, int(duration // 1.5))
    cued = [bool(find_cues(b, labels)) for b in beats]
    while len(beats) > max_shots:  # merge the shortest neighbouring pair; a cue keeps its line's shot its own
        i = min(range(len(beats) - 1),
                key=lambda k: len(beats[k]) + len(beats[k + 1]) + 10**6 * (cued[k] + cued[k + 1]))
        cued[i:i + 2] = [cued[i] or cued[i + 1]]
        beats[i:i + 2] = [beats[i] + " " + beats[i + 1]]
    weights = [max(speech_seconds(" ".join(ln.text for ln in find_lines(b, labels))) if find_lines(b, labels)
                   else 0.0, 1.0 + len(b) / 60.0) for b in beats]
    total = sum(weights)
    bounds = [0.0]
    acc = 0.0
    for w in weights:
        acc += w
        bounds.append(_frame_time(duration * acc / total))
    bounds[-1] = float(duration)
    rng = random.Random(seed)
    shots: list[Shot] = []
    previous = list(labels)
    for i, text in enumerate(beats):
        default = "wide" if i == 0 else rng.choice(["medium", "medium", "close-up"])
        shot = Shot(index=i + 1, start=bounds[i], end=bounds[i + 1], text=text, framing=default)
        _finish(shot, labels, previous, default)
        if shot.lines and not _framing(text) and not shot.cues:
            shot.framing = "close-up" if not shot.lines[0].addressee else "medium"
        previous = shot.on_screen or previous
        shots.append(shot)
    return ShotPlan(duration=duration, mode="auto", shots=shots, labels=labels)


def _single(prompt: str, labels: list[str], duration: float) -> ShotPlan:
    shot = Shot(index=1, start=0.0, end=float(duration), text=prompt.strip(), framing="wide")
    _finish(shot, labels, list(labels), "wide")
    shot.framing = _framing(_outside(shot.text, find_cues(shot.text, labels))) or "wide"
    shot.on_screen = find_labels(prompt, labels) or list(labels)
    speaker = shot.lines[0].speaker if shot.lines else None
    shot.focus = speaker or (shot.on_screen[0] if shot.framing == "close-up" else None)
    # One continuous shot: lines follow each other through the whole duration; cues move the camera.
    beats = _beats(prompt, labels)
    lines: list[Line] = []
    cues: list[Cue] = []
    actions: list[tuple[int, Cue]] = []  # cues without a line, with the number of lines before them
    for b in beats:
        found = find_lines(b, labels, context=find_labels(b, labels) or None)
        for cue in _bind_cues(b, found, labels):
            if cue.line is not None:
                cue.line += len(lines)
            else:
                actions.append((len(lines), cue))
            cues.append(cue)
        lines.extend(found)
    if lines:
        shot.lines = lines
    shot.cues = cues
    _place_lines(shot, actions)
    return ShotPlan(duration=duration, mode="single", shots=[shot], labels=labels)


def plan_prompt(prompt: str, labels: list[str], duration: float, shot_type: str = "single",
                seed: int = 0) -> ShotPlan:
    """The shot plan a prompt yields. Explicit structure in the prompt wins over shot_type."""
    return (_timed(prompt, labels, duration) or _storyboard(prompt, labels, duration)
            or (_auto(prompt, labels, duration, seed) if shot_type == "multi" else _single(prompt, labels, duration)))


def _fmt(t: float) -> str:
    return f"{t:g}"


def plan_to_prompt(plan: ShotPlan) -> str:
    """The explicit shot form of a plan: what ``prompt_extend`` returns as ``actual_prompt``."""
    parts = [plan.style] if plan.style else []
    for s in plan.shots:
        who = ", ".join(s.on_screen) if s.on_screen else "the scene"
        bits = [f"{s.framing} shot" if s.framing not in ("close-up",) else "close-up"]
        if s.camera:
            bits.append(f"camera {s.camera}")
        desc = f"Shot {s.index} [{_fmt(s.start)}-{_fmt(s.end)}s]: {', '.join(bits)} on {who}."
        action = re.sub(r"\s+", " ", s.text).strip()
        if action:
            desc += f" {action}"
        for ln in s.lines:
            if ln.speaker and ln.text not in action:
                to = f" to {ln.addressee}" if ln.addressee else ""
                desc += f' {ln.speaker} says{to}: "{ln.text}"'
        parts.append(desc)
    return " ".join(parts)
