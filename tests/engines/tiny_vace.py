"""A tiny, randomly initialised Wan2.1-VACE pipeline in diffusers format, built without any download.

Configs follow diffusers' own ``tests/pipelines/wan/test_wan_vace.py``; the text side is a UMT5
encoder made from a config (as the real checkpoints use) and a word-level tokenizer built here with
``tokenizers``, so nothing comes from a hub. Saved with ``save_pretrained``, the folder has the
layout of ``Wan-AI/Wan2.1-VACE-1.3B-diffusers`` (model_index.json, transformer/, vae/, text_encoder/,
tokenizer/, scheduler/) and loads with ``WanVACEPipeline.from_pretrained(folder)``. It renders
9-17 frames at 32x32 in about a second on CPU. Used by the tests and by ``bench/vace.py --tiny``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["TINY_LAYERS", "build_tiny_vace", "tiny_vace_dir", "write_wan_lora"]

TINY_LAYERS, TINY_WIDTH, TINY_FFN = 3, 24, 32  # transformer blocks, hidden width (2 heads x 12), feed-forward

# Words the tokenizer knows (anything else is <unk>): enough that different shots embed differently.
_WORDS = ("a the and of to in on at with says replies person object place first second third fourth fifth "
          "man woman car dog cat walks runs waves talks smiles looks close-up medium wide shot camera zoom "
          "pan left right hello red blue green street room park day night").split()


def build_tiny_vace(folder: Path, *, seed: int = 0, two_experts: bool = False) -> Path:
    """Build the tiny pipeline and save it into ``folder`` (created); returns ``folder``.

    ``two_experts``: Wan2.2's layout, a second transformer (other weights) for the low-noise steps and
    ``boundary_ratio`` 0.875 in the pipeline config, as Wan2.2-VACE-Fun-A14B's diffusers folder has."""
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanVACEPipeline, WanVACETransformer3DModel
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])

    def transformer(offset: int) -> WanVACETransformer3DModel:
        torch.manual_seed(seed + offset)
        return WanVACETransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=TINY_WIDTH // 2, in_channels=16,
            out_channels=16, text_dim=32, freq_dim=256, ffn_dim=TINY_FFN, num_layers=TINY_LAYERS, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", rope_max_seq_len=32, vace_layers=[0, 2], vace_in_channels=96)

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2} | {w: i + 3 for i, w in enumerate(_WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                        unk_token="<unk>", model_max_length=512)

    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(vocab), d_model=32, d_kv=8, d_ff=32, num_layers=2,
                                               num_heads=4, relative_attention_num_buckets=8,
                                               relative_attention_max_distance=16, feed_forward_proj="gated-gelu",
                                               pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    experts = {"transformer": transformer(0)}
    if two_experts:
        experts |= {"transformer_2": transformer(1), "boundary_ratio": 0.875}
    pipe = WanVACEPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                           scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0), **experts)
    for module in (vae, text_encoder, pipe.transformer, getattr(pipe, "transformer_2", None)):
        if module is not None:
            module.eval()  # modules built by hand start in training mode (dropout on)
    folder.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(folder)
    return folder


def write_wan_lora(path: Path, *, width: int = TINY_WIDTH, ffn: int = TINY_FFN, layers: int = TINY_LAYERS,
                   rank: int = 4, scale: float = 1.0, seed: int = 1) -> Path:
    """A random LoRA in the original Wan key layout (``diffusion_model.blocks.N.self_attn.q.lora_down.weight``,
    with ``alpha``), as lightx2v's and Kijai's step-distillation LoRAs are published; sized for the tiny
    transformer unless ``width`` / ``ffn`` / ``layers`` say otherwise."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)

    def pair(key: str, n_in: int, n_out: int) -> dict[str, torch.Tensor]:
        return {f"diffusion_model.{key}.lora_down.weight": torch.randn(rank, n_in, generator=g) * scale,
                f"diffusion_model.{key}.lora_up.weight": torch.randn(n_out, rank, generator=g) * scale,
                f"diffusion_model.{key}.alpha": torch.tensor(float(rank))}

    tensors: dict[str, torch.Tensor] = {}
    for i in range(layers):
        for attn in ("self_attn", "cross_attn"):
            for proj in "qkvo":
                tensors |= pair(f"blocks.{i}.{attn}.{proj}", width, width)
        tensors |= pair(f"blocks.{i}.ffn.0", width, ffn) | pair(f"blocks.{i}.ffn.2", ffn, width)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


_CACHE: dict[str, Path] = {}


def tiny_vace_dir(root: Path) -> Path:
    """The tiny pipeline under ``root`` (built once per process and root)."""
    key = str(root)
    if key not in _CACHE:
        _CACHE[key] = build_tiny_vace(root / "tiny-wan-vace")
    return _CACHE[key]
