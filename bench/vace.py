"""Count and time the vace engine's work for each recipe: transformer passes, steps, peak memory, seconds.

Renders the four-reference demo scene (assets/demo, two shots) through ``VaceEngine`` as a worker
would, once per recipe (``--recipes default,fast``), and prints per run: the recipe's steps and
guidance, denoising steps and transformer forward passes (counted by hooks on the transformer, and
on each expert of a Wan2.2 model) in all and per output second, transformer blocks really computed
(a block cache skips some), seconds (all, pipeline, the engine around it: casting, sound, 30 fps,
scaling, encoding), seconds per denoising step, peak GPU memory on CUDA and the process's peak RSS.
Last, each recipe's passes and seconds as a fraction of the first recipe's (the baseline, measured
in the same run). With ``--tiny`` the counts are what matters (the seconds are a CPU toy's); with
``--model`` on a GPU the seconds are the figures. The first run of a recipe includes warm-up (and
compiling with OPENR2V_VACE_COMPILE): use ``--repeat 2``.

``--devices cuda:0,cuda:1,cuda:2,cuda:3`` (OPENR2V_VACE_DEVICES; ``cpu,cpu`` here) renders each recipe
twice over: on the first of those devices alone (the baseline), then on all of them, shots side by
side (a 4-shot scene unless ``--shots``). Besides the above it prints the transformer passes on the
busiest device (the critical path: with 4 shots on 4 devices, a quarter of the baseline's), each
device's busy seconds in the pipeline, the speed-up in wall-clock seconds against the baseline
measured in the same run, and whether both renders are the same bytes.

    .venv/bin/python bench/vace.py --model /models/Wan2.1-VACE-14B-diffusers --recipes default,fast \
        [--lora-dir /models/loras] [--size 832*480] [--duration 5] [--offload none|model|group] [--repeat 2]
    .venv/bin/python bench/vace.py --tiny     # the tests' tiny random model and a tiny Wan-layout LoRA: any CPU
    .venv/bin/python bench/vace.py --model /models/Wan2.1-VACE-14B-diffusers --recipes fast \
        --devices cuda:0,cuda:1,cuda:2,cuda:3 --repeat 2
    .venv/bin/python bench/vace.py --tiny --recipes fast --devices cpu,cpu
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.engines.tiny_vace, for --tiny
ASSETS = ROOT / "assets" / "demo"
PROMPT = ("Shot 1 [0-2s]: Wide shot, character2 sits on a chair by the window next to character4, holding "
          "character3. Shot 2 [2-5s]: Close-up, character1 says to character2: 'that sounds great'.")
# Shots for --shots other than 2, in turn, over equal parts of the duration.
SHOT_TEXTS = ("Wide shot, character2 sits on a chair by the window next to character4.",
              "Close-up, character1 smiles at character2.",
              "Medium shot, character2 holds character3 up to the light.",
              "The camera pans left to character1 by the window.")
FILES = [("character1", "role1.mp4"), ("character2", "role2.mp4"), ("character3", "object3.png"),
         ("character4", "background4.png")]


class TimedPipe:
    """The pipeline with a stopwatch around each call."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.seconds = 0.0
        self.frames = 0

    def __call__(self, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = self.pipe(**kwargs)
        self.seconds += time.perf_counter() - start
        self.frames += kwargs["num_frames"]
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipe, name)


def scene_prompt(shots: int, duration: int) -> str:
    """The demo scene (2 shots) or ``shots`` equal shots of the demo's references."""
    if shots == 2:
        return PROMPT
    bounds = [round(duration * k / shots, 2) for k in range(shots + 1)]
    return " ".join(f"Shot {k + 1} [{bounds[k]:g}-{bounds[k + 1]:g}s]: {SHOT_TEXTS[k % len(SHOT_TEXTS)]}"
                    for k in range(shots))


def _job(workdir: Path, width: int, height: int, duration: int, prompt: str) -> Any:
    from openr2v.domain.prompt import plan_prompt
    from openr2v.domain.request import GenerationRequest
    from openr2v.engines.base import RenderJob, ResolvedReference
    from openr2v.media.probe import probe

    refs = []
    for label, name in FILES:
        info = probe(ASSETS / name)
        refs.append(ResolvedReference(label=label, kind=info.kind, path=ASSETS / name, info=info))
    request = GenerationRequest(model="wan2.6-r2v", prompt=prompt, size=(width, height), duration=duration,
                                audio=True, shot_type="multi", watermark=True, seed=7)
    plan = plan_prompt(prompt, [label for label, _ in FILES], duration, "multi", 7).as_dict()
    workdir.mkdir(parents=True, exist_ok=True)
    return RenderJob(task_id="bench", request=request, references=refs, width=width, height=height,
                     duration=duration, fps=30, audio=True, watermark=True, seed=7, workdir=workdir, plan=plan)


def _options(args: argparse.Namespace, model: Path, recipe: str, lora: Path | None, device: str,
             devices: str = "") -> Any:
    from openr2v.config import Settings
    from openr2v.engines.vace.options import VaceOptions
    from openr2v.engines.vace.recipes import RECIPES

    explicit = {key: value for key, value in (("vace_steps", args.steps), ("vace_cache", args.cache),
                                              ("vace_cache_threshold", args.cache_threshold)) if value is not None}
    if lora is not None and RECIPES[recipe].loras:  # --tiny: the recipes' 14B LoRAs do not fit the toy
        explicit["vace_loras"] = str(lora)
    settings = Settings(vace_model=model, vace_recipe=recipe, vace_lora_dir=args.lora_dir, vace_device=device,
                        vace_devices=devices,
                        vace_dtype=args.dtype, vace_offload=args.offload, vace_vae_tiling=args.vae_tiling,
                        vace_max_area=args.max_area, vace_max_frames=args.max_frames, vace_compile=args.compile,
                        x264_preset=args.preset, **explicit)
    return VaceOptions.from_settings(settings)


def _setups(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(label, OPENR2V_VACE_DEVICE, OPENR2V_VACE_DEVICES) to render each recipe with."""
    if not args.devices:
        return [("one device", args.device, "")]
    first = args.devices.split(",")[0]
    return [("one device", "cuda" if first in ("all", "cuda:all") else first, ""), ("devices", "auto", args.devices)]


def run(args: argparse.Namespace, model: Path, lora: Path | None = None) -> list[dict[str, Any]]:
    import torch

    from openr2v.engines.vace.engine import VaceEngine

    width, height = (int(v) for v in args.size.split("*"))
    prompt = scene_prompt(args.shots, args.duration)
    results = []
    for recipe in args.recipes.split(","):
        for setup, device, devices in _setups(args):
            opts = _options(args, model, recipe, lora, device, devices)
            engine = VaceEngine(opts)  # one setup's weights at a time: the baseline's GPU is also a device's
            timers = [TimedPipe(loaded.pipe) for loaded in engine.pipelines]
            for loaded, timer in zip(engine.pipelines, timers, strict=True):
                loaded.pipe = timer
            with tempfile.TemporaryDirectory() as tmp:
                for i in range(args.repeat):
                    for timer in timers:
                        timer.seconds, timer.frames = 0.0, 0
                    if torch.cuda.is_available():
                        for index in range(torch.cuda.device_count()):
                            torch.cuda.reset_peak_memory_stats(index)
                    start = time.perf_counter()
                    result = engine.render(_job(Path(tmp) / f"run{i}", width, height, args.duration, prompt),
                                           lambda p: None, lambda: False)
                    total = time.perf_counter() - start
                    results.append(_row(args, model, recipe, setup, opts, result, timers, total, i, width, height))
                    print(json.dumps(results[-1]), flush=True)
            del engine
    _summary(results)
    if args.devices:
        _devices_summary(results)
    return results


def _row(args: argparse.Namespace, model: Path, recipe: str, setup: str, opts: Any, result: Any,
         timers: list[TimedPipe], total: float, i: int, width: int, height: int) -> dict[str, Any]:
    import torch

    notes = result.notes
    passes = sum(notes["transformer_passes"].values())
    pipeline_s = sum(timer.seconds for timer in timers)
    busiest = max(notes["device_work"], key=lambda w: w["transformer_passes"])
    return {
        "recipe": recipe, "setup": setup, "run": i + 1, "model": model.name, "device": notes["device"],
        "devices": notes["devices"], "dtype": notes["dtype"], "offload": notes["offload"], "size": f"{width}*{height}",
        "internal_size": "{}*{}".format(*notes["internal_size"]), "duration_s": args.duration,
        "shots": len(notes["shots"]), "calls": sum(s["calls"] for s in notes["shots"]),
        "model_frames": sum(timer.frames for timer in timers), "steps": opts.steps,
        "guidance_scale": opts.guidance_scale,
        "scheduler": notes["scheduler"], "loras": notes["loras"], "cache": notes.get("cache", "none"),
        "compile": opts.compile, "denoising_steps": notes["denoising_steps"],
        "transformer_passes": passes, "passes_by_expert": notes["transformer_passes"],
        # The critical path: the passes of the device that did the most (all of them on one device).
        "busiest_device_passes": busiest["transformer_passes"],
        "passes_by_device": [w["transformer_passes"] for w in notes["device_work"]],
        "shots_by_device": [w["shots"] for w in notes["device_work"]],
        "steps_per_output_s": round(notes["denoising_steps"] / args.duration, 2),
        "passes_per_output_s": round(passes / args.duration, 2),
        "blocks_computed": notes["blocks_computed"],
        "load_s": notes["load_seconds"], "seconds_per_step": notes["seconds_per_step"],
        "total_s": round(total, 2), "pipeline_s": round(pipeline_s, 2),
        "pipeline_s_by_device": [round(timer.seconds, 2) for timer in timers],
        "rest_s": round(total - max(timer.seconds for timer in timers), 2),
        "s_per_rendered_s": round(total / args.duration, 3),
        "pipeline_s_per_rendered_s": round(pipeline_s / args.duration, 3),
        "stages_s": notes["timings_seconds"],
        "peak_gpu_gb": ([round(torch.cuda.max_memory_allocated(index) / 2**30, 2)
                         for index in range(torch.cuda.device_count())] if torch.cuda.is_available() else None),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "sha256": hashlib.sha256(result.path.read_bytes()).hexdigest()[:16],
    }


def _summary(results: list[dict[str, Any]]) -> None:
    """Each recipe's last run against the first recipe's (one device): passes and pipeline seconds as fractions."""
    last = {r["recipe"]: r for r in results if r["setup"] == "one device"}
    base = next(iter(last.values()))
    for recipe, r in last.items():
        print(json.dumps({"recipe": recipe, "baseline": base["recipe"],
                          "passes": f"{r['transformer_passes']}/{base['transformer_passes']}",
                          "passes_fraction": round(r["transformer_passes"] / base["transformer_passes"], 4),
                          "blocks_fraction": round(r["blocks_computed"] / max(base["blocks_computed"], 1), 4),
                          "pipeline_s_fraction": round(r["pipeline_s"] / max(base["pipeline_s"], 1e-9), 4)}),
              flush=True)


def _devices_summary(results: list[dict[str, Any]]) -> None:
    """Per recipe: the devices against one device, both measured in this run (median over --repeat)."""
    for recipe in dict.fromkeys(r["recipe"] for r in results):
        one = [r for r in results if r["recipe"] == recipe and r["setup"] == "one device"]
        many = [r for r in results if r["recipe"] == recipe and r["setup"] == "devices"]
        one_s, many_s = (statistics.median(r["total_s"] for r in rows) for rows in (one, many))
        print(json.dumps({
            "recipe": recipe, "devices": many[-1]["devices"], "baseline": one[-1]["devices"],
            "shots": many[-1]["shots"], "shots_by_device": many[-1]["shots_by_device"],
            "busiest_device_passes": f"{many[-1]['busiest_device_passes']}/{one[-1]['busiest_device_passes']}",
            "critical_path_fraction": round(many[-1]["busiest_device_passes"] / one[-1]["busiest_device_passes"], 4),
            "total_s": {"one device": one_s, "devices": many_s},
            "speedup": round(one_s / max(many_s, 1e-9), 3),
            "same_bytes": {r["sha256"] for r in one + many} == {one[-1]["sha256"]},
        }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="folder of a VACE diffusers checkpoint (Wan2.1 or Wan2.2)")
    parser.add_argument("--recipes", default="default,fast", help="comma-separated OPENR2V_VACE_RECIPE names")
    parser.add_argument("--lora-dir", type=Path, default=None, help="where the recipes' LoRA files are "
                        "(default <model>/loras)")
    parser.add_argument("--cache", default=None, help="OPENR2V_VACE_CACHE for every recipe")
    parser.add_argument("--cache-threshold", type=float, default=None)
    parser.add_argument("--compile", default="off", help="OPENR2V_VACE_COMPILE")
    parser.add_argument("--tiny", action="store_true", help="build the tests' tiny random model and time that")
    parser.add_argument("--size", default=None, help="contract size W*H (default 832*480; --tiny: 1280*720)")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None, help="denoising steps for every recipe (default: each "
                        "recipe's)")
    parser.add_argument("--max-area", type=int, default=None, help="render area (default 832*480; --tiny: 48*32)")
    parser.add_argument("--max-frames", type=int, default=81)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--devices", default="", help="OPENR2V_VACE_DEVICES (cuda:0,cuda:1,... or cpu,cpu): render "
                        "on the first alone, then on all, and compare")
    parser.add_argument("--shots", type=int, default=None, help="shots in the scene (default 2, the demo's; "
                        "with --devices 4)")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--offload", default="none", choices=("none", "model", "group"))
    parser.add_argument("--vae-tiling", action="store_true")
    parser.add_argument("--preset", default="veryfast", help="x264 preset")
    parser.add_argument("--repeat", type=int, default=None, help="runs per recipe (default 2; --tiny: 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's; --tiny: 1)")
    args = parser.parse_args()
    if args.tiny == (args.model is not None):
        parser.error("give exactly one of --model and --tiny")
    args.shots = args.shots or (4 if args.devices else 2)
    args.size = args.size or ("1280*720" if args.tiny else "832*480")
    args.repeat = args.repeat or (1 if args.tiny else 2)
    args.max_area = args.max_area or (48 * 32 if args.tiny else 832 * 480)
    import torch

    threads = args.threads or (1 if args.tiny else None)
    if threads:
        torch.set_num_threads(threads)
    if args.model is not None:
        run(args, args.model)
        return
    from tests.engines.tiny_vace import build_tiny_vace, write_wan_lora

    with tempfile.TemporaryDirectory() as tmp:
        lora = write_wan_lora(Path(tmp) / "tiny_distill.safetensors", scale=0.3)
        run(args, build_tiny_vace(Path(tmp) / "tiny-wan-vace"), lora)


if __name__ == "__main__":
    main()
