"""One loaded pipeline, several recipes: what a task's model samples with, switched in before its calls.

At load, ``Sampler`` loads the LoRAs of every recipe the engine may use (each file once, as a named
adapter), builds one scheduler per recipe from the checkpoint's config, and checks each recipe's block
cache; per task, ``apply`` activates the task's recipe: its adapters and weights (the others off), its
scheduler on ``pipe.scheduler``, its block cache (another one's hooks removed). Steps and guidance are
arguments of the pipeline call (the engine passes the same options). Nothing else of the pipeline
changes, so a task renders the same bytes whatever recipe the task before it used.

A Sampler belongs to one pipeline object: with one pipeline per device, build one Sampler per pipeline.
It is not thread-safe; the engine applies and renders under its lock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from openr2v.engines.vace.options import VaceOptions
from openr2v.engines.vace.tuning import build_scheduler, cache_config, load_loras, set_cache, set_loras

__all__ = ["Sampler"]

log = logging.getLogger("openr2v.engines.vace")


class Sampler:
    def __init__(self, pipe: Any, choices: Sequence[VaceOptions]) -> None:
        """Load and build everything ``choices`` need; raises ValueError naming a LoRA that does not fit."""
        self.pipe = pipe
        self._adapters = load_loras(pipe, [lora for opts in choices for lora in opts.loras])
        checkpoint = pipe.scheduler
        self._schedulers: dict[tuple[str | None, float | None], tuple[Any, dict[str, Any]]] = {}
        self._caches: dict[tuple[str, float | None], tuple[Any, dict[str, Any]]] = {}
        for opts in choices:
            key = (opts.scheduler, opts.flow_shift)
            if key not in self._schedulers:
                self._schedulers[key] = build_scheduler(checkpoint, *key)
            cache = (opts.cache, opts.cache_threshold)
            if cache not in self._caches:
                self._caches[cache] = cache_config(pipe, *cache)
                caveat = self._caches[cache][1]["cache_caveat"]
                if caveat:
                    log.warning("OPENR2V_VACE_CACHE=first_block (recipe %s): %s", opts.recipe, caveat)
        self._cache: tuple[str, float | None] | None = None  # the cache enabled now (None: never set)

    def apply(self, opts: VaceOptions) -> dict[str, Any]:
        """Switch the pipeline to ``opts``'s recipe; returns the render notes that describe it."""
        scheduler, notes = self._schedulers[(opts.scheduler, opts.flow_shift)]
        self.pipe.scheduler = scheduler
        notes = {"recipe": opts.recipe, **notes, "loras": set_loras(self.pipe, self._adapters, opts.loras)}
        cache = (opts.cache, opts.cache_threshold)
        config, cache_notes = self._caches[cache]
        if cache != self._cache:
            set_cache(self.pipe, config)
            self._cache = cache
        return {**notes, **cache_notes}
