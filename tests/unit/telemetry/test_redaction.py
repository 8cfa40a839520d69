"""redact(): personal data and secrets never survive, and masking is stable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import message_factory
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from libs.telemetry import mask_email, redact, redact_text, set_redaction_key
from libs.telemetry.redaction import redact_message
from retail.common.v1 import common_pb2
from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2
from tests.unit.protos import filled, mesh_message_types

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


# --- redact_message: the hop log's one-pass snapshot equals redact(MessageToDict(...)) ----------


def _two_steps(message: Message) -> Any:
    return redact(MessageToDict(message, preserving_proto_field_name=True))


def test_redact_message_equals_the_two_steps_on_every_mesh_message_type() -> None:
    types = mesh_message_types()
    assert len(types) > 100  # the walk found the mesh's protos
    fields_seen = 0
    for descriptor in types:
        for seed in range(4):
            message = filled(descriptor, seed)
            fields_seen += len(message.ListFields())
            assert redact_message(message) == _two_steps(message), descriptor.full_name
        # and with nothing set
        empty = message_factory.GetMessageClass(descriptor)()
        assert redact_message(empty) == _two_steps(empty) == {}
    assert fields_seen > 1000


def test_redact_message_masks_what_redact_masks_in_a_real_event() -> None:
    address = common_pb2.Address(name="Jon Snow", postal_code="10005", city="NYC", phone="+1 613-555-0135")
    masked = json.dumps(redact_message(address))
    for personal in ("Jon", "Snow", "613", "10005"):
        assert personal not in masked
    assert redact_message(address) == _two_steps(address)
    assert redact_message(address)["city"] == "NYC"


def test_redact_message_takes_the_two_steps_for_well_known_types_and_maps() -> None:
    struct = Struct()
    struct.update({"email": "jon@example.com", "note": "call +1 613-555-0135", "n": 3})
    assert redact_message(struct) == _two_steps(struct)
    assert "jon@example.com" not in json.dumps(redact_message(struct))
    assert redact_message(Timestamp(seconds=1, nanos=1)) == "1970-01-01T00:00:01.000000001Z"


def test_a_timestamp_renders_as_json_format_does_at_every_precision() -> None:
    holder = common_pb2.EventMeta()
    for nanos in (0, 1, 999_999_999, 120_000_000, 120_000, 123_456_789):
        holder.occurred_at.CopyFrom(Timestamp(seconds=1_796_013_537, nanos=nanos))
        assert redact_message(holder) == _two_steps(holder)
    holder.occurred_at.CopyFrom(Timestamp(seconds=-62_135_596_800))  # 0001-01-01, the first valid
    assert redact_message(holder) == _two_steps(holder)


def test_an_address_street_lines_are_masked_in_dicts_and_in_messages() -> None:
    as_dict = {"shipping_address": {"lines": ["1 Wall St", "Apt 4"], "city": "NYC"}, "lines": [{"sku": "A"}]}
    masked = redact(as_dict)
    assert "Wall St" not in json.dumps(masked) and "Apt 4" not in json.dumps(masked)
    assert masked["shipping_address"]["city"] == "NYC"
    assert masked["lines"] == [{"sku": "A"}]  # order lines are not an address's lines

    event = order_events.OrderReleasedToWarehouse(
        order_id="o-1", lines=[orders_pb2.LineQuantity(sku="A", quantity=1)]
    )
    event.shipping_address.CopyFrom(common_pb2.Address(lines=["1 Wall St", "Apt 4"], city="NYC"))
    snapshot = redact_message(event)
    assert snapshot == _two_steps(event)
    assert "Wall St" not in json.dumps(snapshot)
    assert snapshot["shipping_address"]["city"] == "NYC"


def test_business_central_party_fields_are_masked() -> None:
    body = {
        "shipToName": "Jon Snow",
        "shipToContact": "Jon Snow",
        "shipToAddressLine1": "1 Wall St",
        "shipToAddressLine2": "Apt 4",
        "shipToPostCode": "10005",
        "sellToAddressLine1": "2 Main St",
        "billToPostCode": "10006",
        "shipToCity": "NYC",
        "customerNumber": "C0001",
    }
    masked = redact(body)
    text = json.dumps(masked)
    for personal in ("Jon", "Snow", "Wall St", "Apt 4", "10005", "Main St", "10006"):
        assert personal not in text
    assert masked["shipToCity"] == "NYC" and masked["customerNumber"] == "C0001"
