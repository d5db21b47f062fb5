"""Engines: which one serves which model is configuration (OPENR2V_ENGINE, per-model overrides)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from openr2v.config import Settings
from openr2v.engines.base import Engine, RenderJob, RenderResult, ResolvedReference

__all__ = ["Engine", "RenderJob", "RenderResult", "ResolvedReference", "engine_resolver", "make_engine"]

ENGINE_NAMES = ("compositor",)


def make_engine(name: str, settings: Settings) -> Engine:
    if name == "compositor":
        from openr2v.engines.compositor import CompositorEngine

        return CompositorEngine(preset=settings.x264_preset)
    raise ValueError(f"unknown engine {name!r}; available: {', '.join(ENGINE_NAMES)}")


def engine_resolver(settings: Settings) -> Callable[[str], Engine]:
    """model name -> engine, each engine built once (loading weights is expensive)."""
    overrides = dict(item.split("=", 1) for item in settings.engine_overrides.split(",") if "=" in item)
    for name in {settings.engine, *overrides.values()}:
        if name not in ENGINE_NAMES:
            raise ValueError(f"unknown engine {name!r}; available: {', '.join(ENGINE_NAMES)}")
    cache: dict[str, Engine] = {}
    lock = threading.Lock()

    def resolve(model: str) -> Engine:
        name = overrides.get(model, settings.engine)
        with lock:
            if name not in cache:
                cache[name] = make_engine(name, settings)
            return cache[name]

    return resolve
