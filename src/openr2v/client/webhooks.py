"""Sign and verify openr2v webhooks (stdlib only; the server signs with these functions too).

Each delivery is signed as the Standard Webhooks spec says (https://www.standardwebhooks.com):

    webhook-id:        the event's id, the same on every retry (deduplicate on it)
    webhook-timestamp: unix seconds of this attempt
    webhook-signature: v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">

keyed with the secret ``whsec_<base64 key>`` (the key is the base64-decoded part). Any Standard
Webhooks library verifies them; ``verify`` here does the same without one.

Deprecated, sent for one more release: ``X-OpenR2V-Signature: t=<ts>,v1=<hex HMAC-SHA256 over
"<ts>." + body>`` keyed with the secret string itself as UTF-8 (``legacy_secret`` of the
webhook_secret endpoint).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["SIGNATURE_HEADER", "STANDARD_HEADERS", "WebhookVerificationError", "secret_key", "sign", "sign_standard",
           "verify"]

SIGNATURE_HEADER = "X-OpenR2V-Signature"
STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
SECRET_PREFIX = "whsec_"


class WebhookVerificationError(ValueError):
    """The signature is missing, malformed, wrong, or too old."""


def secret_key(secret: str | bytes) -> bytes:
    """The HMAC key of a Standard Webhooks secret: ``whsec_<base64>`` decoded; other strings as UTF-8."""
    if isinstance(secret, bytes):
        return secret
    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX):]
        try:  # unpadded base64 is common in the wild; the spec's own libraries take it too
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def sign_standard(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">``."""
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The deprecated ``X-OpenR2V-Signature`` value for ``body`` at ``timestamp``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str | bytes, body: bytes, headers: Mapping[str, str] | str | None, *, tolerance: float = 300.0,
           now: float | None = None) -> dict[str, Any]:
    """Check a delivery; return its JSON payload, or raise ``WebhookVerificationError``.

    ``headers``: the request's headers (the Standard Webhooks ones are checked; without them the
    deprecated ``X-OpenR2V-Signature``), or that one header's value. ``body`` must be the raw
    request bytes (re-serialized JSON would not match)."""
    if isinstance(headers, Mapping):
        lower = {k.lower(): v for k, v in headers.items()}
        if "webhook-signature" in lower:
            _verify_standard(secret, body, lower)
            timestamp = _int(lower.get("webhook-timestamp"), "webhook-timestamp")
        else:
            timestamp = _verify_legacy(secret, body, lower.get(SIGNATURE_HEADER.lower()))
    else:
        timestamp = _verify_legacy(secret, body, headers)
    if tolerance and abs((now if now is not None else time.time()) - timestamp) > tolerance:
        raise WebhookVerificationError(f"the signature is older than {tolerance:g} s")
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return payload


def _int(value: str | None, name: str) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise WebhookVerificationError(f"{name} is missing or not an integer") from None


def _verify_standard(secret: str | bytes, body: bytes, headers: Mapping[str, str]) -> None:
    msg_id = headers.get("webhook-id")
    if not msg_id:
        raise WebhookVerificationError("no webhook-id header")
    timestamp = _int(headers.get("webhook-timestamp"), "webhook-timestamp")
    expected = sign_standard(secret_key(secret), msg_id, timestamp, body).split(",", 1)[1]
    # Several space-separated signatures may be sent (key rotation); one match is enough.
    given = [s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
    if not any(hmac.compare_digest(expected, s) for s in given):
        raise WebhookVerificationError("the signature does not match the body")


def _verify_legacy(secret: str | bytes, body: bytes, header: str | None) -> int:
    if not header:
        raise WebhookVerificationError(f"no webhook-signature or {SIGNATURE_HEADER} header")
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
    return timestamp
