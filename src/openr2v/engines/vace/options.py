"""The vace engine's options, read from Settings and checked before anything heavy is imported."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from openr2v.config import Settings, parse_pairs
from openr2v.domain.models import REGISTRY, get_model
from openr2v.engines.vace.recipes import CACHES, RECIPES, SCHEDULERS, LoraSpec, parse_loras

T = TypeVar("T")

__all__ = ["COMPILE_MODES", "DEVICES", "DTYPES", "INTERPOLATIONS", "OFFLOADS", "VaceOptions", "parse_recipe_overrides"]

DTYPES = ("auto", "bfloat16", "float16", "float32")
OFFLOADS = ("none", "model", "group")
INTERPOLATIONS = ("blend", "nearest")
DEVICES = ("auto", "cpu", "cuda")  # plus "cuda:N"
EVERY_GPU = ("all", "cuda:all")  # OPENR2V_VACE_DEVICES: every CUDA device torch sees
COMPILE_MODES = ("off", "on", "max-autotune-no-cudagraphs", "max-autotune", "eager")


@dataclass(frozen=True)
class VaceOptions:
    """What the engine needs to know; see ``Settings`` (``vace_*``) for each field's meaning."""

    model: Path
    device: str = "auto"
    dtype: str = "auto"
    offload: str = "none"
    vae_tiling: bool = False
    max_area: int = 832 * 480
    steps: int = 50
    guidance_scale: float = 5.0
    flow_shift: float | None = None
    max_frames: int = 81
    label_template: str = "the {nth}{noun}"
    negative_prompt: str = ""
    interpolation: str = "blend"
    preset: str = "veryfast"
    recipe: str = "default"
    scheduler: str | None = None
    loras: tuple[LoraSpec, ...] = ()
    cache: str = "none"
    cache_threshold: float | None = None
    compile: str = "off"
    devices: tuple[str, ...] = ()  # several: one pipeline on each, a task's shots side by side; (): ``device``
    # Per API model name, the options its tasks render with (same weights, another recipe's sampling).
    overrides: Mapping[str, VaceOptions] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> VaceOptions:
        if settings.vace_model is None:
            raise ValueError("the vace engine needs OPENR2V_VACE_MODEL: the local folder of a VACE diffusers "
                             "checkpoint (see docs/engines/vace.md)")
        if settings.vace_recipe not in RECIPES:
            raise ValueError(f"OPENR2V_VACE_RECIPE={settings.vace_recipe!r}: use one of {', '.join(RECIPES)}")
        base = cls._with_recipe(settings, settings.vace_recipe)
        overrides = {}
        for model, name in parse_recipe_overrides(settings.vace_recipe_overrides).items():
            try:
                overrides[model] = cls._with_recipe(settings, name)
            except ValueError as e:
                raise ValueError(f"OPENR2V_VACE_RECIPE_OVERRIDES: {model}={name}: {e}") from None
        return base.replace(overrides=overrides) if overrides else base

    @classmethod
    def _with_recipe(cls, settings: Settings, name: str) -> VaceOptions:
        recipe = RECIPES[name]
        model = settings.vace_model
        assert model is not None

        def pick(value: T | None, default: T) -> T:  # an explicit setting wins over the recipe
            return default if value is None else value

        lora_dir = settings.vace_lora_dir or model / "loras"
        devices = tuple(d.strip() for d in settings.vace_devices.split(",") if d.strip())
        if devices and settings.vace_device != "auto":
            raise ValueError(f"OPENR2V_VACE_DEVICE={settings.vace_device} and OPENR2V_VACE_DEVICES="
                             f"{settings.vace_devices} are both set: give the devices in OPENR2V_VACE_DEVICES only "
                             "(OPENR2V_VACE_DEVICE is the one-device setting)")
        return cls(model=model, device=settings.vace_device, dtype=settings.vace_dtype,
                   offload=settings.vace_offload, vae_tiling=settings.vace_vae_tiling,
                   max_area=settings.vace_max_area, steps=pick(settings.vace_steps, recipe.steps),
                   guidance_scale=pick(settings.vace_guidance_scale, recipe.guidance_scale),
                   flow_shift=pick(settings.vace_flow_shift, recipe.flow_shift),
                   max_frames=settings.vace_max_frames, label_template=settings.vace_label_template,
                   negative_prompt=settings.vace_negative_prompt, interpolation=settings.vace_interpolation,
                   preset=settings.x264_preset, recipe=name,
                   scheduler=pick(settings.vace_scheduler, recipe.scheduler),
                   loras=parse_loras(pick(settings.vace_loras, recipe.loras), lora_dir),
                   cache=pick(settings.vace_cache, recipe.cache),
                   cache_threshold=pick(settings.vace_cache_threshold, recipe.cache_threshold),
                   compile=settings.vace_compile, devices=devices).checked()

    def for_model(self, model: str) -> VaceOptions:
        """The options a task of ``model`` renders with: its recipe override, else these."""
        return self.overrides.get(model, self)

    def choices(self) -> list[VaceOptions]:
        """Every sampling this engine may use (these options first): what the loaded pipeline must hold."""
        return [self, *self.overrides.values()]

    def replace(self, **changes: object) -> VaceOptions:
        return dataclasses.replace(self, **changes).checked()  # type: ignore[arg-type]

    def checked(self) -> VaceOptions:
        """Fail fast, naming the setting, before torch is imported or weights are read."""
        if not (self.model / "model_index.json").is_file():
            raise ValueError(f"OPENR2V_VACE_MODEL={self.model}: no model_index.json there; give the folder of a "
                             "diffusers-format checkpoint such as Wan2.1-VACE-1.3B-diffusers")
        if self.guidance_scale <= 0:
            raise ValueError(f"OPENR2V_VACE_GUIDANCE_SCALE={self.guidance_scale}: above 0 (1.0: no negative pass)")
        if self.scheduler is not None and self.scheduler not in SCHEDULERS:
            raise ValueError(f"OPENR2V_VACE_SCHEDULER={self.scheduler!r}: use one of {', '.join(SCHEDULERS)}")
        if self.cache not in CACHES:
            raise ValueError(f"OPENR2V_VACE_CACHE={self.cache!r}: use one of {', '.join(CACHES)}")
        if self.cache_threshold is not None and self.cache_threshold <= 0:
            raise ValueError(f"OPENR2V_VACE_CACHE_THRESHOLD={self.cache_threshold}: above 0")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"OPENR2V_VACE_COMPILE={self.compile!r}: use one of {', '.join(COMPILE_MODES)}")
        for lora in self.loras:
            if not lora.path.is_file():
                raise ValueError(f"OPENR2V_VACE_LORAS: no LoRA file {lora.path} (recipe {self.recipe!r}; relative "
                                 "names are read from OPENR2V_VACE_LORA_DIR, default <OPENR2V_VACE_MODEL>/loras)")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ValueError(f"OPENR2V_VACE_DEVICE={self.device!r}: use auto, cpu, cuda or cuda:N")
        _check_devices(self.devices)
        for name, value, allowed in (("DTYPE", self.dtype, DTYPES), ("OFFLOAD", self.offload, OFFLOADS),
                                     ("INTERPOLATION", self.interpolation, INTERPOLATIONS)):
            if value not in allowed:
                raise ValueError(f"OPENR2V_VACE_{name}={value!r}: use one of {', '.join(allowed)}")
        for model, override in self.overrides.items():
            if get_model(model) is None:
                raise ValueError(f"OPENR2V_VACE_RECIPE_OVERRIDES: unknown model {model!r}; models: "
                                 f"{', '.join(REGISTRY)}")
            if override.overrides:
                raise ValueError(f"OPENR2V_VACE_RECIPE_OVERRIDES: {model}'s options have overrides of their own")
            override.checked()
        if self.max_area < 16 * 16:
            raise ValueError(f"OPENR2V_VACE_MAX_AREA={self.max_area}: at least 256 (16x16) pixels")
        if self.steps < 1:
            raise ValueError(f"OPENR2V_VACE_STEPS={self.steps}: at least 1")
        if self.max_frames < 5 or self.max_frames % 4 != 1:
            raise ValueError(f"OPENR2V_VACE_MAX_FRAMES={self.max_frames}: a number of the form 4k+1, at least 5")
        try:
            self.label_template.format(noun="person", nth="first ", n=1, label="character1")
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"OPENR2V_VACE_LABEL_TEMPLATE={self.label_template!r}: {e!r}; fields are {{noun}}, "
                             "{nth}, {n} and {label}") from None
        return self


def _check_devices(devices: tuple[str, ...]) -> None:
    """OPENR2V_VACE_DEVICES by its syntax; whether torch sees those GPUs is checked when they are loaded."""
    given = ",".join(devices)
    for device in devices:
        if device not in EVERY_GPU and device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):
            raise ValueError(f"OPENR2V_VACE_DEVICES={given}: {device!r} is not a device; give cpu, cuda or cuda:N, "
                             "comma-separated, or all (every GPU torch sees)")
    if len(devices) > 1 and any(device in EVERY_GPU for device in devices):
        raise ValueError(f"OPENR2V_VACE_DEVICES={given}: `all` stands alone (every GPU torch sees)")
    gpus = [device if ":" in device else "cuda:0" for device in devices if device.startswith("cuda")]
    twice = sorted({gpu for gpu in gpus if gpus.count(gpu) > 1})
    if twice:
        raise ValueError(f"OPENR2V_VACE_DEVICES={given}: {', '.join(twice)} named twice (cuda is cuda:0); each GPU "
                         "holds one copy of the weights")


def parse_recipe_overrides(text: str) -> dict[str, str]:
    """``model=recipe`` pairs, comma-separated (OPENR2V_VACE_RECIPE_OVERRIDES); raises ValueError naming it.
    The model names are checked against the registry with the options (``VaceOptions.checked``)."""
    pairs = parse_pairs(text, "OPENR2V_VACE_RECIPE_OVERRIDES", "model=recipe")
    for model, recipe in pairs.items():
        if recipe not in RECIPES:
            raise ValueError(f"OPENR2V_VACE_RECIPE_OVERRIDES: {model}={recipe}: unknown recipe; use one of "
                             f"{', '.join(RECIPES)}")
    return pairs
