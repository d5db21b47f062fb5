"""Settings, read from ``OPENR2V_*`` environment variables (and CLI flags that override them)."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEPRECATED_ENV", "Settings", "deprecated_env_values", "parse_pairs"]

log = logging.getLogger("openr2v.config")

# Old environment names that still work, each with the name that replaced it. A deployment written for
# an older release keeps running; start-up logs a warning per old name it finds.
DEPRECATED_ENV: dict[str, str] = {
    "OPENR2V_WORKERS": "OPENR2V_RENDER_THREADS",
}


def deprecated_env_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Settings fields given by a deprecated variable whose new name is unset; warns once per old name."""
    env = os.environ if environ is None else environ
    values = {}
    for old, new in DEPRECATED_ENV.items():
        if old not in env:
            continue
        message = f"{old} is deprecated; use {new}"
        if new in env:
            message += f" ({new} is set and wins)"
        else:
            values[new.removeprefix("OPENR2V_").lower()] = env[old]
        warnings.warn(message, DeprecationWarning, stacklevel=3)
        log.warning(message)
    return values


def parse_pairs(text: str, setting: str, shape: str = "model=value") -> dict[str, str]:
    """``"a=x,b=y"`` -> ``{"a": "x", "b": "y"}`` (the per-model settings' syntax); raises ValueError naming
    ``setting`` for an item that is not ``shape`` or a key given twice. Callers check the names themselves."""
    pairs: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = (side.strip() for side in item.partition("="))
        if not sep or not key or not value:
            raise ValueError(f"{setting}: {item!r} is not {shape}")
        if key in pairs:
            raise ValueError(f"{setting}: {key} is given twice")
        pairs[key] = value
    return pairs


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENR2V_", extra="ignore")

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**deprecated_env_values(), **values})

    data_dir: Path = Path(".data")
    """Where the embedded default keeps its SQLite store, uploads, outputs and caches."""

    region: str = "intl"
    """The region this server stands for: intl (Singapore), cn (Beijing) or us (Virginia)."""

    api_keys: str = ""
    """Comma-separated ``key:region`` pairs, e.g. ``sk-a:intl,sk-b:cn``. Empty: one key is created
    (``<data_dir>/api_key``) and printed at start-up."""

    database_url: str | None = None
    """SQLAlchemy URL of the task store; default ``sqlite:///<data_dir>/openr2v.db`` (WAL)."""

    public_url: str | None = None
    """Base URL clients reach this server at, used in video and upload URLs; default: from the request."""

    render_threads: int = 2
    """Render threads in this process (the embedded default's worker pool); 0 runs the API alone (tasks
    stay PENDING until an ``openr2v worker`` node takes them). Deprecated alias: ``OPENR2V_WORKERS``."""

    engine: str = "compositor"
    """Default engine for every model: compositor (the CPU previz) | vace | dashscope | videos."""

    engine_overrides: str = ""
    """Per-model engines, ``model=engine`` pairs separated by commas."""

    retention_seconds: int = 24 * 3600
    """How long tasks and their outputs live; afterwards a task reads UNKNOWN and its file is gone."""

    url_ttl_seconds: int = 24 * 3600
    """Lifetime of a signed video URL (never longer than the retention)."""

    secret_key: str | None = None
    """HMAC key that signs video URLs and upload policies; default: generated once into the data dir."""

    allow_private_urls: bool = False
    """Allow reference URLs that resolve to loopback, private, link-local or metadata addresses."""

    fetch_allow_hosts: str = ""
    """Hosts references may reach although they are private (an intranet media server), as the URL
    spells them: comma-separated ``host`` (any port) or ``host:port`` (``media.lan, 10.0.0.5:8080,
    [fd00::1]:80``). Only these hops skip the address check; a redirect from them to anywhere else is
    checked as usual. A malformed entry stops the server at start-up."""

    fetch_max_seconds: float = 60.0
    """Time cap for downloading one reference."""

    fetch_connect_seconds: float = 10.0
    """Connect timeout for one reference."""

    submit_rate_per_second: float = 20.0
    """Per-key submit rate (token bucket refill); 0 disables the cap."""

    submit_burst: int = 40
    """Per-key burst of submits allowed before the rate applies."""

    max_concurrent_tasks: int = 50
    """Per-key cap on tasks PENDING or RUNNING; 0 disables the cap."""

    max_attempts: int = 2
    """Times a task may be started; one a crash left RUNNING is re-queued until this is reached."""

    tts: str = ""
    """Speech engine of the soundtrack: empty or ``piper`` (Piper's neural voice when the ``voices`` extra is
    installed, else eSpeak NG) or ``espeak`` (eSpeak NG always). ``media/tts.py`` reads the variable itself;
    docs/voices.md compares the two."""

    native_logs: bool = False
    """Let native libraries (TensorFlow Lite, absl, glog inside mediapipe) print their start-up chatter to
    stderr; off, it is muted while their graphs start (``native_logs.py`` reads the variable itself)."""

    x264_preset: str = "veryfast"
    """libx264 preset of the compositor's encoder (and the vace engine's)."""

    parallel_shots: bool = False
    """Render a multi-shot task's shots side by side (the compositor): each shot drawn and encoded in
    isolation, ``shot_workers`` at a time, then joined with hard cuts (a keyframe at each cut). The bytes
    are the same whatever the number of workers (docs/engines/videos.md, "Parallel shots")."""

    shot_workers: int = 2
    """Shots rendered at once when ``parallel_shots`` is on."""

    # -- the vace engine (docs/engines/vace.md; engines/vace/) -----------------------------------

    vace_model: Path | None = None
    """Local folder of a VACE checkpoint in diffusers format (``Wan2.1-VACE-1.3B-diffusers``,
    ``-14B-diffusers``, or a two-expert Wan2.2-VACE-Fun-A14B one with ``transformer_2`` and
    ``boundary_ratio``; holding ``model_index.json``). Required by the ``vace`` engine; it is only ever
    read from disk (``local_files_only``, the Hugging Face offline switches set), never downloaded."""

    vace_device: str = "auto"
    """Torch device of the vace pipeline: ``auto`` (``cuda`` when available, else ``cpu``), ``cuda``,
    ``cuda:1``, ``cpu``. With several GPUs, either one worker per GPU (``CUDA_VISIBLE_DEVICES``: the most
    tasks an hour) or ``VACE_DEVICES`` (one task's shots side by side: each task sooner)."""

    vace_devices: str = ""
    """Several devices for one worker, comma-separated (``cuda:0,cuda:1,cuda:2,cuda:3``; ``all``: every GPU
    torch sees; ``cpu,cpu`` works too): a full pipeline (same recipe, LoRAs, cache, compile) is loaded on
    each at start-up, and a multi-shot task's shots render side by side, one device per shot at a time,
    joined with hard cuts: the same bytes as on one device. Each GPU holds a whole copy of the weights.
    Empty: ``VACE_DEVICE`` alone. Setting both (``VACE_DEVICE`` other than ``auto``) refuses to start
    (docs/engines/vace.md, "Several GPUs in one box")."""

    vace_dtype: str = "auto"
    """Weights dtype: ``auto`` (bfloat16 on CUDA, float32 on CPU), ``bfloat16``, ``float16`` or ``float32``.
    The VAE always runs in float32, as Wan's own examples load it."""

    vace_offload: str = "none"
    """GPU memory saving: ``none`` (everything on the device), ``model`` (diffusers model CPU offload: one
    component on the GPU at a time) or ``group`` (leaf-level group offload with CUDA streams: least GPU
    memory, slower). Ignored on CPU."""

    vace_vae_tiling: bool = False
    """Decode latents in tiles (less GPU memory at 720p, slightly slower)."""

    vace_max_area: int = 832 * 480
    """Pixel area the model renders at: the contract's aspect ratio at about this area, sides multiples of
    16, then scaled and centre-cropped to the contract size (recorded in the task's render notes). Wan's
    sizes: 832*480 (1.3B and 14B), 1280*720 (14B only)."""

    vace_recipe: str = "default"
    """A named set of sampling settings (``engines/vace/recipes.py``): ``default`` (Wan's 50 steps, guide
    5), ``fast`` (lightx2v's 4-step distillation LoRA, guide 1), ``causvid``, ``cached``. Each of
    ``STEPS``, ``GUIDANCE_SCALE``, ``FLOW_SHIFT``, ``SCHEDULER``, ``LORAS``, ``CACHE`` and
    ``CACHE_THRESHOLD`` set explicitly wins over the recipe's. Per model: ``VACE_RECIPE_OVERRIDES``."""

    vace_recipe_overrides: str = ""
    """Per-model recipes, ``model=recipe`` pairs separated by commas (``wan2.6-r2v-flash=fast``); the other
    models get ``VACE_RECIPE``. One loaded pipeline serves them all: every recipe's LoRAs are loaded at
    start-up and each task switches to its model's LoRAs, scheduler, block cache, steps and guidance.
    The explicit ``VACE_STEPS`` ... ``VACE_CACHE_THRESHOLD`` settings win over these recipes too. A model name the
    registry does not know, or an unknown recipe, stops start-up."""

    vace_steps: int | None = None
    """Denoising steps per generation; unset: the recipe's (Wan's own default for VACE is 50)."""

    vace_guidance_scale: float | None = None
    """Classifier-free guidance scale; 1.0 or less is one transformer pass a step (no negative pass).
    Unset: the recipe's (Wan's default 5.0)."""

    vace_flow_shift: float | None = None
    """Flow-matching shift of the scheduler; unset: the recipe's, else the checkpoint's scheduler config
    (Wan's own VACE script uses 16)."""

    vace_scheduler: str | None = None
    """Scheduler class by diffusers' name: ``UniPCMultistepScheduler``, ``FlowMatchEulerDiscreteScheduler``
    or ``DPMSolverMultistepScheduler`` (the multistep ones in their flow-matching mode). Unset: the
    recipe's, else the checkpoint's."""

    vace_loras: str | None = None
    """LoRA files, comma-separated, each ``[high:|low:]path[:weight]`` (weight 1.0 when omitted; ``high:``
    / ``low:`` load it into one expert of a two-expert Wan2.2 model, else into every expert). Relative
    paths are read from ``VACE_LORA_DIR``. The original Wan key layout (``diffusion_model.blocks.N...
    lora_down``/``lora_A``, as lightx2v and Kijai publish them) and diffusers' own both load. Unset: the
    recipe's; empty: none."""

    vace_lora_dir: Path | None = None
    """Folder of relative LoRA paths (the recipes name their files); default ``<VACE_MODEL>/loras``."""

    vace_cache: str | None = None
    """Transformer block cache by name: ``none``, ``first_block`` (diffusers' FirstBlockCache),
    ``taylorseer`` (TaylorSeer, lite mode) or ``pab`` (Pyramid Attention Broadcast). Unset: the recipe's."""

    vace_cache_threshold: float | None = None
    """The cache's knob: ``first_block`` the residual difference below which the other blocks are skipped
    (0.05); ``taylorseer`` the steps between full computations (2); ``pab`` the attention skip range in
    steps (2). Unset: the recipe's, else those defaults."""

    vace_compile: str = "off"
    """``torch.compile`` of the transformer's repeated blocks (diffusers' ``compile_repeated_blocks``):
    ``off``, ``on`` (mode default), ``max-autotune-no-cudagraphs``, ``max-autotune``, or ``eager``
    (dynamo traces, no code generation: checks the wiring, no speed-up). The first steps compile."""

    vace_max_frames: int = 81
    """Frames (at 16 fps, of the form 4k+1) the model renders in one call; a longer shot is rendered in
    parts, each continuing from the last frame of the one before (81 = Wan's trained length, ~5 s)."""

    vace_label_template: str = "the {nth}{noun}"
    """How the prompt's labels (``character1``, ``Image 2``) are rewritten for the model, which sees the
    references but not their names. Fields: ``{noun}`` (person, character, object or place, from the
    casting), ``{nth}`` (``first ``, ``second ``... among references of that noun, empty when there is
    only one), ``{n}`` (position among all references), ``{label}`` (the label itself: ``{label}`` keeps
    the prompt unchanged)."""

    vace_negative_prompt: str = (
        "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
        "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, poorly "
        "drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, messy "
        "background, three legs, many people in the background, walking backwards")
    """Negative prompt used when a request sends none (Wan's default, in English)."""

    vace_interpolation: str = "blend"
    """16 fps to 30 fps: ``blend`` (mix the two nearest model frames: smooth) or ``nearest`` (repeat frames:
    crisp, slight judder)."""

    upload_ttl_seconds: int = 48 * 3600
    """How long an uploaded ``oss://`` object stays usable (the SDK's temporary uploads live 48 h)."""

    max_upload_bytes: int = Field(default=100 * 1024 * 1024)
    """Largest single upload accepted by the upload target."""

    prices_file: Path | None = None
    """JSON price table quoted by dialects that show a cost (the aggregator's ``usage.cost``):
    ``{"wan26_r2v": {"720": {"audio": 0.10, "silent": 0.05}, "1080": {...}, "discount": 0.1}}``,
    USD per billed second by model and tier, ``discount`` a fraction. Models it does not list use
    the registry's prices (``domain/models.py``). Read again when the file changes."""

    webhook_secret: str | None = None
    """The secret signing every webhook (docs/webhooks.md): ``whsec_<base64>`` as Standard Webhooks
    libraries take it (any other string is used as its UTF-8 bytes). Unset: each API key gets its own
    secret derived from ``secret_key``, readable by that key at ``GET /api/v1/openr2v/webhook_secret``."""

    webhook_max_attempts: int = 6
    """Attempts to deliver one webhook event (the first included); after the last it is dead: listed
    at ``GET /api/v1/openr2v/webhooks/deliveries?state=dead`` until its owner redelivers it."""

    webhook_backoff_seconds: float = 2.0
    """Wait before the first retry of a webhook; doubled after each failed attempt."""

    webhook_max_backoff_seconds: float = 600.0
    """Longest wait between two attempts of a webhook."""

    webhook_timeout_seconds: float = 10.0
    """Time a webhook receiver has to answer one delivery."""

    webhook_poll_seconds: float = 1.0
    """How often each node's webhook dispatcher looks for due deliveries (a status change made in the
    same process wakes it at once)."""

    webhook_threads: int = 2
    """Webhook delivery threads per process (API nodes and workers)."""

    prompt_llm_url: str | None = None
    """OpenAI-compatible chat endpoint that rewrites prompts when ``prompt_extend`` is true: a base URL
    (``http://host:8000/v1``, to which ``/chat/completions`` is added) or the full ``.../chat/completions``
    URL. Called by the worker before rendering, never at submit. Unset, or when the call fails, times
    out or answers a prompt that does not parse back to a plan keeping the request's dialogue: the
    rule-based rewrite (the prompt in its explicit shot form) is used."""

    prompt_llm_model: str = "default"
    """Model name sent to ``prompt_llm_url`` (most servers require the name they serve)."""

    prompt_llm_api_key: str | None = None
    """Bearer key for ``prompt_llm_url``, if it wants one."""

    prompt_llm_timeout_seconds: float = 20.0
    """Time the prompt LLM has to answer before the rule-based rewrite is used instead."""

    # -- quotas (docs/quotas.md; tasks/quotas.py) ------------------------------------------------

    quotas: str = ""
    """Per-key quotas (docs/quotas.md): a JSON object, or the path of a JSON file, keyed by API key
    (``"default"`` for the others), each ``{free_seconds, seconds_per_day, seconds_per_month,
    seconds_total, cost_usd_per_day, cost_usd_per_month, cost_usd_total}``. Empty: no limits."""

    admin_key: str | None = None
    """Bearer key of the admin endpoints (``/api/v1/openr2v/admin/...``: quotas at run time). Unset: they
    answer 401."""

    # -- moderation (docs/reliability.md; tasks/moderation.py) ---------------------------------

    moderation_blocklist: str = ""
    """Words and phrases refused as ``DataInspectionFailed``: comma-separated, or ``@/path/to/file``
    for a UTF-8 file with one per line (blank lines and ``#`` comments ignored; read at start-up).
    They match whole words, case- and accent-insensitively, across any spacing or punctuation between
    the words of a phrase and across single letters spelt apart (``a.s.s``); ``ass`` never flags
    ``class``. Phrases in scripts written without spaces (Chinese, Japanese, Thai) match anywhere.
    Checked at submit (prompt, negative prompt) and after rendering (the rewritten prompt, captions,
    spoken dialogue)."""

    moderation_regex: str | None = None
    """A Python regular expression refused as ``DataInspectionFailed`` wherever ``moderation_blocklist``
    is checked, searched case-insensitively in the text as sent (invisible characters removed);
    ``@/path/to/file`` reads one pattern per line. An invalid pattern stops the server at start-up."""

    protected_names: str = ""
    """Names of protected characters, brands or works (``Mickey Mouse,Spider-Man``, or ``@/path/to/file``)
    refused as ``IPInfringementSuspect``; they match like ``moderation_blocklist``, which is checked first."""

    moderation_hook: str | None = None
    """``package.module:callable`` called with a ``openr2v.tasks.moderation.Content`` at submit (the
    prompt, the negative prompt, the request) and after rendering (the MP4's path, the rewritten prompt,
    captions and dialogue, the request). It returns None (or False) to pass; True, a message, or a
    ``DataInspectionFailed`` / ``IPInfringementSuspect`` (returned or raised) to refuse. If it fails
    otherwise, a submit is accepted and checked again by the worker before rendering; a check that fails
    in the worker fails the task as ``InternalError`` (fail closed: nothing is kept or billed)."""

    moderation_hook_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long one call of ``moderation_hook`` may take; past it the check counts as failed (the hook's
    thread is left to finish on its own), so a hung classifier cannot hold a submit or a worker forever."""

    # -- scale-out (docs/deployment.md; deploy/) ----------------------------------------------

    queue: str = "local"
    """How tasks reach workers: ``local`` (threads in this process; ``openr2v worker`` processes poll
    the store) or ``celery`` (a Celery broker at ``broker_url``; the API then never renders)."""

    broker_url: str | None = None
    """Celery broker URL, e.g. ``redis://127.0.0.1:6379/0``; required with ``queue=celery``."""

    celery_queue: str = "openr2v"
    """Name of the Celery queue tasks are published to and workers consume."""

    visibility_timeout_seconds: int = 6 * 3600
    """Redis visibility timeout: an unacknowledged message is redelivered after this long. Keep it
    longer than the longest render, or a slow render is started twice (the second start is a no-op
    while the first holds its lease, but it occupies a worker)."""

    lease_seconds: float = 60.0
    """A RUNNING task whose worker has not renewed its heartbeat for this long is considered lost:
    re-queued (up to ``max_attempts``), then FAILED. Workers renew every third of it."""

    reaper_interval_seconds: float = 10.0
    """How often API nodes and workers look for lost RUNNING tasks and PENDING tasks whose wake-up
    the broker lost."""

    requeue_pending_seconds: float = 30.0
    """A PENDING task published longer ago than this, whose message the broker no longer holds
    (e.g. a restarted Redis that keeps nothing on disk), is published again."""

    storage_url: str | None = None
    """Where outputs and uploads live: unset for ``<data_dir>/objects`` (signed ``/files/`` URLs), or
    ``s3://bucket/prefix`` for S3-compatible storage (presigned URLs)."""

    s3_endpoint_url: str | None = None
    """S3 endpoint for ``storage_url=s3://...`` (MinIO, Ceph, moto, ...); unset: AWS."""

    s3_public_endpoint_url: str | None = None
    """Endpoint written into presigned URLs, when clients reach S3 at another address than the
    servers do; default ``s3_endpoint_url``."""

    s3_region: str | None = None
    """S3 region (``us-east-1`` when unset)."""

    s3_access_key_id: str | None = None
    """S3 access key; unset: boto3's usual chain (``AWS_ACCESS_KEY_ID``, instance roles, ...)."""

    s3_secret_access_key: str | None = None
    """S3 secret key (with ``s3_access_key_id``)."""

    s3_addressing_style: str = "auto"
    """``path`` for servers without virtual-hosted buckets (most self-hosted ones), ``virtual`` or ``auto``."""

    storage_cache_bytes: int = 2 * 1024**3
    """Local cache of S3 objects that workers read (uploads used as references, outputs served by the
    API): the least recently used files are removed beyond this size."""

    # -- upstream mode: the ``dashscope`` engine (docs/engines/dashscope.md) ----------------------

    upstream_url: str | None = None
    """Where the ``dashscope`` engine forwards tasks: Alibaba Cloud's API root
    (``https://dashscope-intl.aliyuncs.com/api/v1``) or any server speaking it (another openr2v:
    ``http://host:8000``). Required when an engine is ``dashscope``."""

    upstream_api_key: str | None = None
    """The key this server uses upstream (clients use their own openr2v keys)."""

    upstream_workspace: str | None = None
    """Optional ``X-DashScope-WorkSpace`` sent upstream."""

    upstream_models: str = ""
    """``local=upstream`` model pairs separated by commas, e.g. ``wan2.6-r2v=wan2.6-r2v-flash``; a model
    not listed asks for the registry's ``upstream_model`` (the aggregator's ``wan26_r2v`` ->
    ``wan2.6-r2v``) or its own name. Both sides must take references the same way (``reference_urls``
    or ``media``)."""

    upstream_forward_urls: bool = False
    """Send public http(s) references to the upstream as their URLs instead of uploading the copy the
    worker fetched (uploads, data URIs and other local files are always uploaded)."""

    upstream_poll_seconds: float = 2.0
    """First interval between polls of an upstream task; it doubles every third poll."""

    upstream_max_poll_seconds: float = 15.0
    """Longest interval between polls (and between retries of a throttled submit)."""

    upstream_timeout_seconds: float = 6 * 3600
    """An upstream task not finished this long after it was submitted is canceled there and FAILED here."""

    upstream_submit_patience_seconds: float = 600.0
    """How long a submit the upstream refuses with 429 or 503 (nothing created) keeps being retried
    before the task FAILS with the upstream's code."""

    upstream_flavor: str = "vllm-omni"
    """The ``videos`` engine's upstream (an OpenAI-style ``/v1/videos`` server at OPENR2V_UPSTREAM_URL):
    ``vllm-omni`` | ``sglang`` | ``fastvideo`` | ``openr2v`` (docs/engines/videos.md)."""

    upstream_shots: str = "whole"
    """How the ``videos`` engine sends the shot plan: ``whole`` (one upstream video for the prompt) or
    ``each`` (one upstream video per shot, in parallel, joined here with hard cuts)."""

    # -- operations (docs/operations/metrics.md) ---------------------------------------------

    log_format: Literal["text", "json"] = "text"
    """``text``, or ``json``: one JSON object a line with ``time``, ``level``, ``logger``, ``message``,
    and the ``request_id`` and ``task_id`` the line is about."""

    metrics_port: int | None = None
    """``openr2v worker``: serve this process's Prometheus metrics at ``http://<host>:<port>/metrics``
    (API nodes serve theirs at ``GET /metrics`` on the API port)."""

    def resolved_database_url(self) -> str:
        url = self.database_url or f"sqlite:///{(self.data_dir / 'openr2v.db').resolve()}"
        # psycopg 3 is the PostgreSQL driver we ship (the `scale` extra); plain URLs would pick psycopg2.
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+psycopg://" + url[len(plain):]
        return url
