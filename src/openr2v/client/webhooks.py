"""Verify openr2v webhook signatures on the receiving side (stdlib only).

Each delivery carries ``X-OpenR2V-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256 over ``f"{t}.".encode() + body`` with the webhook secret. Checking ``t`` against
the clock bounds how long a captured delivery can be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

__all__ = ["SIGNATURE_HEADER", "WebhookVerificationError", "sign", "verify"]

SIGNATURE_HEADER = "X-OpenR2V-Signature"


class WebhookVerificationError(ValueError):
    """The signature is missing, malformed, wrong, or too old."""


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The header value a server sends for ``body`` at ``timestamp``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str | bytes, body: bytes, header: str | None, *, tolerance: float = 300.0,
           now: float | None = None) -> dict[str, Any]:
    """Check a delivery; return its JSON payload, or raise ``WebhookVerificationError``.

    ``body`` must be the raw request bytes (re-serialized JSON would not match).
    """
    if not header:
        raise WebhookVerificationError(f"no {SIGNATURE_HEADER} header")
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        raise WebhookVerificationError("the signature has no valid t= timestamp") from None
    expected = sign(secret, body, timestamp).rsplit("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, v) for v in fields.get("v1", [])):
        raise WebhookVerificationError("the signature does not match the body")
    if tolerance and abs((now if now is not None else time.time()) - timestamp) > tolerance:
        raise WebhookVerificationError(f"the signature is older than {tolerance:g} s")
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return payload
