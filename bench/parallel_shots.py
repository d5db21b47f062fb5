"""Parallel shots: a 4-shot multi-shot task rendered by the compositor, its shots one after the other
(OPENR2V_PARALLEL_SHOTS on, 1 worker) and side by side (2 workers), with the single-stream compositor
(OPENR2V_PARALLEL_SHOTS off) as the baseline, all measured in this run, warm (cut-out masks cached, the
process warmed by a first render). Printed: wall seconds (median of --repeat), each mode's speed-up
over the 1-worker render, and whether the 1- and 2-worker MP4s are byte-identical.

    .venv/bin/python bench/parallel_shots.py [--size 1280*720] [--repeat 3] [--preset veryfast]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets" / "demo"
sys.path.insert(0, str(ROOT / "src"))
PROMPT = ("Shot 1 [0-2s]: Wide shot of character2 sitting by the window with character4 behind. "
          "Shot 2 [2-4s]: Close-up of character1 saying: 'That sounds great.' "
          "Shot 3 [4-6s]: character2 holds character3, the camera zooms in. "
          "Shot 4 [6-8s]: Medium shot of character1 and character2, the camera pans left.")
FILES = [("character1", "role1.mp4"), ("character2", "role2.mp4"), ("character3", "object3.png"),
         ("character4", "background4.png")]
DURATION = 8


def _job(workdir: Path, width: int, height: int) -> object:
    from openr2v.domain.request import GenerationRequest
    from openr2v.engines.base import RenderJob, ResolvedReference
    from openr2v.media.probe import probe

    refs = []
    for label, name in FILES:
        info = probe(ASSETS / name)
        refs.append(ResolvedReference(label=label, kind=info.kind, path=ASSETS / name, info=info))
    request = GenerationRequest(model="wan2.6-r2v-flash", prompt=PROMPT, size=(width, height), duration=DURATION,
                                audio=True, shot_type="multi", seed=7)
    workdir.mkdir(parents=True, exist_ok=True)
    return RenderJob(task_id="bench", request=request, references=refs, width=width, height=height,
                     duration=DURATION, fps=30, audio=True, watermark=False, seed=7, workdir=workdir)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1280*720")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--preset", default="veryfast")
    args = ap.parse_args()
    width, height = (int(x) for x in args.size.split("*"))
    from openr2v.engines.compositor import CompositorEngine

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cutouts"
        engines = {"single stream (baseline)": CompositorEngine(args.preset, cache_dir=cache),
                   "parallel_shots, 1 worker": CompositorEngine(args.preset, cache_dir=cache, parallel_shots=True,
                                                                shot_workers=1),
                   "parallel_shots, 2 workers": CompositorEngine(args.preset, cache_dir=cache, parallel_shots=True,
                                                                 shot_workers=2)}
        outputs: dict[str, bytes] = {}
        times: dict[str, list[float]] = {name: [] for name in engines}
        engines["single stream (baseline)"].render(_job(Path(tmp) / "warm", width, height), lambda p: None,
                                                   lambda: False)  # warm-up: masks cached, graphs built
        for i in range(args.repeat):
            for name, engine in engines.items():  # interleaved, so a busy moment hits every mode alike
                job = _job(Path(tmp) / f"{i}-{len(times[name])}-{name[:6]}", width, height)
                t0 = time.perf_counter()
                result = engine.render(job, lambda p: None, lambda: False)  # type: ignore[arg-type]
                times[name].append(time.perf_counter() - t0)
                outputs[name] = result.path.read_bytes()
        base = statistics.median(times["parallel_shots, 1 worker"])
        print(f"{DURATION} s, 4 shots, {width}x{height}, preset {args.preset}, median of {args.repeat}:")
        for name, runs in times.items():
            med = statistics.median(runs)
            print(f"  {name:28s} {med:6.2f} s   x{base / med:.2f} vs 1 worker   runs {[round(t, 2) for t in runs]}")
        same = outputs["parallel_shots, 1 worker"] == outputs["parallel_shots, 2 workers"]
        print(f"  1 and 2 workers byte-identical: {same}")


if __name__ == "__main__":
    main()
