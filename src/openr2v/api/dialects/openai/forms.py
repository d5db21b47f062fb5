"""Multipart form fields with bracketed names -> the JSON object they stand for.

The ``openai`` SDK sends ``videos.create`` as multipart and flattens nested values (its own
``input_reference`` object and anything in ``extra_body``) with the "brackets" format:
``parameters[seed]=5``, ``references[]=https://...``, ``references[][url]=...``,
``references[][type]=video``. It groups repeated names together (all ``url`` values, then all
``type`` values), so a list of objects is rebuilt by position: the i-th ``url`` and the i-th
``type`` belong to object i, in whatever order the fields arrive. That is only unambiguous when
every object has the same keys; otherwise the form is refused (send JSON, or give every object
every key, ``"none"`` standing for none: the SDK drops a ``""`` that comes first). Every leaf
arrives as a string; ``coerce`` turns the fields openr2v types back into bools and numbers.

A list field (``LISTS``) may be spelled three ways, all read alike: ``references[]`` (the SDK),
a plain ``references`` repeated, or a single plain ``references`` (LiteLLM sends these two). One
form uses one spelling; a mix is refused with the spellings that work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from openr2v.errors import InvalidParameter

__all__ = ["coerce", "unflatten"]

_KEY = re.compile(r"^(?P<name>[^\[\]]+)(?P<rest>(\[[^\[\]]*\])*)$")
MAX_DEPTH = 4
NONE = ("", "none", "null")  # what stands for an absent key in a list of objects

# Fields whose form values are not strings: dotted path -> type.
TYPED: dict[str, type] = {"parameters.audio": bool, "parameters.watermark": bool,
                          "parameters.prompt_extend": bool, "parameters.seed": int,
                          # vLLM-Omni's fields (docs/dialects/openai-videos-extensions.md)
                          "width": int, "height": int, "num_frames": int, "fps": int, "seed": int,
                          "num_inference_steps": int, "guidance_scale": float, "guidance_scale_2": float,
                          "flow_shift": float, "true_cfg_scale": float, "boundary_ratio": float,
                          "generate_sound": bool}
# Top-level fields that hold a list.
LISTS = ("references",)
_FLOAT = re.compile(r"-?(\d{1,19}(\.\d{0,19})?|\.\d{1,19})([eE][-+]?\d{1,3})?")


def spellings(name: str) -> str:
    """The multipart spellings of list field ``name``, for refusals."""
    return f"{name}[]=... once per item, or {name}=... once per item (a single {name}=... is a list of one)"


def _tokens(key: str) -> list[str]:
    m = _KEY.match(key)
    if not m:
        raise InvalidParameter(f"form field name {key[:100]!r} is not a valid field name.", param=key[:100])
    parts = [m.group("name")] + re.findall(r"\[([^\[\]]*)\]", m.group("rest"))
    if len(parts) > MAX_DEPTH:
        raise InvalidParameter(f"form field {key[:100]!r} is nested too deeply.", param=key[:100])
    return parts


class _Objects(dict[str, list[Any]]):
    """A list of objects while it is being read: key -> its values in order."""


class _Plain(list[Any]):
    """A list spelled with its plain name (``references=a``, ``references=b``)."""


def _mixed(head: str, key: str) -> InvalidParameter:
    if head in LISTS:
        return InvalidParameter(f"form field {key[:100]!r} mixes two spellings of the list {head}; use "
                                f"{spellings(head)}.", param=head)
    return InvalidParameter(f"form field {key[:100]!r} mixes a list and another value.", param=key[:100])


def _set(node: dict[str, Any], parts: list[str], value: Any, key: str, top: bool = True) -> None:
    head, rest = parts[0], parts[1:]
    if not rest and top and head in LISTS:  # a plain list name: one item of the list
        if isinstance(node.get(head), _Plain):
            node[head].append(value)
            return
        if head in node:
            raise _mixed(head, key)
        node[head] = _Plain([value])
        return
    if not rest:
        if head in node:
            raise InvalidParameter(f"form field {key[:100]!r} is given more than once.", param=key[:100])
        node[head] = value
        return
    if rest[0] == "" and len(rest) == 1:  # name[]: a list of values
        items = node.setdefault(head, [])
        if not isinstance(items, list) or isinstance(items, _Plain):
            raise _mixed(head, key)
        items.append(value)
        return
    if rest[0] == "":  # name[][k]: a list of objects
        if len(rest) > 2:
            raise InvalidParameter(f"form field {key[:100]!r} is nested too deeply.", param=key[:100])
        objects = node.setdefault(head, _Objects())
        if not isinstance(objects, _Objects):
            raise _mixed(head, key)
        objects.setdefault(rest[1], []).append(value)
        return
    child = node.setdefault(head, {})
    if not isinstance(child, dict) or isinstance(child, _Objects):
        raise InvalidParameter(f"form field {key[:100]!r} mixes an object and another value.", param=key[:100])
    _set(child, rest, value, key, top=False)


def _settle(node: dict[str, Any], path: str = "") -> dict[str, Any]:
    for name, value in list(node.items()):
        where = f"{path}{name}"
        if isinstance(value, _Objects):
            counts = {len(v) for v in value.values()}
            if len(counts) != 1:
                raise InvalidParameter(
                    f"{where}: in a multipart form every object of the list must have the same keys "
                    f"({', '.join(f'{k} x{len(v)}' for k, v in value.items())}); give each key for every "
                    f'object ("none" for none) or send the request as JSON.', param=where)
            n = counts.pop()
            node[name] = [{k: v[i] for k, v in value.items() if str(v[i]).lower() not in NONE} for i in range(n)]
        elif isinstance(value, _Plain):
            node[name] = list(value)
        elif isinstance(value, dict):
            _settle(value, f"{where}.")
    return node


def unflatten(items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """``[("parameters[seed]", "5"), ("references[]", "u")]`` -> ``{"parameters": {"seed": "5"}, ...}``."""
    out: dict[str, Any] = {}
    for key, value in items:
        _set(out, _tokens(key), value, key)
    return _settle(out)


def coerce(body: dict[str, Any]) -> dict[str, Any]:
    """Turn the string leaves of typed fields into their types; leave the rest for validation."""
    for path, kind in TYPED.items():
        parent, _, leaf = path.rpartition(".")
        node = body.get(parent) if parent else body
        if not isinstance(node, dict) or not isinstance(node.get(leaf), str):
            continue
        raw = node[leaf].strip()
        if kind is bool and raw.lower() in ("true", "false"):
            node[leaf] = raw.lower() == "true"
        elif kind is int and re.fullmatch(r"-?\d{1,19}", raw):
            node[leaf] = int(raw)
        elif kind is float and _FLOAT.fullmatch(raw):
            node[leaf] = float(raw)
    return body
