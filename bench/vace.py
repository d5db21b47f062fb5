"""Time the vace engine on a model folder: seconds per denoising step and per rendered second.

Renders the wan2.6-r2v guide's four-reference scene (assets/demo) through ``VaceEngine`` as a worker would,
and splits the wall clock into the pipeline's calls (text encoding, denoising, VAE decoding) and
everything else the engine does around them (casting and cut-outs, soundtrack, 16 to 30 fps,
scaling, watermark, H.264 encoding), which is the baseline measured in the same run: what a
render costs on top of the model. Printed per run: seconds per denoising step (median), seconds
per rendered second (all, pipeline, rest), model frames rendered, peak GPU memory on CUDA, and
the process's peak RSS. The first run includes warm-up (CUDA kernels, caches); use --repeat 2.

    .venv/bin/python bench/vace.py --model /models/Wan2.1-VACE-1.3B-diffusers [--size 832*480] \
        [--duration 5] [--steps 50] [--max-area 399360] [--offload none|model|group] [--repeat 2]
    .venv/bin/python bench/vace.py --tiny     # builds the tests' tiny random model: runs on any CPU
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


def run(args: argparse.Namespace, model: Path) -> list[dict[str, Any]]:
    import torch

    from openr2v.engines.vace.engine import VaceEngine
    from openr2v.engines.vace.options import VaceOptions

    width, height = (int(v) for v in args.size.split("*"))
    opts = VaceOptions(model=model, device=args.device, dtype=args.dtype, offload=args.offload,
                       vae_tiling=args.vae_tiling, max_area=args.max_area, steps=args.steps,
                       max_frames=args.max_frames, preset=args.preset)
    engine = VaceEngine(opts)
    results = []
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
            results.append({
                "run": i + 1, "model": model.name, "device": notes["device"], "dtype": notes["dtype"],
                "offload": notes["offload"], "size": f"{width}*{height}",
                "internal_size": "{}*{}".format(*notes["internal_size"]), "duration_s": args.duration,
                "shots": len(notes["shots"]), "model_frames": timed.frames, "steps": args.steps,
                "load_s": notes["load_seconds"], "seconds_per_step": notes["seconds_per_step"],
                "total_s": round(total, 2), "pipeline_s": round(timed.seconds, 2),
                "rest_s": round(total - timed.seconds, 2),
                "s_per_rendered_s": round(total / args.duration, 3),
                "pipeline_s_per_rendered_s": round(timed.seconds / args.duration, 3),
                "rest_s_per_rendered_s": round((total - timed.seconds) / args.duration, 3),
                "stages_s": notes["timings_seconds"],
                "peak_gpu_gb": (round(torch.cuda.max_memory_allocated() / 2**30, 2)
                                if torch.cuda.is_available() else None),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            })
            print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="folder of a Wan2.1-VACE diffusers checkpoint")
    parser.add_argument("--tiny", action="store_true", help="build the tests' tiny random model and time that")
    parser.add_argument("--size", default=None, help="contract size W*H (default 832*480; --tiny: 1280*720)")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 50; --tiny: 4)")
    parser.add_argument("--max-area", type=int, default=None, help="render area (default 832*480; --tiny: 48*32)")
    parser.add_argument("--max-frames", type=int, default=81)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--offload", default="none", choices=("none", "model", "group"))
    parser.add_argument("--vae-tiling", action="store_true")
    parser.add_argument("--preset", default="veryfast", help="x264 preset")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's; --tiny: 1)")
    args = parser.parse_args()
    if args.tiny == (args.model is not None):
        parser.error("give exactly one of --model and --tiny")
    args.size = args.size or ("1280*720" if args.tiny else "832*480")
    args.steps = args.steps or (4 if args.tiny else 50)
    args.max_area = args.max_area or (48 * 32 if args.tiny else 832 * 480)
    import torch

    threads = args.threads or (1 if args.tiny else None)
    if threads:
        torch.set_num_threads(threads)
    if args.model is not None:
        run(args, args.model)
        return
    from tests.engines.tiny_vace import build_tiny_vace

    with tempfile.TemporaryDirectory() as tmp:
        run(args, build_tiny_vace(Path(tmp) / "tiny-wan-vace"))


if __name__ == "__main__":
    main()
