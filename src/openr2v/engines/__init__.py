"""Engines: which one serves which model is configuration (OPENR2V_ENGINE, per-model overrides).

Besides the built-in names, ``package.module:factory`` names an engine outside openr2v: the
factory is called with the Settings and returns an ``Engine`` (benchmarks and tests use it for
engines that cost nothing; third parties for their own).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

from openr2v.config import Settings
from openr2v.engines.base import Engine, RenderJob, RenderResult, ResolvedReference

__all__ = ["Engine", "RenderJob", "RenderResult", "ResolvedReference", "engine_resolver", "make_engine"]

ENGINE_NAMES = ("compositor", "dashscope", "vace", "videos")


def make_engine(name: str, settings: Settings) -> Engine:
    if name == "compositor":
        from openr2v.engines.compositor import CompositorEngine

        # Cut-out masks are cached by reference file hash: a reference seen again is not segmented again.
        return CompositorEngine(preset=settings.x264_preset, cache_dir=settings.data_dir / "cache" / "cutouts",
                                parallel_shots=settings.parallel_shots, shot_workers=settings.shot_workers)
    if name == "dashscope":
        from openr2v.engines.upstream import DashScopeEngine

        return DashScopeEngine.from_settings(settings)
    if name == "videos":
        from openr2v.engines.upstream.videos import VideosEngine

        return VideosEngine.from_settings(settings)
    if name == "vace":  # loads the weights: once per process, as engine_resolver caches engines
        from openr2v.engines.vace.engine import VaceEngine

        return VaceEngine.from_settings(settings)
    if ":" in name:
        module, _, attr = name.partition(":")
        return getattr(importlib.import_module(module), attr)(settings)
    raise ValueError(f"unknown engine {name!r}; available: {', '.join(ENGINE_NAMES)}")


def engine_resolver(settings: Settings) -> Callable[[str], Engine]:
    """model name -> engine, each engine built once (loading weights is expensive)."""
    overrides = dict(item.split("=", 1) for item in settings.engine_overrides.split(",") if "=" in item)
    for name in {settings.engine, *overrides.values()}:
        if name not in ENGINE_NAMES and ":" not in name:
            raise ValueError(f"unknown engine {name!r}; available: {', '.join(ENGINE_NAMES)}")
        if name == "dashscope":  # refuse upstream mode without an upstream URL at start-up, not at the first task
            from openr2v.engines.upstream import check_settings

            check_settings(settings)
        if name == "videos":
            from openr2v.engines.upstream.videos import check_videos_settings

            check_videos_settings(settings)
        if name == "vace" and settings.queue == "local" and settings.render_threads > 0:
            # This process renders: a missing model folder or torch fails start-up, not the first task.
            from openr2v.engines.vace import check_settings as check_vace

            check_vace(settings)
    cache: dict[str, Engine] = {}
    lock = threading.Lock()
    if "vace" in {settings.engine, *overrides.values()} and settings.queue == "local" and settings.render_threads > 0:
        # Load the weights now: a LoRA that does not fit, or weights that do not load, stop start-up
        # (naming the file) instead of failing the first task.
        cache["vace"] = make_engine("vace", settings)

    def resolve(model: str) -> Engine:
        name = overrides.get(model, settings.engine)
        with lock:
            if name not in cache:
                cache[name] = make_engine(name, settings)
            return cache[name]

    return resolve
