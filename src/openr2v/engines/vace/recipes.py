"""Named sampling recipes (steps, guidance, shift, scheduler, LoRAs, block cache) and the LoRA list syntax.

A recipe is a starting point named once (``OPENR2V_VACE_RECIPE``); every setting given explicitly
wins over the recipe's. Sources and measured pass counts: docs/engines/vace.md, "Recipes".
No torch here: these are checked before anything heavy is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["CACHES", "EXPERTS", "RECIPES", "SCHEDULERS", "LoraSpec", "Recipe", "parse_loras"]

# Schedulers Wan's flow-matching checkpoints sample with (the multistep ones in their flow mode).
SCHEDULERS = ("UniPCMultistepScheduler", "FlowMatchEulerDiscreteScheduler", "DPMSolverMultistepScheduler")
# Block caches of diffusers 0.42 that act on WanVACETransformer3DModel, and their knob's default.
CACHES: dict[str, float | None] = {"none": None, "first_block": 0.05, "taylorseer": 2, "pab": 2}
EXPERTS = ("both", "high", "low")  # which transformer of a two-expert model a LoRA goes into


@dataclass(frozen=True)
class Recipe:
    steps: int
    guidance_scale: float
    flow_shift: float | None = None  # None: the checkpoint's
    scheduler: str | None = None  # None: the checkpoint's
    loras: str = ""  # the OPENR2V_VACE_LORAS syntax, file names under OPENR2V_VACE_LORA_DIR
    cache: str = "none"
    cache_threshold: float | None = None


RECIPES: dict[str, Recipe] = {
    # Wan's own VACE sampling: 50 steps, classifier-free guidance 5 (two transformer passes a step).
    "default": Recipe(steps=50, guidance_scale=5.0),
    # lightx2v's step- and CFG-distilled Wan2.1-T2V-14B as a LoRA: 4 steps, no CFG, shift 5.
    "fast": Recipe(steps=4, guidance_scale=1.0, flow_shift=5.0, scheduler="FlowMatchEulerDiscreteScheduler",
                   loras="wan2.1_t2v_14b_lora_rank64_lightx2v_4step.safetensors"),
    # Kijai's CausVid LoRA (extracted from lightx2v's CausVid 14B) at half strength: 8 steps, no CFG.
    "causvid": Recipe(steps=8, guidance_scale=1.0, flow_shift=8.0, scheduler="UniPCMultistepScheduler",
                      loras="Wan21_CausVid_14B_T2V_lora_rank32.safetensors:0.5"),
    # No LoRA: Wan's sampling with diffusers' TaylorSeer computing every other step and extrapolating between.
    # (Not First Block Cache: in diffusers 0.42 it counts VACE's hints twice on the steps it skips.)
    "cached": Recipe(steps=50, guidance_scale=5.0, cache="taylorseer", cache_threshold=2),
}


@dataclass(frozen=True)
class LoraSpec:
    path: Path
    weight: float = 1.0
    expert: str = "both"

    def label(self) -> str:
        prefix = "" if self.expert == "both" else f"{self.expert}:"
        return f"{prefix}{self.path.name}:{self.weight:g}"


def parse_loras(text: str, folder: Path) -> tuple[LoraSpec, ...]:
    """``[high:|low:]path[:weight]``, comma-separated; relative paths under ``folder``. Raises ValueError."""
    specs = []
    for item in (part.strip() for part in text.split(",")):
        if not item or item.lower() == "none":
            continue
        expert = "both"
        head, sep, tail = item.partition(":")
        if sep and head in EXPERTS:
            expert, item = head, tail
        path, weight = item, 1.0
        stem, sep, tail = item.rpartition(":")
        if sep:
            try:
                path, weight = stem, float(tail)
            except ValueError:
                pass  # a colon inside the path
        file = Path(path).expanduser()
        specs.append(LoraSpec(file if file.is_absolute() else folder / file, weight, expert))
    return tuple(specs)
