"""The vace engine's recipes on tiny random models (CPU): LoRAs in Wan's original key layout, the fast
recipe's transformer passes, each block cache, compile, and a two-expert (Wan2.2) pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openr2v.config import Settings
from openr2v.domain.prompt import plan_prompt
from openr2v.engines.vace.options import VaceOptions
from openr2v.engines.vace.recipes import LoraSpec
from tests.engines.test_vace_render import SMALL, TINY_AREA, TWO_SHOTS, make_job, options, resolved
from tests.engines.test_vace_render import no_network as no_network  # fixtures
from tests.engines.test_vace_render import tiny_model as tiny_model
from tests.engines.tiny_vace import TINY_LAYERS, build_tiny_vace, write_wan_lora
from tests.helpers import assert_contract_mp4


def one_shot_job(tmp_path: Path, media_dir: Path, name: str, seconds: int = 1, seed: int = 7) -> Any:
    prompt = "character1 walks in the park."
    return make_job(tmp_path, [resolved("character1", media_dir / "object.png")], prompt, name, duration=seconds,
                    seed=seed, plan=plan_prompt(prompt, ["character1"], seconds, "single", 7).as_dict(), **SMALL)


def frames_of(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as box:
        return np.stack([f.to_ndarray(format="rgb24") for f in box.decode(video=0)]).astype(np.int16)


def test_a_wan_layout_lora_loads_and_changes_the_output(tmp_path: Path, tiny_model: Path, media_dir: Path) -> None:
    from openr2v.engines.vace.engine import VaceEngine

    lora = write_wan_lora(tmp_path / "loras" / "tiny_distill.safetensors", scale=0.5)
    plain = VaceEngine(options(tiny_model, guidance_scale=1.0))
    tuned = VaceEngine(options(tiny_model, guidance_scale=1.0, loras=(LoraSpec(lora, 0.8),)))
    assert tuned.loaded.notes["loras"] == ["tiny_distill.safetensors:0.8"]
    # Converted from Wan's layout into every block's attention and feed-forward layers (10 per block).
    layers = [m for m in tuned.loaded.pipe.transformer.modules() if "lora0" in getattr(m, "lora_A", {})]
    assert len(layers) == 10 * TINY_LAYERS
    a = plain.render(one_shot_job(tmp_path, media_dir, "plain"), lambda p: None, lambda: False)
    b = tuned.render(one_shot_job(tmp_path, media_dir, "tuned"), lambda p: None, lambda: False)
    assert_contract_mp4(b.path, SMALL["width"], SMALL["height"], 1, audio=False)
    assert np.abs(frames_of(a.path) - frames_of(b.path)).mean() > 1.0  # same seed, other weights: other pictures


def test_a_lora_that_does_not_fit_fails_at_start_naming_the_file(tmp_path: Path, tiny_model: Path) -> None:
    from openr2v.engines.vace.engine import VaceEngine

    wider = write_wan_lora(tmp_path / "for_a_wider_model.safetensors", width=64, ffn=128)
    deeper = write_wan_lora(tmp_path / "for_a_deeper_model.safetensors", layers=TINY_LAYERS + 2)
    junk = tmp_path / "not_a_lora.safetensors"
    junk.write_bytes(b"not safetensors at all")
    for file, words in ((wider, "does not fit this model"), (deeper, f"only {10 * TINY_LAYERS} of its"),
                        (junk, "not a readable safetensors file")):
        with pytest.raises(ValueError, match="OPENR2V_VACE_LORAS") as caught:
            VaceEngine(options(tiny_model, loras=(LoraSpec(file),)))
        assert str(file) in str(caught.value) and words in str(caught.value), caught.value
    # Through the settings, as a process that renders starts: the weights load then, and the start fails.
    from openr2v.engines import engine_resolver

    with pytest.raises(ValueError, match="for_a_wider_model.safetensors does not fit"):
        engine_resolver(Settings(data_dir=tmp_path, engine_overrides="wan2.7-r2v=vace", vace_model=tiny_model,
                                 vace_loras=str(wider)))
    # A low-noise-expert LoRA on a one-transformer (Wan2.1) model.
    good = write_wan_lora(tmp_path / "good.safetensors")
    with pytest.raises(ValueError, match="marked low: .* one transformer"):
        VaceEngine(options(tiny_model, loras=(LoraSpec(good, expert="low"),)))


def test_the_fast_recipe_makes_the_documented_passes(tmp_path: Path, tiny_model: Path, media_dir: Path) -> None:
    """docs/engines/vace.md, "Counting the work": a 2 s two-shot task is 2 pipeline calls; the fast recipe
    is 4 steps x 1 pass (no negative pass at guidance 1) = 8 passes, the default 50 x 2 x 2 = 200."""
    from openr2v.engines.vace.engine import VaceEngine

    lora = write_wan_lora(tmp_path / "loras" / "tiny_distill.safetensors", scale=0.3)
    settings = Settings(data_dir=tmp_path, vace_model=tiny_model, vace_recipe="fast", vace_loras=str(lora),
                        vace_max_area=TINY_AREA, x264_preset="ultrafast")
    opts = VaceOptions.from_settings(settings)
    assert (opts.steps, opts.guidance_scale, opts.flow_shift, opts.scheduler) == (
        4, 1.0, 5.0, "FlowMatchEulerDiscreteScheduler")
    engine = VaceEngine(opts)
    refs = [resolved("character1", media_dir / "person1.mp4"), resolved("character2", media_dir / "object.png"),
            resolved("character3", media_dir / "background.jpg")]
    result = engine.render(make_job(tmp_path, refs, TWO_SHOTS, "fast", **SMALL), lambda p: None, lambda: False)
    assert_contract_mp4(result.path, SMALL["width"], SMALL["height"], 2, audio=False)
    notes = result.notes
    assert notes["recipe"] == "fast" and notes["scheduler"] == "FlowMatchEulerDiscreteScheduler"
    assert notes["denoising_steps"] == 8 and notes["transformer_passes"] == {"high": 8}
    assert notes["blocks_computed"] == 8 * TINY_LAYERS
    # The default recipe's arithmetic on the same task, at 2 steps instead of 50: two passes a step.
    default = VaceEngine(VaceOptions.from_settings(settings.model_copy(update={
        "vace_recipe": "default", "vace_loras": None, "vace_steps": 2})))
    result = default.render(make_job(tmp_path, refs, TWO_SHOTS, "default", **SMALL), lambda p: None, lambda: False)
    assert result.notes["transformer_passes"] == {"high": 2 * 2 * 2}


@pytest.mark.parametrize("cache", ["first_block", "taylorseer", "pab"])
def test_each_block_cache_renders_to_spec(cache: str, tmp_path: Path, tiny_model: Path, media_dir: Path) -> None:
    from openr2v.engines.vace.engine import VaceEngine

    threshold = {"first_block": 0.5, "taylorseer": 2, "pab": 2}[cache]  # loose enough to skip on a random model
    engine = VaceEngine(options(tiny_model, steps=6, cache=cache, cache_threshold=threshold))
    assert engine.loaded.notes["cache"] == cache
    result = engine.render(one_shot_job(tmp_path, media_dir, cache), lambda p: None, lambda: False)
    assert_contract_mp4(result.path, SMALL["width"], SMALL["height"], 1, audio=False)
    passes = result.notes["transformer_passes"]["high"]
    assert passes == 6 * 2  # a cache works inside the passes: their number stays
    if cache != "pab":  # these skip whole blocks (PAB reuses attention inside computed blocks)
        assert result.notes["blocks_computed"] < passes * TINY_LAYERS, result.notes["blocks_computed"]
    assert (engine.loaded.notes["cache_caveat"] is not None) == (cache == "first_block")


def test_compile_reaches_the_repeated_blocks(tmp_path: Path, tiny_model: Path, media_dir: Path) -> None:
    """``eager`` compiles with dynamo and no code generation: the wiring of OPENR2V_VACE_COMPILE, cheaply
    (inductor's C++ compile of the real modes takes minutes on this CPU)."""
    from openr2v.engines.vace.engine import VaceEngine

    engine = VaceEngine(options(tiny_model, compile="eager"))
    transformer = engine.loaded.pipe.transformer
    blocks = [*transformer.blocks, *transformer.vace_blocks]
    assert all(block._compiled_call_impl is not None for block in blocks)
    result = engine.render(one_shot_job(tmp_path, media_dir, "compiled"), lambda p: None, lambda: False)
    assert_contract_mp4(result.path, SMALL["width"], SMALL["height"], 1, audio=False)
    assert result.notes["compile"] == "eager"
    assert result.notes["transformer_passes"] == {"high": 2 * 2} and result.notes["blocks_computed"] == 4 * TINY_LAYERS


def test_a_multistep_scheduler_samples_flow_matching(tiny_model: Path) -> None:
    """The tiny checkpoint ships FlowMatchEuler; UniPC taken from its config must run in flow mode."""
    from openr2v.engines.vace.engine import VaceEngine

    engine = VaceEngine(options(tiny_model, scheduler="UniPCMultistepScheduler", flow_shift=8.0))
    config = engine.loaded.pipe.scheduler.config
    assert type(engine.loaded.pipe.scheduler).__name__ == "UniPCMultistepScheduler"
    assert (config.use_flow_sigmas, config.prediction_type, config.flow_shift) == (True, "flow_prediction", 8.0)
    assert engine.loaded.notes["flow_shift"] == 8.0


def test_a_two_expert_pipeline_renders(tmp_path: Path, media_dir: Path, no_network: list[str]) -> None:
    """Saved with save_pretrained, loaded from the folder with every connection off the machine refused."""
    from openr2v.engines.vace.engine import VaceEngine

    folder = build_tiny_vace(tmp_path / "tiny-wan22-vace", two_experts=True)
    low = write_wan_lora(tmp_path / "low_noise.safetensors")
    both = write_wan_lora(tmp_path / "both.safetensors", seed=2)
    engine = VaceEngine(options(folder, loras=(LoraSpec(low, 1.0, "low"), LoraSpec(both, 0.5))))
    notes = engine.loaded.notes
    assert notes["experts"] == 2 and notes["boundary_ratio"] == 0.875
    assert notes["loras"] == ["low:low_noise.safetensors:1", "both.safetensors:0.5"]
    pipe = engine.loaded.pipe

    def adapters(transformer: Any) -> set[str]:
        return {name for m in transformer.modules() for name in getattr(m, "lora_A", {})}

    assert adapters(pipe.transformer) == {"lora1"} and adapters(pipe.transformer_2) == {"lora0", "lora1"}
    result = engine.render(one_shot_job(tmp_path, media_dir, "wan22"), lambda p: None, lambda: False)
    assert_contract_mp4(result.path, SMALL["width"], SMALL["height"], 1, audio=False)
    # 2 steps with shift 7: the first (t = 1000) on the high-noise expert, the second (t ~ 7) on the low.
    assert result.notes["transformer_passes"] == {"high": 2, "low": 2}


def test_first_block_cache_counts_vace_hints_twice(tiny_model: Path) -> None:
    """Why ``cached`` is not First Block Cache, and why ``first_block`` carries a caveat: on a skipped pass
    with the very same inputs, diffusers 0.42 returns another output, by VACE's hints (none without them).
    When this fails, diffusers fixed it: drop FIRST_BLOCK_CAVEAT and the docs' caveat."""
    import torch
    from diffusers import FirstBlockCacheConfig, WanVACETransformer3DModel

    g = torch.Generator().manual_seed(0)
    inputs = dict(hidden_states=torch.randn(1, 16, 3, 4, 4, generator=g), timestep=torch.tensor([500]),
                  encoder_hidden_states=torch.randn(1, 7, 32, generator=g),
                  control_hidden_states=torch.randn(1, 96, 3, 4, 4, generator=g), return_dict=False)
    transformer = WanVACETransformer3DModel.from_pretrained(tiny_model, subfolder="transformer").eval()
    transformer.enable_cache(FirstBlockCacheConfig(threshold=1e9))  # every pass after the first skips
    change = {}
    for scale in (1.0, 0.0):
        outs = []
        for _ in range(2):
            with torch.no_grad(), transformer.cache_context(f"scale{scale}"):
                outs.append(transformer(**inputs, control_hidden_states_scale=torch.full((2,), scale))[0])
        change[scale] = float((outs[1] - outs[0]).abs().max())
    assert change[0.0] < 1e-5 and change[1.0] > 0.1, change
