"""Standard Webhooks signatures as the 3PL signs them: `webhook-signature: v1,<base64
HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`, keyed by the subscription secret
without its `whsec_` prefix; several space-separated signatures may be sent during rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

MAX_SKEW_S = 300


def expected(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The signature value the 3PL computes."""
    key = secret.removeprefix("whsec_").encode()
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(
    secrets: Iterable[str], webhook_id: str, timestamp: str, signature_header: str, body: bytes, *, now: float
) -> bool:
    """True when any `v1` signature matches any secret and the timestamp is recent."""
    try:
        if abs(now - int(timestamp)) > MAX_SKEW_S:
            return False
    except ValueError:
        return False
    given = [s.split(",", 1)[1] for s in signature_header.split() if s.startswith("v1,")]
    for secret in secrets:
        want = expected(secret, webhook_id, timestamp, body)
        if any(hmac.compare_digest(want, g) for g in given):
            return True
    return False
