"""Where a client connects and how it behaves: arguments first, then the environment."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

from openr2v import __version__
from openr2v.client.errors import InvalidRequestError
from openr2v.client.wire import USER_AGENT, normalize_base_url

__all__ = ["DEFAULT_BASE_URL", "ClientSettings", "env_api_key", "env_base_url"]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def env_base_url() -> str | None:
    return os.environ.get("OPENR2V_BASE_URL") or os.environ.get("DASHSCOPE_HTTP_BASE_URL") or None


def env_api_key() -> str | None:
    return os.environ.get("OPENR2V_API_KEY") or os.environ.get("DASHSCOPE_API_KEY") or None


@dataclass(frozen=True)
class ClientSettings:
    base_url: str  # the API root, ending in /api/v1
    api_key: str
    workspace: str | None = None
    timeout: float = 60.0
    max_retries: int = 3
    retry_backoff: float = 0.5
    poll_interval: float = 1.0
    max_poll_interval: float = 5.0
    live_events: bool = True

    @classmethod
    def resolve(cls, base_url: str | None, api_key: str | None, **kw: object) -> ClientSettings:
        key = api_key or env_api_key()
        if not key:
            # As the official SDK does: refuse before sending anything rather than answer 401 later.
            raise InvalidRequestError("No API key: pass api_key= or set OPENR2V_API_KEY (or DASHSCOPE_API_KEY).",
                                      code="NoApiKey")
        return cls(base_url=normalize_base_url(base_url or env_base_url() or DEFAULT_BASE_URL), api_key=key,
                   **kw)  # type: ignore[arg-type]

    def plain_headers(self) -> dict[str, str]:
        return {"User-Agent": f"{USER_AGENT}/{__version__} python/{platform.python_version()}"}

    def api_headers(self) -> dict[str, str]:
        headers = {**self.plain_headers(), "Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        if self.workspace:
            headers["X-DashScope-WorkSpace"] = self.workspace
        return headers
