"""The recipe applied to a loaded pipeline: scheduler and shift, LoRAs, block cache, compile; pass counters.

Everything here goes through diffusers' own machinery: ``load_lora_weights`` (which converts LoRAs
in the original Wan key layout), ``set_adapters``, ``enable_cache`` with its cache configs, and
``compile_repeated_blocks``. A two-expert (Wan2.2) pipeline gets the cache and compile on both
transformers, and each LoRA where its ``high:`` / ``low:`` prefix says (both by default).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from openr2v.engines.vace.recipes import CACHES, LoraSpec

__all__ = ["PassCounter", "apply_cache", "apply_compile", "apply_scheduler", "experts", "load_loras"]

log = logging.getLogger("openr2v.engines.vace")
FIRST_BLOCK_CAVEAT = ("diffusers 0.42's First Block Cache keeps the residual of the later blocks with VACE's hints in "
                      "it, and the model adds the hints again on the steps it skips: references weigh more there")
_FLOW_MULTISTEP = {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}


def experts(pipe: Any) -> dict[str, Any]:
    """The pipeline's transformers by role: ``high`` (``transformer``) and, on Wan2.2, ``low`` (``transformer_2``)."""
    found = {"high": getattr(pipe, "transformer", None), "low": getattr(pipe, "transformer_2", None)}
    return {role: module for role, module in found.items() if module is not None}


def apply_scheduler(pipe: Any, name: str | None, shift: float | None) -> dict[str, Any]:
    """Another scheduler class and/or shift, carrying the checkpoint's config (and its shift unless given)."""
    import diffusers

    if name is None and shift is None:
        return {}
    config = dict(pipe.scheduler.config)
    old_shift = config.get("flow_shift", config.get("shift"))
    cls = getattr(diffusers, name) if name else type(pipe.scheduler)
    shift = old_shift if shift is None else shift
    extra: dict[str, Any] = {}
    if cls.__name__ != "FlowMatchEulerDiscreteScheduler":  # Wan samples flow matching: multistep ones in flow mode
        extra.update(_FLOW_MULTISTEP, flow_shift=shift)
    else:
        extra["shift"] = shift
    pipe.scheduler = cls.from_config(config, **{k: v for k, v in extra.items() if v is not None})
    return {"scheduler": cls.__name__, "flow_shift": shift}


def load_loras(pipe: Any, loras: tuple[LoraSpec, ...]) -> list[str]:
    """Load and weight each LoRA; a file that does not fit the model raises ValueError naming it."""
    from importlib.util import find_spec

    if loras and find_spec("peft") is None:
        raise ValueError("OPENR2V_VACE_LORAS: loading LoRAs needs peft; install the `vace` extra")
    roles = experts(pipe)
    adapters: dict[str, tuple[list[str], list[float]]] = {role: ([], []) for role in roles}
    for i, lora in enumerate(loras):
        targets = list(roles) if lora.expert == "both" else [lora.expert]
        if any(role not in roles for role in targets):
            raise ValueError(f"OPENR2V_VACE_LORAS: {lora.path} is marked {lora.expert}: (one expert of a two-expert "
                             "Wan2.2 model), but this model has one transformer")
        expected = _lora_layers(lora)
        for role in targets:
            name = f"lora{i}"
            try:
                pipe.load_lora_weights(str(lora.path), adapter_name=name, load_into_transformer_2=role == "low")
            except Exception as e:  # diffusers and peft raise many kinds; all mean "does not fit"
                detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ValueError(f"OPENR2V_VACE_LORAS: the LoRA {lora.path} does not fit this model "
                                 f"({_model_name(roles[role])}): {detail}") from None
            loaded = sum(1 for m in roles[role].modules() if name in getattr(m, "lora_A", {}))
            if loaded < expected:
                raise ValueError(f"OPENR2V_VACE_LORAS: the LoRA {lora.path} does not fit this model: only {loaded} "
                                 f"of its {expected} layers found a place in {_model_name(roles[role])}")
            adapters[role][0].append(name)
            adapters[role][1].append(lora.weight)
    for role, (names, weights) in adapters.items():
        if names:
            roles[role].set_adapters(names, weights)
    return [lora.label() for lora in loras]


def _lora_layers(lora: LoraSpec) -> int:
    """How many layers the file adapts (its down / A matrices), read without loading the tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(lora.path), framework="pt") as f:
            keys = list(f.keys())
    except Exception as e:
        raise ValueError(f"OPENR2V_VACE_LORAS: {lora.path} is not a readable safetensors file: {e}") from None
    return sum(1 for k in keys if k.endswith((".lora_down.weight", ".lora_A.weight")))


def _model_name(module: Any) -> str:
    config = module.config
    return f"{type(module).__name__} with {config.num_layers} layers of width " \
           f"{config.num_attention_heads * config.attention_head_dim}"


def apply_cache(pipe: Any, name: str, threshold: float | None) -> dict[str, Any]:
    """diffusers' block cache on every transformer; the knob (threshold, interval, range) by cache."""
    if name == "none":
        return {}
    import torch
    from diffusers import FirstBlockCacheConfig, PyramidAttentionBroadcastConfig, TaylorSeerCacheConfig

    value = CACHES[name] if threshold is None else threshold
    assert value is not None
    for transformer in experts(pipe).values():
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
        transformer.enable_cache(config)
    notes: dict[str, Any] = {"cache": name, "cache_threshold": value}
    if name == "first_block":
        log.warning("OPENR2V_VACE_CACHE=first_block: %s", FIRST_BLOCK_CAVEAT)
        notes["cache_caveat"] = FIRST_BLOCK_CAVEAT
    return notes


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
