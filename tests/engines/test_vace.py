"""The vace engine's pure parts: sizes, frames, 16 to 30 fps, prompts, options; and openr2v without torch.

These need neither torch nor weights; ``test_vace_render.py`` runs the engine on a tiny model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from openr2v.config import Settings
from openr2v.domain.models import TIERS
from openr2v.domain.prompt import plan_prompt
from openr2v.engines import engine_resolver
from openr2v.engines.vace.options import VaceOptions
from openr2v.engines.vace.references import shot_prompt
from openr2v.engines.vace.timing import (
    internal_size,
    native_count,
    resample,
    segments,
    shot_frames,
    to_contract,
)


@pytest.mark.parametrize("size", sorted({wh for table in TIERS.values() for wh in table.values()}))
def test_internal_size_keeps_aspect_in_multiples_of_16(size: tuple[int, int]) -> None:
    w, h = size
    for area in (832 * 480, 1280 * 720, 32 * 32):
        iw, ih = internal_size(w, h, area)
        assert iw % 16 == 0 and ih % 16 == 0 and iw >= 16 and ih >= 16
        ideal_h = (min(area, w * h) * h / w) ** 0.5
        assert abs(ih - ideal_h) <= 8 and abs(iw - ideal_h * w / h) <= 8  # the nearest multiples of 16
        assert iw <= w and ih <= h
        if area >= 832 * 480:  # at real sizes the aspect is kept to within a 16-pixel step
            assert abs(iw / ih - w / h) < 0.04, (size, area, iw, ih)
    assert internal_size(1280, 720, 832 * 480) == (848, 480)
    assert internal_size(720, 1280, 832 * 480) == (480, 848)
    assert internal_size(1280, 720, 1280 * 720) == (1280, 720)  # nothing to adjust


def test_native_frames_cover_every_output_frame() -> None:
    for count in (1, 2, 15, 29, 30, 31, 60, 150, 450):
        n = native_count(count, 30)
        assert n % 4 == 1
        assert (count - 1) * 16 / 30 <= n - 1 < (count - 1) * 16 / 30 + 5  # covers, with under 4 frames spare
    assert native_count(30, 30) == 17 and native_count(15, 30) == 9 and native_count(150, 30) == 81


def test_long_shots_are_split_into_calls_that_continue() -> None:
    assert segments(81, 81) == [segments(81, 81)[0]] and not segments(81, 81)[0].continues
    parts = segments(161, 81)
    assert [(p.start, p.frames, p.continues) for p in parts] == [(0, 81, False), (80, 81, True)]
    for total, most in ((17, 9), (241, 81), (45, 13)):
        parts = segments(total, most)
        covered = parts[0].frames + sum(p.frames - 1 for p in parts[1:])
        assert covered >= total and all(p.frames <= most and p.frames % 4 == 1 for p in parts)
        assert all(b.start == a.start + a.frames - 1 for a, b in zip(parts, parts[1:], strict=False))


def test_resample_16_to_30_fps() -> None:
    native = np.stack([np.full((2, 2, 3), 10 * i, np.uint8) for i in range(17)])
    nearest = resample(native, 30, 30, blend=False)
    blended = resample(native, 30, 30, blend=True)
    assert len(nearest) == len(blended) == 30
    assert [int(f[0, 0, 0]) for f in nearest[:4]] == [0, 10, 10, 20]  # 0, 0.53, 1.07, 1.6 -> nearest
    assert [int(f[0, 0, 0]) for f in blended[:4]] == [0, 5, 11, 16]  # mixed by distance
    assert int(blended[-1][0, 0, 0]) == round(29 * 16 / 30 * 10)


def test_frames_are_cropped_and_scaled_to_the_contract() -> None:
    frame = np.zeros((32, 48, 3), np.uint8)
    frame[:, :, :] = (np.arange(48, dtype=np.uint8) * 5)[None, :, None]  # a grey ramp, left to right
    out = to_contract(frame, 1280, 720)
    assert out.shape == (720 * 3 // 2, 1280)  # the encoder's YUV 4:2:0 buffer
    square = to_contract(frame, 960, 960)[:960]  # 3:2 into 1:1: the sides are cropped, the middle kept
    assert square.shape == (960, 960)
    left, right = int(square[480, 0]), int(square[480, -1])  # limited-range luma of grey 40 and 195
    assert abs(left - (16 + 40 * 219 / 255)) < 6 and abs(right - (16 + 195 * 219 / 255)) < 6


def test_shot_frames_are_contiguous_with_hard_cuts() -> None:
    plan = plan_prompt("Shot 1 [0-1s]: character1 waves. Shot 2 [1-2s]: character2 smiles.",
                       ["character1", "character2"], 2, "multi", 1)
    bounds = shot_frames(plan.shots, 30, 60)
    assert [(b.first, b.last) for b in bounds] == [(0, 30), (30, 60)]
    single = plan_prompt("character1 waves.", ["character1"], 3, "single", 1)
    assert [(b.first, b.last) for b in shot_frames(single.shots, 30, 90)] == [(0, 90)]


def test_prompt_labels_become_descriptions_and_quotes_go() -> None:
    labels = ["character1", "character2", "character3"]
    plan = plan_prompt("Shot 1 [0-2s]: character1 says to character2: \"Don't go, it's late.\" "
                       "Shot 2 [2-4s]: Close-up of Character2 beside character3.", labels, 4, "multi", 1)
    names = {"character1": "the first person", "character2": "the second person", "character3": "the place"}
    first = shot_prompt(plan, plan.shots[0], names, "fallback")
    assert first == "The first person says to the second person."
    second = shot_prompt(plan, plan.shots[1], names, "fallback")
    assert second == "Close-up of the second person beside the place."
    # wan2.7 labels, and a template that keeps them.
    plan = plan_prompt("Image 1 walks past Video 1 in Image 2.", ["Image 1", "Image 2", "Video 1"], 5, "single", 1)
    named = shot_prompt(plan, plan.shots[0], {"Image 1": "the person", "Image 2": "the place",
                                              "Video 1": "the dog"}, "")
    assert named == "The person walks past the dog in the place."
    kept = shot_prompt(plan, plan.shots[0], {k: k for k in ("Image 1", "Image 2", "Video 1")}, "")
    assert kept == "Image 1 walks past Video 1 in Image 2."


def test_options_fail_fast_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="OPENR2V_VACE_MODEL"):
        VaceOptions.from_settings(Settings(data_dir=tmp_path))
    with pytest.raises(ValueError, match="model_index.json"):
        VaceOptions(model=tmp_path)
        VaceOptions(model=tmp_path).checked()
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanVACEPipeline"}))
    good = VaceOptions(model=tmp_path).checked()
    for change, setting in ((dict(offload="disk"), "OFFLOAD"), (dict(dtype="int8"), "DTYPE"),
                            (dict(device="tpu"), "DEVICE"), (dict(max_frames=80), "MAX_FRAMES"),
                            (dict(label_template="{who}"), "LABEL_TEMPLATE"), (dict(steps=0), "STEPS"),
                            (dict(interpolation="optical"), "INTERPOLATION")):
        with pytest.raises(ValueError, match=f"OPENR2V_VACE_{setting}"):
            good.replace(**change)
    # A process that renders refuses to start with the engine misconfigured; an API node that never
    # renders (no in-process workers) does not need the weights.
    with pytest.raises(ValueError, match="OPENR2V_VACE_MODEL"):
        engine_resolver(Settings(data_dir=tmp_path, engine="vace"))
    with pytest.raises(ValueError, match="model_index.json"):
        engine_resolver(Settings(data_dir=tmp_path, engine_overrides="wan2.7-r2v=vace", vace_model=tmp_path / "x"))
    engine_resolver(Settings(data_dir=tmp_path, engine="vace", render_threads=0))


def test_openr2v_works_without_torch(tmp_path: Path) -> None:
    """torch and diffusers are imported by the engine only: the server, the compositor and the vace
    module's checks all import without them, and the engine says what to install."""
    (tmp_path / "model_index.json").write_text("{}")
    code = f"""
import sys
for name in ("torch", "diffusers", "transformers"):
    sys.modules[name] = None  # as if not installed: importing them raises ImportError
from openr2v.api.app import create_app
from openr2v.config import Settings
from openr2v.engines.vace import check_settings
from openr2v.engines.vace.engine import VaceEngine
assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
try:
    check_settings(Settings(engine="vace", vace_model={str(tmp_path)!r}))
except ValueError as e:
    print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "install the `vace` extra" in out.stdout and "torch" in out.stdout


def test_recipes_and_explicit_settings(tmp_path: Path) -> None:
    from openr2v.engines.vace.recipes import LoraSpec, parse_loras

    (tmp_path / "model_index.json").write_text("{}")
    base = Settings(data_dir=tmp_path, vace_model=tmp_path)
    default = VaceOptions.from_settings(base)
    assert (default.recipe, default.steps, default.guidance_scale, default.loras, default.cache) == (
        "default", 50, 5.0, (), "none")
    # The fast recipe names lightx2v's LoRA file under <model>/loras: missing, start-up says which file.
    with pytest.raises(ValueError, match="wan2.1_t2v_14b_lora_rank64_lightx2v_4step.safetensors"):
        VaceOptions.from_settings(base.model_copy(update={"vace_recipe": "fast"}))
    (tmp_path / "loras").mkdir()
    (tmp_path / "loras" / "wan2.1_t2v_14b_lora_rank64_lightx2v_4step.safetensors").write_bytes(b"")
    fast = VaceOptions.from_settings(base.model_copy(update={"vace_recipe": "fast"}))
    assert (fast.steps, fast.guidance_scale, fast.flow_shift, fast.cache) == (4, 1.0, 5.0, "none")
    assert fast.loras == (LoraSpec(tmp_path / "loras" / "wan2.1_t2v_14b_lora_rank64_lightx2v_4step.safetensors"),)
    # Explicit settings win over the recipe, an empty LoRA list included.
    mine = VaceOptions.from_settings(base.model_copy(update={
        "vace_recipe": "fast", "vace_steps": 6, "vace_loras": "", "vace_cache": "first_block",
        "vace_cache_threshold": 0.1, "vace_scheduler": "UniPCMultistepScheduler"}))
    assert (mine.steps, mine.guidance_scale, mine.loras, mine.cache, mine.cache_threshold, mine.scheduler) == (
        6, 1.0, (), "first_block", 0.1, "UniPCMultistepScheduler")
    for field, value, setting in (("vace_recipe", "turbo", "RECIPE"), ("vace_cache", "teacache", "CACHE"),
                                  ("vace_scheduler", "DDIMScheduler", "SCHEDULER"), ("vace_compile", "yes", "COMPILE"),
                                  ("vace_guidance_scale", 0.0, "GUIDANCE_SCALE"), ("vace_loras", "x.pt", "LORAS")):
        with pytest.raises(ValueError, match=f"OPENR2V_VACE_{setting}"):
            VaceOptions.from_settings(base.model_copy(update={field: value}))
    # The LoRA list: an expert prefix, a weight, relative names under the folder, colons inside a path.
    specs = parse_loras("a.safetensors, low:/m/b.safetensors:0.5 ,high:c:d.safetensors:2,none", tmp_path)
    assert specs == (LoraSpec(tmp_path / "a.safetensors"), LoraSpec(Path("/m/b.safetensors"), 0.5, "low"),
                     LoraSpec(tmp_path / "c:d.safetensors", 2.0, "high"))
