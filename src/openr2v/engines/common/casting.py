"""Casting: every reference gets a role — character, object (held or placed), background or storyboard.

The prompt speaks first, then the picture:
1. one image that is a grid of panels is a storyboard (each panel becomes a shot's plate);
2. "holding X", "plays X", "eating X" ... make X a held object (held by the sentence's subject);
3. "from X", "in X", "X as the background", "the scene of X" make X a background (never a video:
   the documents say videos are for characters or objects);
4. a picture with a person in it (a face, or a confident person mask) is a character;
5. a wide image (aspect >= 1.3) without a person, and without transparency, is a background;
6. anything else is a placed object (an image) or a character (a video).
Spatial words stay with the label they follow: "on the left", "right side", "by the window",
"next to X", "in the middle".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from openr2v.domain.prompt import label_pattern
from openr2v.engines.common.segment import Look
from openr2v.engines.common.storyboard import Grid

__all__ = ["Role", "cast"]

BACKGROUND_ASPECT = 1.3
_HELD = (r"(?:holding|holds|hold|holds up|carrying|carries|carry|grasping|grasps|gripping|clutching|eating|eats|"
         r"drinking|drinks|playing|plays|strumming|strums|wielding|waving|cradling|hugging)")
_ARTICLE = r"(?:\s+(?:a|an|the|his|her|their|its))?"
_PLACE = r"(?:background|backdrop|scene|setting|location|room|set)"


@dataclass
class Role:
    label: str
    role: str  # character | object | background | storyboard
    reason: str  # why, for the notes: "prompt: holding", "picture: person", ...
    holder: str | None = None  # a held object's holder
    side: str | None = None  # left | right | centre | window
    near: str | None = None  # "next to X"
    method: str = ""  # how it was cut out (filled in once it is)

    def note(self) -> dict[str, str]:
        out = {"role": self.role, "reason": self.reason}
        if self.method:
            out["method"] = self.method
        if self.holder:
            out["held_by"] = self.holder
        if self.side:
            out["side"] = self.side
        return out


def _sentences(prompt: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", prompt) if s.strip()]


def _subject(sentence: str, before: int, labels: list[str], exclude: str) -> str | None:
    """The label named last in ``sentence`` before position ``before``: who does the holding."""
    hits = sorted((m.start(), label) for label in labels if label != exclude
                  for m in re.finditer(label_pattern(label), sentence[:before], re.I))
    return hits[-1][1] if hits else None


def _held_by(prompt: str, label: str, labels: list[str]) -> str | None | bool:
    """The holder when the prompt holds ``label`` (None: held, holder unknown); False when it does not."""
    pattern = re.compile(rf"\b{_HELD}{_ARTICLE}\s+(?:{label_pattern(label)})", re.I)
    for sentence in _sentences(prompt):
        m = pattern.search(sentence)
        if m:
            return _subject(sentence, m.start(), labels, label)
    return False


def _is_place(prompt: str, label: str) -> bool:
    lp = rf"(?:{label_pattern(label)})(?!\s*['’]s)"  # "in character1's hands" is not a place
    patterns = (rf"\bfrom(?:\s+the)?\s+(?:{lp})", rf"\b(?:in|inside|within|into)(?:\s+the)?\s+(?:{lp})",
                rf"(?:{lp})\s*\(?\s*(?:as|is)?\s*(?:the\s+)?{_PLACE}\b",
                rf"\b{_PLACE}\s*(?:is|:|of|from)?\s*(?:the\s+)?(?:{lp})")
    return any(re.search(p, prompt, re.I) for p in patterns)


def _clause_after(prompt: str, label: str) -> str:
    """Text after each mention of ``label`` up to the clause's end: where its spatial words live."""
    out = []
    for m in re.finditer(label_pattern(label), prompt, re.I):
        rest = prompt[m.end():m.end() + 120]
        out.append(re.split(r"[.;!?]|,\s*(?:and|while|then)\b", rest)[0])
    return " ".join(out)


def _side(text: str) -> str | None:
    low = text.lower()
    if re.search(r"\b(?:by|near|at|beside|next to|in front of)\s+the\s+window\b", low):
        return "window"
    # "walks in from the left" says where someone comes from; "on the right side" where they stay.
    entrance = re.search(r"\bfrom\s+the\s+(?:\w+\s+)?(left|right)\b", low)
    stay = re.sub(r"\bfrom\s+the\s+(?:\w+\s+)?(?:left|right)\b", " ", low)
    for word, side in (("left", "left"), ("right", "right"), ("middle", "centre"), ("centre", "centre"),
                       ("center", "centre")):
        if re.search(rf"\b{word}\b", stay):
            return side
    return entrance.group(1) if entrance else None


def _near(text: str, label: str, labels: list[str]) -> str | None:
    for other in labels:
        if other != label and re.search(rf"\b(?:next to|beside|near|alongside|by)\s+(?:{label_pattern(other)})",
                                        text, re.I):
            return other
    return None


def cast(prompt: str, looks: list[Look], grid: Grid | None = None) -> dict[str, Role]:
    """Roles for the references seen in ``looks`` (prompt order kept)."""
    labels = [lk.label for lk in looks]
    roles: dict[str, Role] = {}
    for look in looks:
        label = look.label
        held = _held_by(prompt, label, labels)
        if grid is not None and len(looks) == 1 and look.kind == "image":
            role = Role(label, "storyboard", f"picture: {grid.rows}x{grid.cols} panel grid")
        elif held is not False:
            role = Role(label, "object", "prompt: held", holder=held if isinstance(held, str) else None)
        elif _is_place(prompt, label) and look.kind == "image":
            role = Role(label, "background", "prompt: names it as the place")
        elif look.person:
            role = Role(label, "character", "picture: face" if look.face else "picture: person")
        elif look.kind == "image" and look.aspect >= BACKGROUND_ASPECT and not look.has_alpha:
            role = Role(label, "background", "picture: wide, nobody in it")
        elif look.kind == "image":
            role = Role(label, "object", "picture: no person")
        else:
            role = Role(label, "character", "video: a subject")
        roles[label] = role
    for label, role in roles.items():
        if role.role in ("character", "object"):
            clause = _clause_after(prompt, label)
            role.side = _side(clause)
            near = _near(clause, label, labels)
            role.near = near if near in roles and roles[near].role in ("character", "object") else None
        if role.role == "object" and role.holder and roles.get(role.holder, role).role != "character":
            role.holder = None  # held by something that is not a character: place it instead
    return roles
