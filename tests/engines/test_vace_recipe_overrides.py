"""Per-model recipes (OPENR2V_VACE_RECIPE_OVERRIDES) on the tiny random model (CPU): one loaded pipeline
serves each model with its recipe's passes, LoRA, scheduler and cache, and leaves nothing behind for the
next task; bad overrides stop start-up naming the setting."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from openr2v.config import Settings
from openr2v.domain.prompt import plan_prompt
from openr2v.domain.request import GenerationRequest
from openr2v.engines import engine_resolver
from openr2v.engines.vace.options import VaceOptions
from openr2v.engines.vace.recipes import RECIPES, LoraSpec
from tests.engines.test_vace_render import SMALL, TINY_AREA, make_job, options, resolved
from tests.engines.test_vace_render import tiny_model as tiny_model  # fixture
from tests.engines.tiny_vace import TINY_LAYERS, build_tiny_vace, write_wan_lora

FAST_LORA = RECIPES["fast"].loras  # the file name the fast recipe reads from OPENR2V_VACE_LORA_DIR
CAUSVID_LORA = RECIPES["causvid"].loras.rpartition(":")[0]  # it weighs its LoRA 0.5
# wan2.6-r2v keeps OPENR2V_VACE_RECIPE (default); wan26_r2v is the aggregator's model.
OVERRIDES = "wan2.6-r2v-flash=fast, wan2.7-r2v=cached, wan26_r2v=causvid"


@pytest.fixture
def short_recipes(monkeypatch: pytest.MonkeyPatch) -> None:
    """``default``, ``cached`` and ``causvid`` at 5, 6 and 2 steps (the rest of each kept): the switching is
    what is tested, and 50 steps cost seconds a render. ``fast`` stays as shipped."""
    for name, steps in (("default", 5), ("cached", 6), ("causvid", 2)):
        monkeypatch.setitem(RECIPES, name, dataclasses.replace(RECIPES[name], steps=steps))


@pytest.fixture
def settings(tmp_path: Path, tiny_model: Path, short_recipes: None) -> Settings:
    write_wan_lora(tmp_path / "loras" / FAST_LORA, scale=0.5)  # stand-ins for lightx2v's and Kijai's, sized for the toy
    write_wan_lora(tmp_path / "loras" / CAUSVID_LORA, scale=0.5, seed=2)
    return Settings(data_dir=tmp_path, vace_model=tiny_model, vace_lora_dir=tmp_path / "loras",
                    vace_max_area=TINY_AREA, x264_preset="ultrafast")


def engine(settings: Settings, **changes: Any) -> Any:
    from openr2v.engines.vace.engine import VaceEngine

    return VaceEngine(VaceOptions.from_settings(settings.model_copy(update=changes)))


def timesteps_seen(pipe: Any) -> list[float]:
    """The timestep of each transformer pass from now on: what the scheduler in use gave the pipeline."""
    seen: list[float] = []
    pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(round(float(kwargs["timestep"].flatten()[0]), 3)), with_kwargs=True)
    return seen


def schedule(scheduler: Any, steps: int, passes_per_step: int) -> list[float]:
    scheduler.set_timesteps(steps)
    return [round(float(t), 3) for t in scheduler.timesteps for _ in range(passes_per_step)]


def render(engine: Any, tmp_path: Path, media_dir: Path, model: str, name: str) -> tuple[bytes, dict[str, Any], Any]:
    prompt = "character1 walks in the park."
    job = make_job(tmp_path, [resolved("character1", media_dir / "object.png")], prompt, name, duration=1,
                   request=GenerationRequest(model=model, prompt=prompt),
                   plan=plan_prompt(prompt, ["character1"], 1, "single", 7).as_dict(), **SMALL)
    result = engine.render(job, lambda p: None, lambda: False)
    return result.path.read_bytes(), result.notes, job


def test_each_model_renders_with_its_recipe_and_leaves_nothing_behind(
        settings: Settings, tmp_path: Path, media_dir: Path) -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    shared = engine(settings, vace_recipe_overrides=OVERRIDES)
    seen = timesteps_seen(shared.loaded.pipe)
    plain, plain_notes, _ = render(shared, tmp_path, media_dir, "wan2.6-r2v", "plain")
    fast, fast_notes, fast_job = render(shared, tmp_path, media_dir, "wan2.6-r2v-flash", "fast")
    causvid, causvid_notes, _ = render(shared, tmp_path, media_dir, "wan26_r2v", "causvid")
    _, cached_notes, _ = render(shared, tmp_path, media_dir, "wan2.7-r2v", "cached")
    again, again_notes, _ = render(shared, tmp_path, media_dir, "wan2.6-r2v", "again")

    # One call each (1 s = 17 model frames): the recipe's steps x (2 passes with guidance, 1 without), at the
    # timesteps of the recipe's scheduler and shift (the tiny checkpoint's own: FlowMatchEuler, shift 7).
    default_timesteps = schedule(FlowMatchEulerDiscreteScheduler(shift=7.0), 5, 2)
    assert seen[:10] == default_timesteps
    assert seen[10:14] == schedule(FlowMatchEulerDiscreteScheduler(shift=5.0), 4, 1)
    assert seen[14:16] == schedule(UniPCMultistepScheduler(use_flow_sigmas=True, prediction_type="flow_prediction",
                                                           flow_shift=8.0), 2, 1)
    assert seen[-10:] == default_timesteps
    assert (plain_notes["recipe"], plain_notes["transformer_passes"], plain_notes["loras"]) == (
        "default", {"high": 5 * 2}, [])
    assert (fast_notes["recipe"], fast_notes["transformer_passes"], fast_notes["denoising_steps"]) == (
        "fast", {"high": 4}, 4)
    assert (fast_notes["scheduler"], fast_notes["flow_shift"], fast_notes["loras"], fast_notes["guidance_scale"]) == (
        "FlowMatchEulerDiscreteScheduler", 5.0, [f"{FAST_LORA}:1"], 1.0)
    assert fast_job.extra["vace"]["recipe"] == "fast" and fast_job.extra["vace"]["steps"] == 4
    assert plain_notes["flow_shift"] == 7.0  # the checkpoint's scheduler, as loaded
    assert (causvid_notes["recipe"], causvid_notes["scheduler"], causvid_notes["loras"]) == (
        "causvid", "UniPCMultistepScheduler", [f"{CAUSVID_LORA}:0.5"])
    assert (cached_notes["recipe"], cached_notes["cache"], cached_notes["transformer_passes"]) == (
        "cached", "taylorseer", {"high": 6 * 2})
    assert cached_notes["blocks_computed"] < 6 * 2 * TINY_LAYERS  # TaylorSeer skipped some
    assert plain_notes["cache"] == again_notes["cache"] == "none"
    assert again_notes["blocks_computed"] == 5 * 2 * TINY_LAYERS  # its hooks are gone: every block computed
    assert not shared.loaded.pipe.transformer.is_cache_enabled

    # No adapter, scheduler or cache state leaks: the default task after fast and cached ones, and a fresh
    # engine without overrides, give the same bytes; so do the fast task and a fresh fast engine's.
    assert again == plain
    assert render(engine(settings), tmp_path, media_dir, "wan2.6-r2v", "fresh_default")[0] == plain
    assert render(engine(settings, vace_recipe="fast"), tmp_path, media_dir, "wan2.6-r2v", "fresh_fast")[0] == fast
    assert render(engine(settings, vace_recipe="causvid"), tmp_path, media_dir, "wan2.6-r2v",
                  "fresh_causvid")[0] == causvid
    # The LoRA is what makes the fast task (its other settings without it give other bytes).
    assert render(engine(settings, vace_recipe="fast", vace_loras=""), tmp_path, media_dir, "wan2.6-r2v",
                  "fast_without_lora")[0] != fast


def test_explicit_settings_win_over_the_overrides_too(settings: Settings) -> None:
    opts = VaceOptions.from_settings(settings.model_copy(update={"vace_recipe_overrides": OVERRIDES,
                                                                 "vace_steps": 2, "vace_cache": "pab"}))
    fast, cached, default = (opts.for_model(m) for m in ("wan2.6-r2v-flash", "wan2.7-r2v", "wan2.6-r2v"))
    assert (fast.recipe, fast.steps, fast.guidance_scale, fast.cache) == ("fast", 2, 1.0, "pab")
    assert (cached.recipe, cached.steps, cached.cache) == ("cached", 2, "pab")
    assert default is opts and (default.recipe, default.steps) == ("default", 2)  # no override: VACE_RECIPE
    assert opts.for_model("wan26_r2v").recipe == "causvid"


def test_a_bad_override_stops_start_up_naming_the_setting(settings: Settings, tmp_path: Path) -> None:
    for value, words in (("wan2.6-r2v-flash=turbo", "unknown recipe"), ("wan9-r2v=fast", "unknown model 'wan9-r2v'"),
                         ("fast", "is not model=recipe"), ("wan2.7-r2v=fast,wan2.7-r2v=cached", "given twice")):
        with pytest.raises(ValueError, match="OPENR2V_VACE_RECIPE_OVERRIDES") as caught:
            engine_resolver(settings.model_copy(update={"engine": "vace", "vace_recipe_overrides": value}))
        assert words in str(caught.value), caught.value
    # The override's recipe needs a LoRA file that is not there, or one that does not fit the model.
    (tmp_path / "loras" / FAST_LORA).unlink()
    with pytest.raises(ValueError, match=f"OPENR2V_VACE_RECIPE_OVERRIDES: wan2.6-r2v-flash=fast: .*{FAST_LORA}"):
        engine_resolver(settings.model_copy(update={"engine": "vace", "vace_recipe_overrides": OVERRIDES}))
    write_wan_lora(tmp_path / "loras" / FAST_LORA, width=64, ffn=128)
    with pytest.raises(ValueError, match=f"{FAST_LORA} does not fit this model"):
        engine_resolver(settings.model_copy(update={"engine": "vace", "vace_recipe_overrides": OVERRIDES}))


def test_compile_stays_and_serves_every_recipe(settings: Settings, tmp_path: Path, media_dir: Path) -> None:
    """OPENR2V_VACE_COMPILE is process-wide: the compiled blocks serve each recipe (dynamo guards on the
    adapters and cache hooks, and traces again where a recipe changes them)."""
    shared = engine(settings, vace_recipe_overrides=OVERRIDES, vace_compile="eager", vace_steps=2)
    for i, (model, recipe, passes) in enumerate((("wan2.6-r2v-flash", "fast", 2), ("wan2.7-r2v", "cached", 4),
                                                 ("wan2.6-r2v", "default", 4), ("wan2.6-r2v-flash", "fast", 2))):
        _, notes, _ = render(shared, tmp_path, media_dir, model, f"task{i}")
        assert (notes["recipe"], notes["compile"], notes["transformer_passes"]) == (recipe, "eager", {"high": passes})


def test_two_experts_switch_each_transformers_loras(tmp_path: Path, tiny_model: Path) -> None:
    """On Wan2.2's two transformers each recipe's ``high:`` / ``low:`` LoRAs are on in their expert only."""
    from openr2v.engines.vace.engine import VaceEngine

    folder = build_tiny_vace(tmp_path / "tiny-wan22-vace", two_experts=True)
    low, high = write_wan_lora(tmp_path / "low.safetensors"), write_wan_lora(tmp_path / "high.safetensors", seed=2)
    base = options(folder, loras=(LoraSpec(low, 1.0, "low"),))
    flash = base.replace(recipe="fast", loras=(LoraSpec(high, 0.5, "high"), LoraSpec(low, 0.25, "low")))
    loaded = VaceEngine(base.replace(overrides={"wan2.6-r2v-flash": flash})).loaded
    pipe = loaded.pipe

    def lora_state(transformer: Any) -> tuple[bool, dict[str, float]]:
        """Whether its LoRA layers are off, and the scale of each active adapter (one layer stands for all)."""
        layer = next(m for m in transformer.modules() if getattr(m, "lora_A", None))
        scales = {name: round(layer.scaling[name] / (layer.lora_alpha[name] / layer.r[name]), 3)
                  for name in layer.active_adapters}
        return layer.disable_adapters, scales

    def adapters(transformer: Any) -> set[str]:
        return {name for m in transformer.modules() for name in getattr(m, "lora_A", {})}

    # Files are loaded once each (low: lora0, high: lora1), only where some recipe wants them.
    assert adapters(pipe.transformer) == {"lora1"} and adapters(pipe.transformer_2) == {"lora0"}
    assert lora_state(pipe.transformer_2) == (False, {"lora0": 1.0})  # at rest: OPENR2V_VACE_RECIPE's
    assert lora_state(pipe.transformer)[0] is True
    notes = loaded.sampler.apply(flash)
    assert notes["loras"] == ["high:high.safetensors:0.5", "low:low.safetensors:0.25"]
    assert lora_state(pipe.transformer) == (False, {"lora1": 0.5})
    assert lora_state(pipe.transformer_2) == (False, {"lora0": 0.25})
    loaded.sampler.apply(base)
    assert lora_state(pipe.transformer)[0] is True and lora_state(pipe.transformer_2) == (False, {"lora0": 1.0})


def test_every_devices_pipeline_switches_to_the_models_recipe(settings: Settings, tmp_path: Path,
                                                             media_dir: Path) -> None:
    """With OPENR2V_VACE_DEVICES each device's pipeline has its own Sampler: both shots of a two-shot task,
    one on each device, are sampled by the task's recipe (its scheduler's timesteps), after another recipe's task."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    shared = engine(settings, vace_recipe_overrides=OVERRIDES, vace_devices="cpu,cpu")
    seen = [timesteps_seen(loaded.pipe) for loaded in shared.pipelines]
    expected = {"default": schedule(FlowMatchEulerDiscreteScheduler(shift=7.0), 5, 2),
                "fast": schedule(FlowMatchEulerDiscreteScheduler(shift=5.0), 4, 1)}
    refs = [resolved("character1", media_dir / "object.png"), resolved("character2", media_dir / "background.jpg")]
    prompt = "Shot 1 [0-1s]: Wide shot of character1. Shot 2 [1-2s]: Close-up of character1 in character2."
    for name, model, passes in (("default", "wan2.6-r2v", 5 * 2), ("fast", "wan2.6-r2v-flash", 4)):
        job = make_job(tmp_path, refs, prompt, name, request=GenerationRequest(model=model, prompt=prompt), **SMALL)
        notes = shared.render(job, lambda p: None, lambda: False).notes
        assert notes["recipe"] == name and notes["devices"] == ["cpu", "cpu"]
        assert [work["transformer_passes"] for work in notes["device_work"]] == [passes, passes], notes["device_work"]
        assert [device[-passes:] for device in seen] == [expected[name]] * 2
