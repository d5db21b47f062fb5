"""From the job's references to what VACE understands: reference images and a prompt without labels.

Reference images: VACE's reference-to-video training shows each subject cut out on a white canvas
(its own pre-processing pastes references onto white), so characters and objects are lifted off
their pictures with the compositor's segmentation (its own alpha, mediapipe person masks, GrabCut)
and laid on white; a background (a place) stays whole, as VACE also takes scene references. A video
reference gives its first frame.

Prompt: the model sees the pictures but not their names, so ``character1`` / ``Image 2`` become
descriptions (``the first person``, ``the object``) by a configurable template; quoted dialogue is
dropped from the text (it is spoken on the soundtrack, and quoted words invite captions on screen).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from openr2v.domain.prompt import Shot, ShotPlan, label_pattern
from openr2v.engines.base import RenderJob
from openr2v.engines.common.casting import cast
from openr2v.engines.common.segment import SEGMENT_SIDE, Look, fit, flatten, grabcut_alpha, look_at, selfie_alpha
from openr2v.engines.common.sources import load_still

__all__ = ["Cast", "VaceReference", "cast_references", "shot_prompt"]

REFERENCE_SIDE = 1024  # the pipeline scales references to the render size anyway; this bounds the work
WHITE = (255, 255, 255)
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
_NOUNS = {"background": "place", "object": "object"}


@dataclass
class VaceReference:
    label: str
    role: str  # character | object | background | storyboard (the compositor's casting)
    noun: str  # what the prompt calls it: person, character, object, place
    image: Image.Image  # RGB, what the pipeline gets
    method: str  # how it was prepared: alpha, selfie_segmentation, grabcut, whole picture


@dataclass
class Cast:
    references: list[VaceReference]
    names: dict[str, str]  # label -> its description in prompts

    def notes(self) -> dict[str, dict[str, str]]:
        return {r.label: {"role": r.role, "as": self.names[r.label], "method": r.method} for r in self.references}


def cast_references(job: RenderJob, template: str) -> Cast:
    """Look at every reference (the compositor's casting), prepare its picture and its description."""
    looks = [look_at(ref) for ref in job.references]
    roles = cast(job.request.prompt, looks)
    refs: list[VaceReference] = []
    for ref, look in zip(job.references, looks, strict=True):
        role = roles[ref.label].role
        noun = ("person" if look.person else "character") if role == "character" else _NOUNS.get(role, "object")
        picture, alpha = _picture(ref.path, ref.kind, look.keyframe)
        if role in ("character", "object"):
            mask, method = _mask(picture, alpha, look, role)
            image = _on_white(picture, mask) if mask is not None else Image.fromarray(picture)
        else:
            image, method = Image.fromarray(picture), "whole picture"
        refs.append(VaceReference(ref.label, role, noun, image, method))
    return Cast(refs, _names(refs, template))


def _picture(path: Path, kind: str, keyframe: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB (and the file's own alpha) at most REFERENCE_SIDE; a video's keyframe as it was looked at."""
    if kind == "video":
        return keyframe, None
    img = load_still(path)
    w, h = fit(img.width, img.height, REFERENCE_SIDE)
    if (w, h) != img.size:
        img = img.resize((w, h), Image.Resampling.LANCZOS)
    return flatten(img)


def _mask(rgb: np.ndarray, own_alpha: np.ndarray | None, look: Look, role: str) -> tuple[np.ndarray | None, str]:
    """The subject's alpha by the compositor's methods, best first; None keeps the whole picture."""
    if own_alpha is not None:
        return own_alpha, "alpha"
    size = (rgb.shape[1], rgb.shape[0])
    if role == "character" and look.person_model is not None:
        sw, sh = fit(*size, SEGMENT_SIDE)
        small = np.asarray(Image.fromarray(rgb).resize((sw, sh), Image.Resampling.BILINEAR))
        alpha = selfie_alpha(small, look.person_model, size)
        if alpha is not None and (alpha > 127).mean() > 0.01:
            return alpha, "selfie_segmentation"
    alpha = grabcut_alpha(rgb, size)
    if alpha is not None:
        return alpha, "grabcut"
    # No confident subject: a feathered ellipse (the compositor's last resort) would cut through it.
    return None, "whole picture (no subject found)"


def _on_white(rgb: np.ndarray, alpha: np.ndarray) -> Image.Image:
    """The subject over white, cropped to its box (the pipeline centres it on a white canvas again)."""
    a = alpha.astype(np.float32)[:, :, None] / 255.0
    out = (rgb.astype(np.float32) * a + 255.0 * (1 - a) + 0.5).astype(np.uint8)
    rows, cols = np.flatnonzero((alpha > 8).any(axis=1)), np.flatnonzero((alpha > 8).any(axis=0))
    if rows.size and cols.size:
        pad = max(2, round(0.03 * max(rgb.shape[:2])))
        y0, y1 = max(0, rows[0] - pad), min(rgb.shape[0], rows[-1] + 1 + pad)
        x0, x1 = max(0, cols[0] - pad), min(rgb.shape[1], cols[-1] + 1 + pad)
        out = out[y0:y1, x0:x1]
    return Image.fromarray(np.ascontiguousarray(out))


def _names(refs: list[VaceReference], template: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for n, ref in enumerate(refs, start=1):
        same = [r.label for r in refs if r.noun == ref.noun]
        nth = f"{_ORDINALS[same.index(ref.label)]} " if len(same) > 1 else ""
        names[ref.label] = template.format(noun=ref.noun, nth=nth, n=n, label=ref.label).strip()
    return names


def shot_prompt(plan: ShotPlan, shot: Shot, names: dict[str, str], fallback: str) -> str:
    """The shot's text (after the plan's preamble) with labels described and quoted dialogue removed."""
    text = shot.text.strip() or fallback
    for line in shot.lines:
        if line.text.strip():
            # The quote around exactly this line (straight or curly, either kind), with its lead-in colon.
            text = re.sub(r"[:,]?\s*[\"'“‘]\s*" + re.escape(line.text.strip()) + r"\s*[\"'”’]", "", text)
    if plan.style.strip() and plan.style.strip() not in text:
        text = f"{plan.style.strip()} {text}"
    # Longest labels first, through placeholders, so "character1" never rewrites inside a description.
    slots: dict[str, str] = {}
    for i, label in enumerate(sorted(names, key=len, reverse=True)):
        slot = f"\x00{i}\x00"
        text, hits = re.subn(label_pattern(label), slot, text, flags=re.I)
        if hits:
            slots[slot] = names[label]
    for slot, name in slots.items():
        text = text.replace(slot, name)
    text = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s{2,}", " ", text)).strip()
    if text and text[-1] not in ".!?":  # the removed quote held the sentence's full stop
        text += "."
    return _capitalised(text)


def _capitalised(text: str) -> str:
    """Sentence starts in upper case again after a label at the start became ``the ...``."""
    return re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
