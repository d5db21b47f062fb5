"""Engines: which one serves which model is configuration (OPENR2V_ENGINE, per-model overrides).

Besides the built-in names, ``package.module:factory`` names an engine outside openr2v: the
factory is called with the Settings and returns an ``Engine`` (benchmarks and tests use it for
engines that cost nothing; third parties for their own).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openr2v.config import Settings, parse_pairs
from openr2v.engines.base import Engine, RenderJob, RenderResult, ResolvedReference

__all__ = ["Engine", "RenderJob", "RenderResult", "ResolvedReference", "engine_resolver", "make_engine"]

@dataclass(frozen=True)
class Builtin:
    """A built-in engine, imported only when configured: ``module:Class`` with ``Class.from_settings``,
    and an optional ``module:function`` that checks its settings at start-up."""

    engine: str
    check: str | None = None
    renders_here_only: bool = False  # check (and load) only when this process renders (weights, torch)


BUILTINS: dict[str, Builtin] = {
    "compositor": Builtin("openr2v.engines.compositor:CompositorEngine"),
    "dashscope": Builtin("openr2v.engines.upstream:DashScopeEngine", "openr2v.engines.upstream:check_settings"),
    "videos": Builtin("openr2v.engines.upstream.videos:VideosEngine",
                      "openr2v.engines.upstream.videos:check_videos_settings"),
    "vace": Builtin("openr2v.engines.vace.engine:VaceEngine", "openr2v.engines.vace:check_settings",
                    renders_here_only=True),
}
ENGINE_NAMES = tuple(BUILTINS)


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def make_engine(name: str, settings: Settings) -> Engine:
    if name in BUILTINS:
        return _load(BUILTINS[name].engine).from_settings(settings)
    if ":" in name:
        return _load(name)(settings)
    raise ValueError(f"unknown engine {name!r}; available: {', '.join(ENGINE_NAMES)}")


def engine_resolver(settings: Settings) -> Callable[[str], Engine]:
    """model name -> engine, each engine built once (loading weights is expensive).

    Every configured engine's settings are checked here, so a mistake stops start-up instead of failing
    the first task; an engine that loads weights is built here too when this process renders.
    """
    overrides = parse_pairs(settings.engine_overrides, "OPENR2V_ENGINE_OVERRIDES", "model=engine")
    renders_here = settings.queue == "local" and settings.render_threads > 0
    names = {settings.engine, *overrides.values()}
    for name in names:
        if name not in BUILTINS and ":" not in name:
            raise ValueError(f"unknown engine {name!r}; available: {', '.join(ENGINE_NAMES)}")
        builtin = BUILTINS.get(name)
        if builtin and builtin.check and (renders_here or not builtin.renders_here_only):
            _load(builtin.check)(settings)
    cache: dict[str, Engine] = {}
    lock = threading.Lock()
    for name in names:
        if renders_here and name in BUILTINS and BUILTINS[name].renders_here_only:
            # Load the weights now: a LoRA that does not fit, or weights that do not load, stop start-up
            # (naming the file) instead of failing the first task.
            cache[name] = make_engine(name, settings)

    def resolve(model: str) -> Engine:
        name = overrides.get(model, settings.engine)
        with lock:
            if name not in cache:
                cache[name] = make_engine(name, settings)
            return cache[name]

    return resolve
