"""Prompt extension (``prompt_extend=true``): the prompt rewritten into explicit shots.

At submit, ``TaskService`` records the rule-based rewrite (``spec.prompt.plan_to_prompt``) as the
task's ``actual_prompt``. When an OpenAI-compatible chat endpoint is configured
(``OPENR2V_PROMPT_LLM_URL``), the worker asks that model for a richer rewrite before rendering;
network calls never block the API. Its answer is used only if it parses back to an explicit plan
(timed shots or a storyboard) that keeps every line of dialogue, its speaker and its order, names
every character the prompt named and no other, and fits the model's prompt limit. Otherwise (an
error status, garbage, a timeout, a rewrite that loses something) the rule-based form stays.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from openr2v.domain.models import REGISTRY
from openr2v.domain.prompt import ShotPlan, find_labels, plan_prompt, plan_to_prompt
from openr2v.domain.request import GenerationRequest

if TYPE_CHECKING:
    from openr2v.config import Settings

__all__ = ["Extension", "LLMConfig", "PromptRewriter", "accept_rewrite", "rewriter_from_settings"]

log = logging.getLogger("openr2v.prompt_extend")

_LABEL_LIKE = re.compile(r"\bcharacter\s?\d+\b|\b(?:Image|Video)\s?\d+\b", re.I)
_FENCE = re.compile(r"```[\w-]*\s*(.*?)\s*```", re.S)
# "Here is the rewritten prompt:" - short, on its own, before any sentence or shot of the prompt itself.
_PREAMBLE = re.compile(r"^(?:here is|here's|rewritten prompt|prompt)\b[^:\n.\[]{0,60}:\s*", re.I)

_SYSTEM = """You rewrite prompts for a reference-to-video generator into an explicit shot list.
Answer with the rewritten prompt only: no commentary, no quotes around it, no markdown.
Rules:
- Write timed shots that cover 0 to {duration} seconds in order without gaps, each as
  "Shot N [a-bs]: <framing>, <what happens>." {shots_rule}
- Framing words: wide shot, medium shot, close-up, overhead, action shot. Camera words: zoom in,
  zoom out, pan left, pan right.
- Refer to characters and objects only by these labels, spelled exactly: {labels}. Invent no others.
- Keep every line of dialogue word for word, in double quotes, spoken by the same character and in
  the same order, written as: <label> says: "<line>" (or: <label> says to <label>: "<line>").
  Add no new lines of dialogue.
- Keep the style and the scene; add concrete visual detail (setting, light, motion, expression).
- Stay under {max_chars} characters."""


@dataclass(frozen=True)
class LLMConfig:
    url: str  # a base URL (.../v1) or the full .../chat/completions URL
    model: str = "default"
    api_key: str | None = None
    timeout: float = 20.0

    @property
    def endpoint(self) -> str:
        url = self.url.rstrip("/")
        return url if url.endswith("/chat/completions") else url + "/chat/completions"


@dataclass
class Extension:
    prompt: str
    plan: ShotPlan


def rewriter_from_settings(settings: Settings) -> PromptRewriter | None:
    if not settings.prompt_llm_url:
        return None
    return PromptRewriter(LLMConfig(url=settings.prompt_llm_url, model=settings.prompt_llm_model,
                                    api_key=settings.prompt_llm_api_key,
                                    timeout=settings.prompt_llm_timeout_seconds))


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[\w']+", text.lower()))


def _squash(label: str) -> str:
    """``Character 1``, ``character1`` and ``Image  2`` compare as ``character1`` and ``image2``."""
    return re.sub(r"\s+", "", label.lower())


def _clean_answer(text: str) -> str:
    fenced = _FENCE.search(text)  # a chatty model may wrap the prompt in a code block after a preamble
    text = fenced.group(1) if fenced else _PREAMBLE.sub("", text.strip())
    text = text.strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return re.sub(r"\s+", " ", text)


def accept_rewrite(answer: str, request: GenerationRequest, rule_plan: ShotPlan, seed: int) -> Extension | None:
    """The rewrite as an ``Extension`` if it keeps what the request says; None (and why, in the log) if not."""
    text = _clean_answer(answer)
    labels = list(rule_plan.labels)
    spec = REGISTRY.get(request.model)
    limit = spec.max_prompt_chars if spec else 5000

    def refuse(why: str) -> Extension | None:
        log.warning("prompt LLM rewrite refused: %s", why)
        return None

    if not text:
        return refuse("empty answer")
    if len(text) > limit:
        return refuse(f"{len(text)} characters, over the {limit} limit")
    plan = plan_prompt(text, labels, rule_plan.duration, request.shot_type, seed)
    if plan.mode not in ("timed", "storyboard"):
        return refuse("no explicit shots")
    if request.shot_type == "single" and len(rule_plan.shots) == 1 and len(plan.shots) != 1:
        return refuse(f"{len(plan.shots)} shots for a single-shot request")
    want = [(ln.speaker, _normal(ln.text)) for ln in rule_plan.lines]
    got = [(ln.speaker, _normal(ln.text)) for ln in plan.lines]
    if [t for _, t in got] != [t for _, t in want]:
        return refuse("the dialogue changed")
    if any(w is not None and w != g for (w, _), (g, _) in zip(want, got, strict=True)):
        return refuse("a line changed speaker")
    missing = set(find_labels(request.prompt, labels)) - set(find_labels(text, labels))
    if missing:
        return refuse(f"{', '.join(sorted(missing))} dropped")
    known = {_squash(label) for label in labels}
    stray = {_squash(m.group(0)) for m in _LABEL_LIKE.finditer(text)} - known
    if len(labels) == 1 and labels[0].startswith("reference "):
        stray -= {"image1", "video1"}  # a lone wan2.7 reference answers to both names
    if stray:
        return refuse(f"unknown label(s) {', '.join(sorted(stray))}")
    return Extension(prompt=text, plan=plan)


class PromptRewriter:
    """Asks an OpenAI-compatible chat model for the rewrite; ``transport`` is injectable for tests."""

    def __init__(self, config: LLMConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.transport = transport

    def messages(self, request: GenerationRequest, rule_plan: ShotPlan) -> list[dict[str, str]]:
        spec = REGISTRY.get(request.model)
        single = request.shot_type == "single" and len(rule_plan.shots) == 1
        shots_rule = ("Exactly one shot: the camera never cuts." if single
                      else f"Use {max(2, len(rule_plan.shots))} to {max(2, int(rule_plan.duration // 1.5))} shots.")
        system = _SYSTEM.format(duration=f"{rule_plan.duration:g}", shots_rule=shots_rule,
                                labels=", ".join(rule_plan.labels) or "(none)",
                                max_chars=spec.max_prompt_chars if spec else 5000)
        user = (f"Prompt: {request.prompt}\n"
                f"Duration: {rule_plan.duration:g} s\n"
                f"A literal rewrite to improve on:\n{plan_to_prompt(rule_plan)}")
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def rewrite(self, request: GenerationRequest, rule_plan: ShotPlan, seed: int) -> Extension | None:
        """The model's rewrite, or None when it fails, times out or changes what the request says."""
        body: dict[str, Any] = {"model": self.config.model, "messages": self.messages(request, rule_plan),
                                "temperature": 0.3, "seed": seed, "max_tokens": 1500, "stream": False}
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        try:
            with httpx.Client(timeout=self.config.timeout, transport=self.transport) as client:
                response = client.post(self.config.endpoint, json=body, headers=headers)
            if response.status_code != 200:
                log.warning("prompt LLM answered HTTP %s", response.status_code)
                return None
            content = response.json()["choices"][0]["message"]["content"]
        except httpx.TimeoutException:
            log.warning("prompt LLM timed out after %ss", self.config.timeout)
            return None
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning("prompt LLM call failed: %s: %s", type(exc).__name__, exc)
            return None
        if not isinstance(content, str):
            log.warning("prompt LLM answered no text")
            return None
        return accept_rewrite(content, request, rule_plan, seed)
