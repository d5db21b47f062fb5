"""The pieces of a recipe on a loaded pipeline: scheduler and shift, LoRAs, block cache, compile; pass counters.
``sampling.py`` puts them together per task.

Everything here goes through diffusers' own machinery: ``load_lora_weights`` (which converts LoRAs
in the original Wan key layout), ``set_adapters``, ``enable_cache`` with its cache configs, and
``compile_repeated_blocks``. A two-expert (Wan2.2) pipeline gets the cache and compile on both
transformers, and each LoRA where its ``high:`` / ``low:`` prefix says (both by default).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openr2v.engines.vace.recipes import CACHES, LoraSpec

__all__ = ["FIRST_BLOCK_CAVEAT", "PassCounter", "apply_compile", "build_scheduler", "cache_config", "experts",
           "load_loras", "set_cache", "set_loras"]

log = logging.getLogger("openr2v.engines.vace")
FIRST_BLOCK_CAVEAT = ("diffusers 0.42's First Block Cache keeps the residual of the later blocks with VACE's hints in "
                      "it, and the model adds the hints again on the steps it skips: references weigh more there")
_FLOW_MULTISTEP = {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}


def experts(pipe: Any) -> dict[str, Any]:
    """The pipeline's transformers by role: ``high`` (``transformer``) and, on Wan2.2, ``low`` (``transformer_2``)."""
    found = {"high": getattr(pipe, "transformer", None), "low": getattr(pipe, "transformer_2", None)}
    return {role: module for role, module in found.items() if module is not None}


def build_scheduler(base: Any, name: str | None, shift: float | None) -> tuple[Any, dict[str, Any]]:
    """The scheduler for a class and shift: ``base`` (the checkpoint's) itself when neither is given, else a
    new one carrying its config (and its shift unless given); with what was chosen, for the notes."""
    import diffusers

    config = dict(base.config)
    old_shift = config.get("flow_shift", config.get("shift"))
    if name is None and shift is None:
        return base, {"scheduler": type(base).__name__, "flow_shift": old_shift}
    cls = getattr(diffusers, name) if name else type(base)
    shift = old_shift if shift is None else shift
    extra: dict[str, Any] = {}
    if cls.__name__ != "FlowMatchEulerDiscreteScheduler":  # Wan samples flow matching: multistep ones in flow mode
        extra.update(_FLOW_MULTISTEP, flow_shift=shift)
    else:
        extra["shift"] = shift
    scheduler = cls.from_config(config, **{k: v for k, v in extra.items() if v is not None})
    return scheduler, {"scheduler": cls.__name__, "flow_shift": shift}


def load_loras(pipe: Any, loras: Iterable[LoraSpec]) -> dict[Path, str]:
    """Load each file once, as a named adapter, into every transformer one of its uses targets; returns the
    adapter name by file. Nothing is activated here (``set_loras``). A file that does not fit raises
    ValueError naming it."""
    from importlib.util import find_spec

    uses: dict[Path, set[str]] = {}
    roles = experts(pipe)
    for lora in loras:
        targets = list(roles) if lora.expert == "both" else [lora.expert]
        if any(role not in roles for role in targets):
            raise ValueError(f"OPENR2V_VACE_LORAS: {lora.path} is marked {lora.expert}: (one expert of a two-expert "
                             "Wan2.2 model), but this model has one transformer")
        uses.setdefault(lora.path, set()).update(targets)
    if uses and find_spec("peft") is None:
        raise ValueError("OPENR2V_VACE_LORAS: loading LoRAs needs peft; install the `vace` extra")
    names: dict[Path, str] = {}
    for i, (path, wanted) in enumerate(uses.items()):
        name = names[path] = f"lora{i}"
        expected = _lora_layers(path)
        for role in (role for role in roles if role in wanted):
            try:
                with warnings.catch_warnings():  # several named adapters in one model are the point here
                    warnings.filterwarnings("ignore", "Already found a `peft_config` attribute", UserWarning)
                    pipe.load_lora_weights(str(path), adapter_name=name, load_into_transformer_2=role == "low")
            except Exception as e:  # diffusers and peft raise many kinds; all mean "does not fit"
                detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ValueError(f"OPENR2V_VACE_LORAS: the LoRA {path} does not fit this model "
                                 f"({_model_name(roles[role])}): {detail}") from None
            loaded = sum(1 for m in roles[role].modules() if name in getattr(m, "lora_A", {}))
            if loaded < expected:
                raise ValueError(f"OPENR2V_VACE_LORAS: the LoRA {path} does not fit this model: only {loaded} "
                                 f"of its {expected} layers found a place in {_model_name(roles[role])}")
    return names


def set_loras(pipe: Any, adapters: dict[Path, str], loras: tuple[LoraSpec, ...]) -> list[str]:
    """Activate ``loras`` (loaded by ``load_loras``) with their weights on each transformer they target, and
    switch the LoRA layers off on a transformer they do not: it then computes exactly as without them."""
    for role, transformer in experts(pipe).items():
        mine = [lora for lora in loras if lora.expert in ("both", role)]
        if not getattr(transformer, "peft_config", None):
            continue  # no LoRA was ever loaded into it
        if mine:
            transformer.enable_lora()
            transformer.set_adapters([adapters[lora.path] for lora in mine], [lora.weight for lora in mine])
        else:
            transformer.disable_lora()
    return [lora.label() for lora in loras]


def _lora_layers(path: Path) -> int:
    """How many layers the file adapts (its down / A matrices), read without loading the tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            keys = list(f.keys())
    except Exception as e:
        raise ValueError(f"OPENR2V_VACE_LORAS: {path} is not a readable safetensors file: {e}") from None
    return sum(1 for k in keys if k.endswith((".lora_down.weight", ".lora_A.weight")))


def _model_name(module: Any) -> str:
    config = module.config
    return f"{type(module).__name__} with {config.num_layers} layers of width " \
           f"{config.num_attention_heads * config.attention_head_dim}"


def cache_config(pipe: Any, name: str, threshold: float | None) -> tuple[Any, dict[str, Any]]:
    """diffusers' config of a block cache (None for ``none``), the knob (threshold, interval, range) by cache;
    with the notes that describe it."""
    if name == "none":
        return None, {"cache": "none", "cache_threshold": None, "cache_caveat": None}
    import torch
    from diffusers import FirstBlockCacheConfig, PyramidAttentionBroadcastConfig, TaylorSeerCacheConfig

    value = CACHES[name] if threshold is None else threshold
    assert value is not None
    if name == "first_block":
        config: Any = FirstBlockCacheConfig(threshold=float(value))
    elif name == "taylorseer":
        # Lite mode: the default hooks match no Wan module names; lite caches the blocks' outputs.
        config = TaylorSeerCacheConfig(cache_interval=max(1, round(value)), use_lite_mode=True,
                                       taylor_factors_dtype=torch.float32)
    else:  # pab: skip spatial attention on the middle of the schedule, reusing its last output
        config = PyramidAttentionBroadcastConfig(spatial_attention_block_skip_range=max(1, round(value)),
                                                 spatial_attention_timestep_skip_range=(100, 800),
                                                 current_timestep_callback=lambda: pipe.current_timestep)
    caveat = FIRST_BLOCK_CAVEAT if name == "first_block" else None
    return config, {"cache": name, "cache_threshold": value, "cache_caveat": caveat}


def set_cache(pipe: Any, config: Any) -> None:
    """This block cache (None: none) on every transformer, replacing the one there (its hooks removed)."""
    for transformer in experts(pipe).values():
        if transformer.is_cache_enabled:
            transformer.disable_cache()
        if config is not None:
            transformer.enable_cache(config)


def apply_compile(pipe: Any, mode: str) -> dict[str, Any]:
    """torch.compile of each transformer's repeated blocks (compiled on their first call)."""
    if mode == "off":
        return {}
    kwargs: dict[str, Any] = {"fullgraph": False}
    if mode == "eager":
        kwargs["backend"] = "eager"
    elif mode != "on":
        kwargs["mode"] = mode
    for transformer in experts(pipe).values():
        transformer.compile_repeated_blocks(**kwargs)
    return {"compile": mode}


@dataclass
class PassCounter:
    """Transformer forward passes by expert, and transformer blocks really computed (a block cache skips some)."""

    passes: dict[str, int] = field(default_factory=dict)
    blocks: int = 0

    def attach(self, pipe: Any) -> PassCounter:
        for role, transformer in experts(pipe).items():
            self.passes[role] = 0
            transformer.register_forward_pre_hook(lambda *_, role=role: self._count(role))
            for block in transformer.blocks:
                # The block's feed-forward runs only when the block is computed, not when a cache returns.
                block.ffn.register_forward_pre_hook(lambda *_: self._block())
        return self

    def _count(self, role: str) -> None:
        self.passes[role] += 1

    def _block(self) -> None:
        self.blocks += 1

    def snapshot(self) -> tuple[dict[str, int], int]:
        return dict(self.passes), self.blocks
