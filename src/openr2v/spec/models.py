"""The model registry: per model and region, what the model accepts.

Validation reads this table and nothing else; handlers hard-code no limit. Each value cites
its seed document; values the seeds leave open are openr2v's choices, marked ``choice`` and
listed in the README ("Choices where the documents are silent").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "FileLimits",
    "ModelSpec",
    "REGIONS",
    "REGISTRY",
    "Region",
    "SIZES_720P",
    "SIZES_1080P",
    "get_model",
    "ratio_size",
]

Region = Literal["intl", "cn", "us"]
REGIONS: dict[str, str] = {"intl": "Singapore", "cn": "Beijing", "us": "Virginia"}

# Seed 000 (API reference it links), 002 and 003: the ten sizes of the two tiers.
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

# Seed 001 ("Input images") and 002 ("Image Requirements").
IMAGE_LIMITS = FileLimits(formats=("jpeg", "jpg", "png", "bmp", "webp"), max_bytes=10 * MB,
                          min_side=360, max_side=2000)
# Seed 003 (2-30 s, <= 100 MB, MP4/MOV) for the DashScope wan2.6 family; 002 says 3-30 s for its dialect.
VIDEO_LIMITS = FileLimits(formats=("mp4", "mov"), max_bytes=100 * MB, min_seconds=2, max_seconds=30,
                          min_side=240, max_side=4096)  # sides: choice
# Seed 002 audio limits (wav/mp3, 3-30 s, <= 15 MB), used for reference_voice and audio_url.
AUDIO_LIMITS = FileLimits(formats=("wav", "mp3"), max_bytes=15 * MB, min_seconds=1, max_seconds=30)


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
    # Durations per region (seed 000: the Global region offers 5 s or 10 s only).
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
    # Billing: the 5 s input cap is split over all references (seed 000) or over videos only (seed 001).
    input_cap_seconds: float = 5.0
    input_split_by: Literal["references", "videos"] = "references"
    prices: dict[int, Price] = field(default_factory=dict)

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
        regions=("intl", "cn"),  # choice: seed 001 names no region table
        input_style="media",
        # Seed 001: up to five images, up to five videos, at most five in total; one first frame.
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


def get_model(name: str) -> ModelSpec | None:
    return REGISTRY.get(name)
