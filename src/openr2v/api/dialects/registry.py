"""Every dialect by name, each checked (by the type checker) against the one ``Dialect`` contract."""

from __future__ import annotations

from openr2v.api.dialects.aggregator import translate as aggregator
from openr2v.api.dialects.base import Dialect
from openr2v.api.dialects.dashscope import translate as dashscope
from openr2v.api.dialects.gateway import translate as gateway
from openr2v.api.dialects.openai import translate as openai

__all__ = ["DIALECTS"]

DIALECTS: dict[str, Dialect] = {
    "dashscope": dashscope,
    "aggregator": aggregator,
    "gateway": gateway,
    "openai": openai,
}
