"""Content moderation: a blocklist, regular expressions, protected names and a pluggable hook.

Two checks, as the DashScope documents describe ("both the input prompt and the output video undergo
content moderation"):

- **input**, in ``TaskService.submit`` before the task is stored: the prompt and the negative prompt.
  A refusal is HTTP 400 ``DataInspectionFailed`` (or ``IPInfringementSuspect``) in the dialect's format.
- **output**, in the worker after the engine rendered and before anything is stored or billed: the text
  the renderer introduced (a prompt LLM's rewrite, an upstream's actual prompt, burned-in captions, the
  spoken dialogue) and, through the hook, the MP4 itself. A refusal fails the task with that code; the
  file is discarded and no ledger row is written.

Order: blocklist and regex (``DataInspectionFailed``), protected names (``IPInfringementSuspect``),
then the hook. A hook that breaks (raises anything but a moderation error, or answers something that
is not a verdict) raises ``ModerationUnavailable`` (code ``InternalError``): the service then accepts
the submit and has the worker check the input again; the worker fails closed.

Nothing here knows a dialect; messages name the text in plain words ("the negative prompt").
"""

from __future__ import annotations

import importlib
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from openr2v.domain.request import GenerationRequest
from openr2v.errors import DataInspectionFailed, InternalError, IPInfringementSuspect

if TYPE_CHECKING:
    from openr2v.config import Settings

__all__ = ["RECHECK", "Content", "Hook", "ModerationUnavailable", "Moderator", "PhraseMatcher",
           "moderator_from_settings", "output_texts"]

log = logging.getLogger("openr2v.moderation")

Stage = Literal["input", "output"]
# Task.extra flag: the hook failed at submit, so the worker checks the input again before rendering.
RECHECK = "moderation_recheck"

# What a refusal message calls each text (the keys of Content.texts).
WHAT: dict[str, str] = {"prompt": "the prompt", "negative_prompt": "the negative prompt",
                        "actual_prompt": "the rewritten prompt", "captions": "the captions",
                        "dialogue": "the spoken dialogue"}

# Scripts written without spaces between words: a phrase in them matches anywhere, not as whole words.
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[^\W_]+")  # letters and digits; underscores and punctuation separate words


@dataclass(frozen=True)
class Content:
    """What the hook inspects. ``texts`` holds only the texts present, keyed as in ``WHAT``."""

    stage: Stage
    texts: Mapping[str, str]
    request: GenerationRequest
    video: Path | None = None  # output: the rendered MP4, deleted after a refusal
    task_id: str | None = None  # output only: at submit the task does not exist yet
    extra: dict[str, Any] = field(default_factory=dict)  # output: the engine's render notes


Hook = Callable[[Content], object]


class ModerationUnavailable(InternalError):
    """The hook could not give a verdict: never a reason to let content through."""


# -- matching -----------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """NFKC (full-width and ligature forms to plain ones) without invisible format characters (ZWSP...)."""
    return "".join(c for c in unicodedata.normalize("NFKC", text) if unicodedata.category(c) != "Cf")


def _tokens(text: str) -> list[str]:
    """Case- and accent-folded words: ``Crème, BRÛLÉE!`` -> ``["creme", "brulee"]``."""
    folded = unicodedata.normalize("NFKD", _clean(text).casefold())
    return _WORD.findall("".join(c for c in folded if not unicodedata.combining(c)))


def _collapsed(tokens: list[str]) -> list[str]:
    """Runs of single letters joined: ``a . s . s`` is read as ``ass`` too (a simple evasion)."""
    out: list[str] = []
    run: list[str] = []
    for tok in [*tokens, ""]:
        if len(tok) == 1:
            run.append(tok)
            continue
        out.extend(["".join(run)] if len(run) > 1 else run)
        run = []
        if tok:
            out.append(tok)
    return out


class PhraseMatcher:
    """Whole words and phrases, whatever the case, accents, spacing and punctuation between them.

    Phrases are indexed by their first word, so a check costs a dictionary look-up per word of the
    text, however long the list."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self._by_first: dict[str, list[tuple[str, ...]]] = {}
        unspaced: set[str] = set()
        for phrase in phrases:
            tokens = _tokens(phrase)
            if tokens and _UNSPACED.search(phrase):
                unspaced.add("".join(tokens))
            elif tokens and tuple(tokens) not in self._by_first.get(tokens[0], []):
                self._by_first.setdefault(tokens[0], []).append(tuple(tokens))
        self._unspaced = sorted(unspaced)

    def __bool__(self) -> bool:
        return bool(self._by_first or self._unspaced)

    def find(self, text: str) -> str | None:
        """The first listed phrase ``text`` contains, as normalized; None if it contains none."""
        tokens = _tokens(text)
        if self._by_first:
            for words in (tokens, _collapsed(tokens)):
                for i, word in enumerate(words):
                    for phrase in self._by_first.get(word, ()):
                        if tuple(words[i:i + len(phrase)]) == phrase:
                            return " ".join(phrase)
        if self._unspaced:
            squashed = "".join(tokens)
            return next((phrase for phrase in self._unspaced if phrase in squashed), None)
        return None


# -- the moderator ------------------------------------------------------------------------------


class Moderator:
    def __init__(self, blocklist: Iterable[str] = (), patterns: Iterable[str | re.Pattern[str]] = (),
                 protected_names: Iterable[str] = (), hook: Hook | None = None,
                 hook_timeout_seconds: float = 30.0) -> None:
        self.blocked = PhraseMatcher(blocklist)
        self.patterns = [p if isinstance(p, re.Pattern) else re.compile(p, re.IGNORECASE) for p in patterns]
        self.protected = PhraseMatcher(protected_names)
        self.hook = hook
        self.hook_timeout = hook_timeout_seconds
        # The hook runs on threads of its own so that a call can be abandoned at the timeout.
        self._calls = ThreadPoolExecutor(max_workers=4, thread_name_prefix="openr2v-moderation") if hook else None

    def check_input(self, request: GenerationRequest) -> None:
        """Raises DataInspectionFailed or IPInfringementSuspect; ModerationUnavailable if the hook broke."""
        texts = {"prompt": request.prompt}
        if request.negative_prompt:
            texts["negative_prompt"] = request.negative_prompt
        self.check_texts("input", texts)
        self._ask_hook(Content(stage="input", texts=texts, request=request))

    def check_output(self, request: GenerationRequest, texts: Mapping[str, str], video: Path,
                     task_id: str | None = None, notes: dict[str, Any] | None = None) -> None:
        """The same, for what the renderer made: its texts, then the hook with the MP4."""
        self.check_texts("output", texts)
        self._ask_hook(Content(stage="output", texts=dict(texts), request=request, video=video, task_id=task_id,
                               extra=dict(notes or {})))

    def check_texts(self, stage: Stage, texts: Mapping[str, str]) -> None:
        """The rules alone (no hook): blocklist and regex, then protected names."""
        for key, text in texts.items():
            if not text:
                continue
            hit = self.blocked.find(text) or self._pattern_hit(text)
            if hit is not None:
                self._refuse(DataInspectionFailed, stage, key, f"blocked term {hit!r}")
            hit = self.protected.find(text)
            if hit is not None:
                self._refuse(IPInfringementSuspect, stage, key, f"protected name {hit!r}")

    def _pattern_hit(self, text: str) -> str | None:
        cleaned = _clean(text)  # an invisible character must not split what a pattern looks for
        return next((m.group(0) for p in self.patterns if (m := p.search(cleaned))), None)

    def _refuse(self, error: type[DataInspectionFailed], stage: Stage, key: str, why: str) -> None:
        # The client is told which text, never which term: the list is the operator's, and naming the
        # term would teach the way around it. The log keeps the term.
        log.info("moderation refused the %s: %s in %s", stage, why, key)
        raise error(default_message(error, stage, WHAT.get(key, key)), param=key if stage == "input" else None)

    def _ask_hook(self, content: Content) -> None:
        if self.hook is None or self._calls is None:
            return
        try:
            verdict = self._calls.submit(self.hook, content).result(timeout=self.hook_timeout)
        except DataInspectionFailed:
            raise
        except FuturesTimeout as e:
            log.error("moderation hook did not answer on the %s within %.1f s", content.stage, self.hook_timeout)
            raise ModerationUnavailable(f"Content moderation could not be completed: the moderation hook did not "
                                        f"answer within {self.hook_timeout:g} s.") from e
        except Exception as e:
            log.exception("moderation hook failed on the %s", content.stage)
            raise ModerationUnavailable(f"Content moderation could not be completed: the moderation hook failed "
                                        f"({type(e).__name__}).") from e
        refusal = _as_refusal(verdict, content.stage)
        if refusal is not None:
            log.info("moderation hook refused the %s: %s %s", content.stage, refusal.code, refusal.message)
            raise refusal


def default_message(error: type[DataInspectionFailed], stage: Stage, what: str | None) -> str:
    """DashScope's wording, naming the text when known."""
    data = "Input data" if stage == "input" else "Output data"
    verb = ("is suspected of being involved in IP infringement" if issubclass(error, IPInfringementSuspect)
            else "may contain inappropriate content")
    where = f" ({what})" if what else ""
    tail = "; the video was discarded" if stage == "output" else ""
    return f"{data} {verb}{where}{tail}."


def _as_refusal(verdict: object, stage: Stage) -> DataInspectionFailed | None:
    """A hook's answer: None/False pass; True, a message or a moderation error refuse."""
    if verdict is None or verdict is False:
        return None
    if verdict is True:
        return DataInspectionFailed(default_message(DataInspectionFailed, stage, "the video" if stage == "output"
                                                    else None))
    if isinstance(verdict, DataInspectionFailed):
        return verdict
    if isinstance(verdict, str):
        return DataInspectionFailed(verdict.strip() or default_message(DataInspectionFailed, stage, None))
    log.error("moderation hook answered a %s; expected None, a bool, a message or a DataInspectionFailed",
              type(verdict).__name__)
    raise ModerationUnavailable(f"Content moderation could not be completed: the moderation hook answered a "
                                f"{type(verdict).__name__}.")


def output_texts(actual_prompt: str | None, plan: Mapping[str, Any] | None,
                 notes: Mapping[str, Any] | None) -> dict[str, str]:
    """The texts a render put out that the submit check did not see, keyed as in ``WHAT``."""
    texts: dict[str, str] = {}
    if actual_prompt:
        texts["actual_prompt"] = actual_prompt
    captions = (notes or {}).get("captions")
    if isinstance(captions, list) and captions:
        texts["captions"] = "\n".join(str(c) for c in captions)
    lines = [str(ln.get("text", "")) for shot in (plan or {}).get("shots", []) for ln in shot.get("lines", [])]
    if any(lines):
        texts["dialogue"] = "\n".join(lines)
    return texts


# -- from settings --------------------------------------------------------------------------------


def moderator_from_settings(settings: Settings) -> Moderator | None:
    """None when nothing is configured (no check costs anything). Bad settings raise ValueError at start-up."""
    blocklist = _items(settings.moderation_blocklist, "OPENR2V_MODERATION_BLOCKLIST")
    patterns = _patterns(settings.moderation_regex)
    protected = _items(settings.protected_names, "OPENR2V_PROTECTED_NAMES")
    hook = load_hook(settings.moderation_hook) if settings.moderation_hook else None
    if not (blocklist or patterns or protected or hook):
        return None
    return Moderator(blocklist, patterns, protected, hook, settings.moderation_hook_timeout_seconds)


def _read_lines(value: str, setting: str) -> list[str]:
    path = Path(value[1:]).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{setting}: cannot read {path}: {e}") from None
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _items(value: str, setting: str) -> list[str]:
    """``a,b c`` -> ``["a", "b c"]``; ``@file`` -> its lines."""
    if value.strip().startswith("@"):
        return _read_lines(value.strip(), setting)
    return [item.strip() for item in value.split(",") if item.strip()]


def _patterns(value: str | None) -> list[re.Pattern[str]]:
    if not value or not value.strip():
        return []
    sources = _read_lines(value.strip(), "OPENR2V_MODERATION_REGEX") if value.strip().startswith("@") else [value]
    try:
        return [re.compile(s, re.IGNORECASE) for s in sources]
    except re.error as e:
        raise ValueError(f"OPENR2V_MODERATION_REGEX: {e.pattern!r} is not a valid regular expression: {e}") from None


def load_hook(path: str) -> Hook:
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"OPENR2V_MODERATION_HOOK {path!r} must be package.module:callable.")
    try:
        hook = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"OPENR2V_MODERATION_HOOK {path!r} cannot be loaded: {e}") from None
    if not callable(hook):
        raise ValueError(f"OPENR2V_MODERATION_HOOK {path!r} is not callable.")
    return hook
