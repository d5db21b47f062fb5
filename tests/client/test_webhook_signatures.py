"""The SDK's webhook signatures agree with the Standard Webhooks spec's own library, both ways."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from openr2v.client import verify_webhook
from openr2v.client.webhooks import WebhookVerificationError, secret_key, sign_standard

BODY = b'{"event":"task.status","output":{"task_id":"t1","task_status":"SUCCEEDED"}}'
KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def headers(msg_id: str, ts: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_the_library_verifies_what_the_sdk_signs() -> None:
    ts = int(time.time())
    signed = headers("msg_1", ts, sign_standard(secret_key(SECRET), "msg_1", ts, BODY))
    assert Webhook(SECRET).verify(BODY, signed)["output"]["task_id"] == "t1"
    assert Webhook(SECRET.rstrip("=")).verify(BODY, signed)  # unpadded secrets mean the same key


def test_the_sdk_verifies_what_the_library_signs() -> None:
    ts = int(time.time())
    signature = Webhook(SECRET).sign("msg_2", datetime.fromtimestamp(ts, tz=UTC), BODY)
    assert verify_webhook(SECRET, BODY, headers("msg_2", ts, signature))["event"] == "task.status"
    assert verify_webhook(SECRET.rstrip("="), BODY, headers("msg_2", ts, f"v1,bogus {signature}"))  # rotation
    for bad in (headers("msg_3", ts, signature), headers("msg_2", ts + 1, signature)):  # id and time are signed
        with pytest.raises(WebhookVerificationError):
            verify_webhook(SECRET, BODY, bad)
    old = ts - 3600
    stale = headers("msg_2", old, Webhook(SECRET).sign("msg_2", datetime.fromtimestamp(old, tz=UTC), BODY))
    with pytest.raises(WebhookVerificationError, match="older"):
        verify_webhook(SECRET, BODY, stale)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, BODY, {"webhook-id": "msg_2"})
