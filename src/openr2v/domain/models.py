"""The model registry: per model and region, what the model accepts.

Validation reads this table and nothing else; handlers hard-code no limit. Each value cites
its source document; values the documents leave open are openr2v's choices, marked ``choice`` and
listed in docs/parity.md and the dialect pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "DIALECT_MODELS",
    "FileLimits",
    "ModelSpec",
    "Price",
    "REGIONS",
    "REGISTRY",
    "Region",
    "SIZES_720P",
    "SIZES_1080P",
    "dialect_model",
    "get_model",
    "parse_price_table",
    "ratio_size",
    "tier_ratio",
]

Region = Literal["intl", "cn", "us"]
REGIONS: dict[str, str] = {"intl": "Singapore", "cn": "Beijing", "us": "Virginia"}

# The wan2.6-r2v guide (the API reference it links), the aggregator's and the gateway's docs: the ten sizes
# of the two tiers.
SIZES_720P: dict[str, tuple[int, int]] = {
    "16:9": (1280, 720),
    "9:16": (720, 1280),
    "1:1": (960, 960),
    "4:3": (1088, 832),
    "3:4": (832, 1088),
}
SIZES_1080P: dict[str, tuple[int, int]] = {
    "16:9": (1920, 1080),
    "9:16": (1080, 1920),
    "1:1": (1440, 1440),
    "4:3": (1632, 1248),
    "3:4": (1248, 1632),
}
TIERS: dict[str, dict[str, tuple[int, int]]] = {"720P": SIZES_720P, "1080P": SIZES_1080P}


def ratio_size(resolution: str, ratio: str) -> tuple[int, int]:
    """Pixel size of a wan2.7 ``resolution`` + ``ratio`` (choice: the wan2.6 tier table)."""
    return TIERS[resolution][ratio]


def tier_ratio(size: tuple[int, int]) -> tuple[str, str] | None:
    """The wan2.7 (resolution, ratio) naming a pixel size of the tables, else None."""
    for tier, table in TIERS.items():
        for ratio, dims in table.items():
            if dims == size:
                return tier, ratio
    return None


def tier_of(width: int, height: int) -> int:
    """The ``SR`` usage value: 720 or 1080 for a size of the tables, else the short side."""
    for sr, table in ((720, SIZES_720P), (1080, SIZES_1080P)):
        if (width, height) in table.values():
            return sr
    return min(width, height)


@dataclass(frozen=True)
class FileLimits:
    """Limits on one kind of referenced file."""

    formats: tuple[str, ...]
    max_bytes: int
    min_side: int | None = None
    max_side: int | None = None
    min_seconds: float | None = None
    max_seconds: float | None = None


MB = 1024 * 1024

# The wan2.7-r2v guide ("Input images") and 002 ("Image Requirements").
IMAGE_LIMITS = FileLimits(formats=("jpeg", "jpg", "png", "bmp", "webp"), max_bytes=10 * MB,
                          min_side=360, max_side=2000)
# The gateway's docs (2-30 s, <= 100 MB, MP4/MOV) for the DashScope wan2.6 family; 002 says 3-30 s for its dialect.
VIDEO_LIMITS = FileLimits(formats=("mp4", "mov"), max_bytes=100 * MB, min_seconds=2, max_seconds=30,
                          min_side=240, max_side=4096)  # sides: choice
# The aggregator's docs audio limits (wav/mp3, 3-30 s, <= 15 MB), used for reference_voice and audio_url.
AUDIO_LIMITS = FileLimits(formats=("wav", "mp3"), max_bytes=15 * MB, min_seconds=1, max_seconds=30)
# The aggregator docs' own file rules for wan26_r2v: videos 3-30 s, audio_url wav/mp3 3-30 s <= 15 MB.
VIDEO_LIMITS_3_30 = replace(VIDEO_LIMITS, min_seconds=3)
AUDIO_LIMITS_3_30 = replace(AUDIO_LIMITS, min_seconds=3)


@dataclass(frozen=True)
class Price:
    """USD per output second; input seconds are billed at the same rate (choice)."""

    audio: float
    silent: float


@dataclass(frozen=True)
class ModelSpec:
    """Everything validation needs to know about one model."""

    name: str
    family: Literal["wan2.6", "wan2.7"]
    regions: tuple[str, ...]
    # How references arrive on the wire of the DashScope dialect.
    input_style: Literal["reference_urls", "media"]
    max_images: int
    max_videos: int
    max_total: int
    min_total: int
    max_first_frames: int
    voice_allowed: bool
    # Sizes: either explicit W*H strings (wan2.6) or resolution + ratio (wan2.7).
    sizes: tuple[str, ...] = ()
    default_size: str | None = None
    resolutions: tuple[str, ...] = ()
    ratios: tuple[str, ...] = ()
    default_resolution: str | None = None
    default_ratio: str | None = None
    # Durations per region (the wan2.6-r2v guide: the Global region offers 5 s or 10 s only).
    durations: dict[str, tuple[int, ...]] = field(default_factory=dict)
    default_duration: int = 5
    silent_allowed: bool = False
    default_audio: bool = True
    shot_types: tuple[str, ...] = ("single", "multi")
    default_shot_type: str = "single"
    default_watermark: bool = False
    default_prompt_extend: bool = True
    max_prompt_chars: int = 1500
    max_negative_prompt_chars: int = 500
    min_seed: int = 0
    max_seed: int = 2147483647
    image: FileLimits = IMAGE_LIMITS
    video: FileLimits = VIDEO_LIMITS
    voice: FileLimits = AUDIO_LIMITS
    soundtrack: FileLimits = AUDIO_LIMITS
    soundtrack_allowed: bool = False
    # Billing: the 5 s input cap is split over all references (the wan2.6-r2v guide) or over videos only
    # (the wan2.7-r2v guide).
    input_cap_seconds: float = 5.0
    input_split_by: Literal["references", "videos"] = "references"
    prices: dict[int, Price] = field(default_factory=dict)
    # What a prompt over max_prompt_chars gets: refused (DashScope) or truncated (the aggregator's docs).
    prompt_overflow: Literal["refuse", "truncate"] = "refuse"
    # The aggregator's docs: shot_type "only takes effect when prompt_extend: true"; otherwise the prompt decides.
    shot_type_needs_prompt_extend: bool = False
    # The DashScope model an engine that forwards upstream asks for (None: this entry's own name).
    upstream_model: str | None = None

    def durations_for(self, region: str) -> tuple[int, ...]:
        return self.durations.get(region) or self.durations["*"]

    def size_table(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for table in (SIZES_720P, SIZES_1080P):
            for w, h in table.values():
                out[f"{w}*{h}"] = (w, h)
        return {k: v for k, v in out.items() if k in self.sizes}


_WAN26_SIZES = tuple(f"{w}*{h}" for t in (SIZES_720P, SIZES_1080P) for (w, h) in t.values())
_RANGE_2_10 = tuple(range(2, 11))

# Prices: choice, USD per second, shaped like the public price list (1080P > 720P; silent cheaper).
_PRICES_26 = {720: Price(audio=0.10, silent=0.10), 1080: Price(audio=0.15, silent=0.15)}
_PRICES_26_FLASH = {720: Price(audio=0.05, silent=0.025), 1080: Price(audio=0.075, silent=0.0375)}
_PRICES_27 = {720: Price(audio=0.10, silent=0.10), 1080: Price(audio=0.15, silent=0.15)}

REGISTRY: dict[str, ModelSpec] = {
    "wan2.6-r2v": ModelSpec(
        name="wan2.6-r2v",
        family="wan2.6",
        regions=("intl", "cn", "us"),
        input_style="reference_urls",
        max_images=5, max_videos=3, max_total=5, min_total=1, max_first_frames=0, voice_allowed=False,
        sizes=_WAN26_SIZES, default_size="1920*1080",
        durations={"*": _RANGE_2_10, "us": (5, 10)},
        silent_allowed=False,
        prices=_PRICES_26,
    ),
    "wan2.6-r2v-flash": ModelSpec(
        name="wan2.6-r2v-flash",
        family="wan2.6",
        regions=("intl", "cn"),
        input_style="reference_urls",
        max_images=5, max_videos=3, max_total=5, min_total=1, max_first_frames=0, voice_allowed=False,
        sizes=_WAN26_SIZES, default_size="1920*1080",
        durations={"*": _RANGE_2_10},
        silent_allowed=True,
        prices=_PRICES_26_FLASH,
    ),
    "wan2.7-r2v": ModelSpec(
        name="wan2.7-r2v",
        family="wan2.7",
        regions=("intl", "cn"),  # choice: the wan2.7-r2v guide names no region table
        input_style="media",
        # The wan2.7-r2v guide: up to five images, up to five videos, at most five in total; one first frame.
        max_images=5, max_videos=5, max_total=5, min_total=1, max_first_frames=1, voice_allowed=True,
        resolutions=("720P", "1080P"), ratios=("16:9", "9:16", "1:1", "4:3", "3:4"),
        default_resolution="1080P", default_ratio="16:9",
        durations={"*": tuple(range(2, 16))},
        silent_allowed=False,
        max_prompt_chars=5000,  # choice: long storyboard prompts are the point of wan2.7
        input_split_by="videos",
        prices=_PRICES_27,
    ),
}


# The aggregator's wan26_r2v (the aggregator's docs): wan2.6-r2v under that document's own rules. It bills
# "unit price (based on resolution) x duration", so input videos are not billed (cap 0).
REGISTRY["wan26_r2v"] = ModelSpec(
    name="wan26_r2v",
    family="wan2.6",
    regions=("intl", "cn", "us"),  # choice: the aggregator's docs names no region
    input_style="reference_urls",
    max_images=5, max_videos=3, max_total=5, min_total=1, max_first_frames=0, voice_allowed=False,
    sizes=_WAN26_SIZES, default_size="1920*1080",
    durations={"*": tuple(range(2, 16))},
    silent_allowed=True,
    video=VIDEO_LIMITS_3_30,
    soundtrack=AUDIO_LIMITS_3_30,
    soundtrack_allowed=True,
    prompt_overflow="truncate",
    shot_type_needs_prompt_extend=True,
    input_cap_seconds=0.0,
    prices=_PRICES_26,
    upstream_model="wan2.6-r2v",
)

# The models each dialect offers, under that dialect's own rules. An entry may be a
# registry model as is, or a registry model narrowed by the dialect's document; its ``name`` stays
# the registry's, so the worker fetches, renders and bills it as that model.
DIALECT_MODELS: dict[str, dict[str, ModelSpec]] = {
    # The Model Studio guides: DashScope's own models.
    "dashscope": {name: REGISTRY[name] for name in ("wan2.6-r2v", "wan2.6-r2v-flash", "wan2.7-r2v")},
    # The aggregator's docs: one model.
    "aggregator": {"wan26_r2v": REGISTRY["wan26_r2v"]},
    # The gateway's docs: wan2.6-r2v only; reference videos only (1-3); duration 5 or 10.
    "gateway": {"wan2.6-r2v": replace(REGISTRY["wan2.6-r2v"], max_images=0, max_total=3,
                                      durations={"*": (5, 10)})},
    # openr2v's OpenAI-style /v1/videos: the three DashScope models as the registry states them.
    "openai": {name: REGISTRY[name] for name in ("wan2.6-r2v", "wan2.6-r2v-flash", "wan2.7-r2v")},
}


def get_model(name: str) -> ModelSpec | None:
    return REGISTRY.get(name)


def dialect_model(dialect: str, name: str) -> ModelSpec | None:
    """The spec a dialect validates ``name`` against, or None if the dialect does not offer it."""
    return DIALECT_MODELS.get(dialect, {}).get(name)


def parse_price_table(data: Mapping[str, Any]) -> dict[str, tuple[dict[int, Price], float]]:
    """``{model: {"720": {"audio": usd, "silent": usd}, "1080": {...}, "discount": fraction}}``.

    Returns ``{model: ({tier: Price}, discount fraction)}``; raises ValueError naming the bad entry.
    """
    out: dict[str, tuple[dict[int, Price], float]] = {}
    for model, entry in data.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"price table: {model!r} must map tiers to prices")
        tiers: dict[int, Price] = {}
        discount = float(entry.get("discount", 0.0))
        if not 0.0 <= discount <= 1.0:
            raise ValueError(f"price table: {model!r} discount must be a fraction from 0 to 1")
        for tier, price in entry.items():
            if tier == "discount":
                continue
            if not str(tier).isdigit() or not isinstance(price, Mapping):
                raise ValueError(f"price table: {model!r} tier {tier!r} must be like \"720\": {{\"audio\": ...}}")
            audio = float(price["audio"])
            tiers[int(tier)] = Price(audio=audio, silent=float(price.get("silent", audio)))
        out[str(model)] = (tiers, discount)
    return out
