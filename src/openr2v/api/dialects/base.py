"""The contract every dialect keeps, and the wire-to-canonical helpers they share.

A dialect is a package of three modules: ``protocol`` (its wire models, on ``Wire``), ``translate``
(wire <-> canonical: ``parse_submit``, ``format_task``, error codes) and ``router`` (its FastAPI
routes and ``format_error``). ``translate`` and ``router`` together satisfy ``Dialect``. No dialect
imports another: what two of them need lives here or in ``openr2v.api.common``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Response
from pydantic import BaseModel, ConfigDict, ValidationError

from openr2v.api.common import first_error
from openr2v.api.digits import parse_size
from openr2v.domain.models import ModelSpec, tier_ratio
from openr2v.domain.preview import reference_labels
from openr2v.domain.request import GenerationRequest, Kind, Reference
from openr2v.domain.task import Task
from openr2v.errors import InvalidParameter, OpenR2VError

__all__ = ["Dialect", "Submission", "View", "Wire", "media_references", "or_defaults", "tier_of_size", "validate",
           "wire_size"]


class Wire(BaseModel):
    """Base of every request model: the Wan family ignores fields it does not know, and so do we."""

    model_config = ConfigDict(extra="ignore")


@dataclass
class Submission:
    """A parsed submit, the same shape from every dialect.

    ``orig_prompt`` is the prompt as sent when the dialect keeps less of it (a truncating dialect);
    ``names`` maps canonical source fields (``first_frame``, ``audio_url``) to the wire's spelling
    for the submit-time source check; ``internal`` holds the ``oss://`` sources this server created
    for the request itself (an uploaded file), which the check lets through."""

    request: GenerationRequest
    orig_prompt: str | None = None
    names: Mapping[str, str] = field(default_factory=dict)
    internal: frozenset[str] = frozenset()


@dataclass(frozen=True)
class View:
    """What formatting a task needs besides the task: its video URL, this response's request id,
    and its price (cost, discount) where the dialect shows one."""

    video_url: str | None = None
    request_id: str = ""
    cost: tuple[float, float] | None = None


class Dialect(Protocol):
    """One wire dialect, as its ``translate`` module provides it (``openr2v.api.dialects.DIALECTS``)."""

    DIALECT: str

    def parse_submit(self, body: dict[str, Any], region: str) -> Submission:
        """A JSON object -> the validated canonical request. Raises OpenR2VError naming the wire field."""
        ...

    def format_task(self, task: Task, view: View) -> dict[str, Any]:
        """A task as the dialect shows it on a poll."""
        ...

    def format_error(self, e: OpenR2VError, request_id: str) -> Response:
        """Any error, in the dialect's own envelope and status."""
        ...


def validate(model: type[Wire], body: dict[str, Any], code: str | None = None) -> Any:
    """``model.model_validate(body)``, a pydantic refusal turned into InvalidParameter naming the field."""
    try:
        return model.model_validate(body)
    except ValidationError as e:
        where, msg = first_error(e)
        if code is None:
            raise InvalidParameter(f"{where}: {msg}.", param=where) from None
        raise InvalidParameter(f"{where}: {msg}.", param=where, code=code) from None


def or_defaults(spec: ModelSpec, **given: Any) -> dict[str, Any]:
    """The parameters a client gave, each ``None`` replaced by the model's default (``default_<name>``)."""
    return {name: getattr(spec, f"default_{name}") if value is None else value for name, value in given.items()}


def wire_size(text: str, field: str, separators: str = "*", hint: str = "must be WIDTH*HEIGHT, e.g. 1280*720") -> \
        tuple[int, int]:
    """``WIDTH<sep>HEIGHT`` as two whole numbers, or InvalidParameter worded ``{field} {text!r} {hint}.``."""
    dims = parse_size(text, separators)
    if dims is None:
        raise InvalidParameter(f"{field} {text!r} {hint}.", param=field)
    return dims


def tier_of_size(size: tuple[int, int], field: str, text: str, spec: ModelSpec, use: str) -> tuple[str, str]:
    """The (resolution, ratio) a wan2.7 model reads a pixel size as, or InvalidParameter saying what to ``use``."""
    found = tier_ratio(size)
    if found is None:
        raise InvalidParameter(f"{field} {text!r} is not supported by {spec.name}; use {use}.", param=field)
    return found


def media_references(items: list[tuple[str, Kind | None, str | None, str]], spec: ModelSpec) -> list[Reference]:
    """(source, kind, voice, wire field) of each reference, in prompt order -> References labelled as the
    model's prompts name them (wan2.6 ``characterN``; wan2.7 ``Image N`` / ``Video N``, or ``reference
    image`` when alone)."""
    labels = reference_labels(spec, [kind for _, kind, _, _ in items])
    return [Reference(kind=kind, source=source, voice=voice, label=label, field=field)
            for (source, kind, voice, field), label in zip(items, labels, strict=True)]
