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

    .venv/bin/python bench/vace.py --model /models/Wan2.1-VACE-14B-diffusers --recipes default,fast \
        [--lora-dir /models/loras] [--size 832*480] [--duration 5] [--offload none|model|group] [--repeat 2]
    .venv/bin/python bench/vace.py --tiny     # the tests' tiny random model and a tiny Wan-layout LoRA: any CPU
"""

from __future__ import annotations

import argparse
import json
import resource
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


def _job(workdir: Path, width: int, height: int, duration: int) -> Any:
    from openr2v.domain.prompt import plan_prompt
    from openr2v.domain.request import GenerationRequest
    from openr2v.engines.base import RenderJob, ResolvedReference
    from openr2v.media.probe import probe

    refs = []
    for label, name in FILES:
        info = probe(ASSETS / name)
        refs.append(ResolvedReference(label=label, kind=info.kind, path=ASSETS / name, info=info))
    request = GenerationRequest(model="wan2.6-r2v", prompt=PROMPT, size=(width, height), duration=duration,
                                audio=True, shot_type="multi", watermark=True, seed=7)
    plan = plan_prompt(PROMPT, [label for label, _ in FILES], duration, "multi", 7).as_dict()
    workdir.mkdir(parents=True, exist_ok=True)
    return RenderJob(task_id="bench", request=request, references=refs, width=width, height=height,
                     duration=duration, fps=30, audio=True, watermark=True, seed=7, workdir=workdir, plan=plan)


def _options(args: argparse.Namespace, model: Path, recipe: str, lora: Path | None) -> Any:
    from openr2v.config import Settings
    from openr2v.engines.vace.options import VaceOptions
    from openr2v.engines.vace.recipes import RECIPES

    explicit = {key: value for key, value in (("vace_steps", args.steps), ("vace_cache", args.cache),
                                              ("vace_cache_threshold", args.cache_threshold)) if value is not None}
    if lora is not None and RECIPES[recipe].loras:  # --tiny: the recipes' 14B LoRAs do not fit the toy
        explicit["vace_loras"] = str(lora)
    settings = Settings(vace_model=model, vace_recipe=recipe, vace_lora_dir=args.lora_dir, vace_device=args.device,
                        vace_dtype=args.dtype, vace_offload=args.offload, vace_vae_tiling=args.vae_tiling,
                        vace_max_area=args.max_area, vace_max_frames=args.max_frames, vace_compile=args.compile,
                        x264_preset=args.preset, **explicit)
    return VaceOptions.from_settings(settings)


def run(args: argparse.Namespace, model: Path, lora: Path | None = None) -> list[dict[str, Any]]:
    import torch

    from openr2v.engines.vace.engine import VaceEngine

    width, height = (int(v) for v in args.size.split("*"))
    results = []
    for recipe in args.recipes.split(","):
        opts = _options(args, model, recipe, lora)
        engine = VaceEngine(opts)
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.repeat):
                timed = engine.loaded.pipe = TimedPipe(engine.loaded.pipe if i == 0 else engine.loaded.pipe.pipe)
                if torch.cuda.is_available():
                    torch.cuda.reset_peak_memory_stats()
                start = time.perf_counter()
                result = engine.render(_job(Path(tmp) / f"run{i}", width, height, args.duration), lambda p: None,
                                       lambda: False)
                total = time.perf_counter() - start
                notes = result.notes
                passes = sum(notes["transformer_passes"].values())
                results.append({
                    "recipe": recipe, "run": i + 1, "model": model.name, "device": notes["device"],
                    "dtype": notes["dtype"], "offload": notes["offload"], "size": f"{width}*{height}",
                    "internal_size": "{}*{}".format(*notes["internal_size"]), "duration_s": args.duration,
                    "shots": len(notes["shots"]), "calls": sum(s["calls"] for s in notes["shots"]),
                    "model_frames": timed.frames, "steps": opts.steps, "guidance_scale": opts.guidance_scale,
                    "scheduler": notes["scheduler"], "loras": notes["loras"], "cache": notes.get("cache", "none"),
                    "compile": opts.compile, "denoising_steps": notes["denoising_steps"],
                    "transformer_passes": passes, "passes_by_expert": notes["transformer_passes"],
                    "steps_per_output_s": round(notes["denoising_steps"] / args.duration, 2),
                    "passes_per_output_s": round(passes / args.duration, 2),
                    "blocks_computed": notes["blocks_computed"],
                    "load_s": notes["load_seconds"], "seconds_per_step": notes["seconds_per_step"],
                    "total_s": round(total, 2), "pipeline_s": round(timed.seconds, 2),
                    "rest_s": round(total - timed.seconds, 2),
                    "s_per_rendered_s": round(total / args.duration, 3),
                    "pipeline_s_per_rendered_s": round(timed.seconds / args.duration, 3),
                    "stages_s": notes["timings_seconds"],
                    "peak_gpu_gb": (round(torch.cuda.max_memory_allocated() / 2**30, 2)
                                    if torch.cuda.is_available() else None),
                    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                })
                print(json.dumps(results[-1]), flush=True)
        del engine
    _summary(results)
    return results


def _summary(results: list[dict[str, Any]]) -> None:
    """Each recipe's last run against the first recipe's: passes and pipeline seconds as fractions."""
    last = {r["recipe"]: r for r in results}
    base = next(iter(last.values()))
    for recipe, r in last.items():
        print(json.dumps({"recipe": recipe, "baseline": base["recipe"],
                          "passes": f"{r['transformer_passes']}/{base['transformer_passes']}",
                          "passes_fraction": round(r["transformer_passes"] / base["transformer_passes"], 4),
                          "blocks_fraction": round(r["blocks_computed"] / max(base["blocks_computed"], 1), 4),
                          "pipeline_s_fraction": round(r["pipeline_s"] / max(base["pipeline_s"], 1e-9), 4)}),
              flush=True)


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
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--offload", default="none", choices=("none", "model", "group"))
    parser.add_argument("--vae-tiling", action="store_true")
    parser.add_argument("--preset", default="veryfast", help="x264 preset")
    parser.add_argument("--repeat", type=int, default=None, help="runs per recipe (default 2; --tiny: 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's; --tiny: 1)")
    args = parser.parse_args()
    if args.tiny == (args.model is not None):
        parser.error("give exactly one of --model and --tiny")
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
