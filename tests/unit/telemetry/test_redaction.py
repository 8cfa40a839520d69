"""redact(): personal data and secrets never survive, and masking is stable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from libs.telemetry import mask_email, redact, redact_text, set_redaction_key

#: Real Shopify order webhooks, copied from shared/fixtures/real (tests/fixtures/shopify/PROVENANCE.md).
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "shopify" / "webhooks"


@pytest.fixture(autouse=True)
def default_key():
    """Every test starts and ends with the default redaction key."""
    set_redaction_key(None)
    yield
    set_redaction_key(None)


def test_personal_fields_are_masked_recursively_whatever_the_key_style() -> None:
    order = {
        "id": 820982911946154508,
        "email": "jon@example.com",
        "customer": {"firstName": "Jon", "last_name": "Snow", "phone": "+1 613-555-0135"},
        "shipping_address": {"address1": "1 Wall St", "address2": "Apt 4", "zip": "10005", "city": "NYC"},
        "line_items": [{"sku": "TEE-RED-M", "name": "Jon's custom tee", "quantity": 2}],
    }

    masked = redact(order)

    text = json.dumps(masked)
    for personal in ("jon@example.com", "Jon", "Snow", "613", "Wall St", "Apt 4", "10005"):
        assert personal not in text
    assert masked["id"] == 820982911946154508
    assert masked["shipping_address"]["city"] == "NYC"
    assert masked["line_items"][0]["sku"] == "TEE-RED-M"
    assert masked["line_items"][0]["quantity"] == 2


def test_secrets_are_replaced_whole_without_a_hash() -> None:
    headers = {
        "Authorization": "Bearer eyJhbGciOi.secret",
        "X-Shopify-Hmac-Sha256": "c2lnbmF0dXJl",
        "access_token": "shpat_123",
        "client_secret": "abc",
        "password": "hunter2",
    }

    masked = redact(headers)

    assert set(masked.values()) == {"[REDACTED]"}


def test_emails_and_phones_inside_free_text_are_masked() -> None:
    text = "customer jane.doe+vip@Example.co.uk called from (555) 625-1199 and +44 20 7946 0958"

    masked = redact_text(text)

    assert "jane.doe" not in masked
    assert "625-1199" not in masked
    assert "7946" not in masked
    assert masked.count("<email:") == 1
    assert masked.count("<phone:") == 2


def test_ids_timestamps_and_amounts_are_left_alone() -> None:
    text = "order 820982911946154508 line 466157049 at 2024-01-05T10:00:00+00:00 total 199.99 sku 123-456"

    assert redact_text(text) == text


def test_bearer_credentials_in_text_are_masked() -> None:
    assert redact_text("sent Authorization: Bearer abc.def.ghi") == "sent Authorization: Bearer [REDACTED]"


def test_same_email_maps_to_the_same_token_whatever_its_case() -> None:
    first = redact({"email": "Jane@Example.com"})["email"]

    second = redact_text("mail jane@example.com")

    assert first == mask_email("jane@example.com")
    assert second == f"mail {first}"


def test_redaction_key_changes_the_tokens() -> None:
    default = mask_email("jane@example.com")

    set_redaction_key("a-private-key")

    assert mask_email("jane@example.com") != default


def test_a_key_change_reaches_text_redacted_before_it() -> None:
    """Short texts' outcomes are remembered; a new key must not be answered from the old one's."""
    before = redact_text("jane@example.com")

    set_redaction_key("a-private-key")

    assert redact_text("jane@example.com") == mask_email("jane@example.com") != before


def test_input_is_not_modified_and_none_stays_none() -> None:
    order = {"email": "a@b.io", "phone": None, "tags": ("x", "y@z.io")}

    masked = redact(order)

    assert order["email"] == "a@b.io"
    assert masked["phone"] is None
    assert isinstance(masked["tags"], tuple)
    assert masked["tags"][1].startswith("<email:")


def test_real_shopify_order_webhooks_keep_no_customer_contact_or_address() -> None:
    payloads = sorted(FIXTURES.glob("orders_*.json"))
    assert len(payloads) == 7, "expected the seven Shopify order webhook fixtures"

    checked = 0
    for path in payloads:
        data = json.loads(path.read_text())
        masked = json.dumps(redact(data))
        personal = [v for key in PERSONAL_KEYS for v in _values_of(data, key)]
        leaked = [value for value in personal if value in masked]
        assert leaked == [], path.name
        checked += len(personal)
    assert checked > 20, "the fixtures should contain customer data to redact"


PERSONAL_KEYS = ("email", "phone", "first_name", "last_name", "address1", "address2", "zip")


def _values_of(obj, key: str) -> list[str]:
    found: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key and isinstance(v, str) and v:
                found.append(v)
            found.extend(_values_of(v, key))
    elif isinstance(obj, list):
        for item in obj:
            found.extend(_values_of(item, key))
    return found
