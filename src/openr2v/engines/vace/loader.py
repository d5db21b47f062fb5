"""Loading a WanVACEPipeline from a local folder, offline, with the device, memory and sampling options.

Never from a hub: the folder is passed to ``from_pretrained`` with ``local_files_only=True``, and
the Hugging Face offline switches are set first, so that no library quietly asks a hub for a
config, a tokenizer file or telemetry (a worker often has no route out, and must not need one).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from openr2v.engines.vace.options import EVERY_GPU, VaceOptions
from openr2v.engines.vace.sampling import Sampler
from openr2v.engines.vace.tuning import PassCounter, apply_compile, experts

__all__ = ["OFFLINE_ENV", "Loaded", "devices", "go_offline", "load_pipeline", "on_device"]

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DIFFUSERS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "HF_DATASETS_OFFLINE": "1"}
# Modules that copy HF_HUB_OFFLINE into a global when they are first imported.
_OFFLINE_GLOBALS = ("huggingface_hub.constants", "diffusers.utils.hub_utils", "diffusers.utils.constants")


@dataclass
class Loaded:
    pipe: Any  # diffusers.WanVACEPipeline
    device: str  # where the denoiser runs
    dtype: str
    sampler: Sampler  # switches the pipeline to a task's recipe
    notes: dict[str, Any] = field(default_factory=dict)  # at rest: the engine's own recipe
    counter: PassCounter = field(default_factory=PassCounter)  # transformer passes and blocks computed


def missing_packages() -> str | None:
    """None when torch and diffusers are importable, else how to install them (without importing them)."""
    from importlib.util import find_spec

    lacking = [name for name in ("torch", "diffusers", "transformers", "ftfy") if find_spec(name) is None]
    if lacking:
        return (f"the vace engine needs {', '.join(lacking)}: install the `vace` extra "
                "(pip install 'openr2v[vace]'; on CUDA machines a CUDA build of torch)")
    return None


def go_offline() -> None:
    """Set the offline switches, also in libraries already imported (they read them once, at import)."""
    os.environ.update(OFFLINE_ENV)
    for name in _OFFLINE_GLOBALS:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "HF_HUB_OFFLINE"):
            module.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]


def _device(opts: VaceOptions) -> str:
    import torch

    if opts.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"OPENR2V_VACE_DEVICE={opts.device}: torch sees no CUDA device here")
    return opts.device


def devices(opts: VaceOptions) -> list[str]:
    """Where to load a pipeline each: ``OPENR2V_VACE_DEVICES`` checked against the GPUs torch sees, else the
    one ``OPENR2V_VACE_DEVICE``. Raises ValueError naming the setting, before any weights are read."""
    if not opts.devices:
        return [_device(opts)]
    import torch

    setting = f"OPENR2V_VACE_DEVICES={','.join(opts.devices)}"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    seen = f"{count} CUDA device{'s' if count > 1 else ''} (cuda:0 to cuda:{count - 1})" if count else "no CUDA device"
    if opts.devices[0] in EVERY_GPU:
        if count == 0:
            raise ValueError(f"{setting}: torch sees no CUDA device here")
        return [f"cuda:{index}" for index in range(count)]
    out = []
    for device in opts.devices:
        if device.startswith("cuda"):
            device = device if ":" in device else "cuda:0"  # explicit: each thread selects its GPU by index
            if int(device.partition(":")[2]) >= count:
                raise ValueError(f"{setting}: {device} is not there, torch sees {seen}")
        out.append(device)
    return out


def on_device(device: str) -> contextlib.AbstractContextManager[Any]:
    """Make ``device`` the thread's current CUDA device (streams and allocations that take the current one)."""
    if not device.startswith("cuda:"):
        return contextlib.nullcontext()
    import torch

    return torch.cuda.device(device)


def _dtype(opts: VaceOptions, device: str) -> Any:
    import torch

    name = opts.dtype
    if name == "auto":
        # bf16 is what Wan's weights are trained and shipped in; CPUs run float32 fastest and exactly.
        name = "bfloat16" if device.startswith("cuda") else "float32"
    return getattr(torch, name)


def load_pipeline(opts: VaceOptions, device: str | None = None) -> Loaded:
    """The pipeline on ``device`` (default: ``OPENR2V_VACE_DEVICE``'s) with the memory options applied;
    raises ValueError on bad options."""
    reason = missing_packages()
    if reason:
        raise ValueError(reason)
    go_offline()
    device = device or _device(opts)
    with on_device(device):
        return _load(opts, device)


def _load(opts: VaceOptions, device: str) -> Loaded:
    started = time.perf_counter()
    import torch
    from diffusers import AutoencoderKLWan, WanVACEPipeline

    dtype = _dtype(opts, device)
    folder = str(opts.model)
    # The VAE stays float32, as in Wan's and diffusers' examples: bf16 decoding bands and blurs.
    vae = AutoencoderKLWan.from_pretrained(folder, subfolder="vae", dtype=torch.float32, local_files_only=True)
    pipe = WanVACEPipeline.from_pretrained(folder, vae=vae, dtype=dtype, local_files_only=True)
    for name in ("transformer", "transformer_2", "text_encoder", "vae"):
        module = getattr(pipe, name, None)
        if module is not None:
            module.eval()
    notes: dict[str, Any] = {"model": opts.model.name, "device": device, "dtype": str(dtype).removeprefix("torch."),
                             "offload": "none", "vae_tiling": opts.vae_tiling,
                             "experts": len(experts(pipe)), "boundary_ratio": pipe.config.get("boundary_ratio")}
    # Every recipe's LoRAs, schedulers and caches, before offloading hooks the modules; at rest, opts' own.
    sampler = Sampler(pipe, opts.choices())
    notes.update(sampler.apply(opts))
    if opts.offload != "none" and not device.startswith("cuda"):
        notes["offload"] = f"{opts.offload} ignored on {device}"
        pipe.to(device)
    elif opts.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
        notes["offload"] = "model"
    elif opts.offload == "group":
        pipe.enable_group_offload(onload_device=torch.device(device), offload_device=torch.device("cpu"),
                                  offload_type="leaf_level", use_stream=True)
        notes["offload"] = "group (leaf level, streams)"
    else:
        pipe.to(device)
    if opts.vae_tiling:
        pipe.vae.enable_tiling()
    counter = PassCounter().attach(pipe)  # before compiling: the blocks' hooks are traced with them
    notes.update(apply_compile(pipe, opts.compile))
    pipe.set_progress_bar_config(disable=True)  # the task's progress comes from the step callback
    notes["load_seconds"] = round(time.perf_counter() - started, 3)
    return Loaded(pipe=pipe, device=device, dtype=notes["dtype"], sampler=sampler, notes=notes, counter=counter)
