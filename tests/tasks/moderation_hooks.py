"""Moderation hooks for tests/tasks/test_moderation.py, loaded by import path like an operator's own
(``OPENR2V_MODERATION_HOOK=tests.tasks.moderation_hooks:flag_output``). The servers run in the test's
process, so what a hook saw is read back from ``CALLS``."""

from __future__ import annotations

from dataclasses import dataclass

from openr2v.errors import IPInfringementSuspect
from openr2v.tasks.moderation import Content

OUTPUT_MESSAGE = "The output video shows a prohibited scene (test hook)."


@dataclass
class Call:
    content: Content
    video_bytes: int | None  # the MP4's size while the hook held it


CALLS: list[Call] = []


def record(content: Content) -> None:
    size = content.video.stat().st_size if content.video is not None and content.video.exists() else None
    CALLS.append(Call(content, size))


def flag_output(content: Content) -> str | None:
    """Refuses every output (a message: DataInspectionFailed), passes every input."""
    record(content)
    return OUTPUT_MESSAGE if content.stage == "output" else None


def flag_harbour_captions(content: Content) -> bool:
    """Refuses an output whose burned-in captions mention a harbour (True: the default message)."""
    record(content)
    return content.stage == "output" and "harbour" in content.texts.get("captions", "").lower()


def flag_lighthouse_as_ip(content: Content) -> None:
    """Raises the IP refusal itself for a prompt naming the (fictional) protected Lighthouse Keeper."""
    record(content)
    if content.stage == "input" and "lighthouse keeper" in content.texts["prompt"].lower():
        raise IPInfringementSuspect("The Lighthouse Keeper is a protected character (test hook).")


def crash(content: Content) -> None:
    record(content)
    raise RuntimeError("the moderation service is down")


def crash_on_output(content: Content) -> None:
    record(content)
    if content.stage == "output":
        raise ConnectionError("the moderation service is down")


def crash_once(content: Content) -> None:
    """A transient failure: only the first call of a test fails."""
    record(content)
    if len(CALLS) == 1:
        raise TimeoutError("the moderation service timed out")


def nonsense(content: Content) -> object:
    record(content)
    return 42


def hang(content: Content) -> None:
    """Never answers in time (a hung classifier): the check must give up at the timeout."""
    import time

    record(content)
    time.sleep(3)
