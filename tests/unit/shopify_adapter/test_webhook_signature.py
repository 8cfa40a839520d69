"""HMAC verification of Shopify webhooks: Shopify's own vector, rotation, tampering."""

from __future__ import annotations

import json
from pathlib import Path

from services.shopify_adapter.api.webhook import verify_signature

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "shopify_adapter"


def _vector() -> dict:
    return json.loads((FIXTURES / "shopify-api-js_webhook_hmac_vector.json").read_text())


def test_shopifys_published_vector_verifies_against_the_raw_body_bytes():
    vector = _vector()
    body = (FIXTURES / "shopify-api-js_webhook_rawBody.txt").read_bytes()

    matched = verify_signature(body, vector["x_shopify_hmac_sha256"], [vector["secret"]])

    assert body == b'{"foo": "bar"}'
    assert matched == 1


def test_during_rotation_the_old_secret_still_verifies_and_is_reported_second():
    vector = _vector()
    body = vector["raw_body"].encode()

    matched = verify_signature(body, vector["x_shopify_hmac_sha256"], ["the_new_secret", vector["secret"]])

    assert matched == 2


def test_a_changed_byte_a_wrong_secret_or_no_header_never_verifies():
    vector = _vector()
    body = vector["raw_body"].encode()

    assert verify_signature(body + b" ", vector["x_shopify_hmac_sha256"], [vector["secret"]]) is None
    assert verify_signature(body, vector["x_shopify_hmac_sha256"], ["another_secret"]) is None
    assert verify_signature(body, None, [vector["secret"]]) is None
    assert verify_signature(body, "", [vector["secret"]]) is None
    assert verify_signature(body, vector["x_shopify_hmac_sha256"], []) is None
