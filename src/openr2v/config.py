"""Settings, read from ``OPENR2V_*`` environment variables (and CLI flags that override them)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENR2V_", extra="ignore")

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

    workers: int = 2
    """In-process render workers of the embedded default; 0 runs the API alone (tasks stay PENDING)."""

    engine: str = "compositor"
    """Default engine for every model: compositor | vace | dashscope."""

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

    x264_preset: str = "veryfast"
    """libx264 preset of the compositor's encoder."""

    upload_ttl_seconds: int = 48 * 3600
    """How long an uploaded ``oss://`` object stays usable (the SDK's temporary uploads live 48 h)."""

    max_upload_bytes: int = Field(default=100 * 1024 * 1024)
    """Largest single upload accepted by the upload target."""

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'openr2v.db').resolve()}"
