"""API keys: ``Authorization: Bearer <key>``, each key bound to a region and an owner.

A key of another region is refused exactly as an unknown key is: resources are isolated
between regions, and a cross-region call fails with InvalidApiKey.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from openr2v.domain.models import REGIONS
from openr2v.errors import InvalidApiKey

__all__ = ["KeyRing", "Principal", "parse_keys"]


@dataclass(frozen=True)
class Principal:
    owner: str  # a stable id derived from the key; the raw key is never stored
    region: str


def owner_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def parse_keys(spec: str) -> dict[str, str]:
    """``sk-a:intl,sk-b:cn`` -> {key: region}. A key without a region gets ``intl``."""
    keys: dict[str, str] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        key, _, region = item.rpartition(":") if ":" in item else (item, "", "intl")
        region = region or "intl"
        if region not in REGIONS:
            raise ValueError(f"OPENR2V_API_KEYS: region {region!r} of a key is not one of {', '.join(REGIONS)}")
        keys[key] = region
    return keys


class KeyRing:
    def __init__(self, keys: dict[str, str], server_region: str) -> None:
        self.keys = keys
        self.server_region = server_region

    @classmethod
    def from_settings(cls, api_keys: str, server_region: str, data_dir: Path) -> tuple[KeyRing, str | None]:
        """The key ring, plus a key created for this server when none was configured."""
        keys = parse_keys(api_keys)
        created = None
        if not keys:
            path = data_dir / "api_key"
            if path.exists():
                created = path.read_text().strip()
            else:
                created = "sk-" + secrets.token_hex(16)
                data_dir.mkdir(parents=True, exist_ok=True)
                path.write_text(created + "\n")
                path.chmod(0o600)
            keys = {created: server_region}
        return cls(keys, server_region), created

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.strip():
            raise InvalidApiKey("No API-key provided.")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else authorization.strip()
        region = self.keys.get(token)
        if region is None or region != self.server_region:
            # Cross-region keys fail like unknown keys: regions are isolated.
            raise InvalidApiKey("Invalid API-key provided.")
        return Principal(owner=owner_id(token), region=region)
