"""Shopify order payloads → canonical SalesOrder, against Shopify's documented example payloads."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import protovalidate
import pytest

from retail.common.v1 import common_pb2
from retail.orders.v1 import orders_pb2
from services.shopify_adapter.translate.order import (
    MalformedBody,
    TranslationError,
    cancellation_reason,
    edited_order_gid,
    money,
    order_from_graphql,
    order_from_webhook,
    parse_body,
    utc_text,
    version_key,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "shopify_adapter" / "webhooks"


def documented(name: str) -> dict:
    """Shopify's documented example body for a topic (the `response` key of Gadget's wrapper)."""
    return parse_body(json.dumps(json.loads((FIXTURES / f"{name}.json").read_text())["response"]).encode())


def test_orders_create_becomes_a_valid_sales_order_with_exact_ids_from_the_gids():
    body = documented("orders_create")

    order = order_from_webhook(body)

    protovalidate.validate(order)
    assert body["id"] == 820982911946154500  # the fixture's numeric id lost precision...
    assert order.channel_order.id == "gid://shopify/Order/820982911946154508"  # ...the GID did not
    assert order.channel_order.name == "#9999"
    assert order.channel_order.system == common_pb2.SOURCE_SYSTEM_SHOPIFY
    assert order.lines[0].line_id == "487817672276298554"
    assert [line.sku for line in order.lines] == [
        "SKU2006-001",
        "LENS-PROTECT-2YR",
        "CASE-LEATHER-PREM",
        "SKU2006-020",
        "SKU2006-035",
    ]
    assert order.lines[0].unit_price == common_pb2.Money(minor_units=8999, currency="USD")
    assert order.totals.grand_total == common_pb2.Money(minor_units=40495, currency="USD")
    assert order.totals.shipping_total.minor_units == 1000
    assert order.payment_status == orders_pb2.PAYMENT_STATUS_VOIDED
    assert order.channel == "online-store"
    assert order.channel_updated_at.ToJsonString() == "2022-01-01T00:00:00Z"


def test_the_customer_is_a_reference_and_only_the_shipping_address_carries_personal_data():
    order = order_from_webhook(documented("orders_create"))

    assert order.customer.channel_customer.id == "gid://shopify/Customer/115310627314723954"
    assert order.customer.channel_customer.name == ""
    assert order.shipping_address.lines == ["123 Shipping Street"]
    assert order.shipping_address.country_code == "US"
    assert order.shipping_address.province_code == "KY"
    assert "john@example.com" not in str(order)


@pytest.mark.parametrize("topic", ["orders_updated", "orders_cancelled"])
def test_updated_and_cancelled_bodies_translate_too(topic):
    order = order_from_webhook(documented(topic))

    protovalidate.validate(order)
    assert order.channel_order.id == "gid://shopify/Order/820982911946154508"


def test_a_cancelled_order_with_nothing_left_keeps_its_original_quantities():
    body = documented("orders_cancelled")
    for line in body["line_items"]:
        line["current_quantity"] = 0

    order = order_from_webhook(body)

    assert all(line.quantity == 1 for line in order.lines)
    assert cancellation_reason(body["cancel_reason"]) == orders_pb2.CANCELLATION_REASON_CUSTOMER_REQUEST


def test_orders_edited_names_its_order_by_the_exact_integer_in_the_raw_body():
    raw = b'{"order_edit": {"id": 1, "order_id": 820982911946154508, "line_items": {}}}'

    assert edited_order_gid(parse_body(raw)) == "gid://shopify/Order/820982911946154508"
    assert edited_order_gid(documented("orders_edited")).startswith("gid://shopify/Order/")


def test_a_line_without_a_sku_is_a_translation_error_not_a_crash():
    body = documented("orders_create")
    body["line_items"][1]["sku"] = ""

    with pytest.raises(TranslationError, match="SKU"):
        order_from_webhook(body)


def test_bodies_parse_with_exact_integers_and_decimals_and_reject_non_objects():
    parsed = parse_body(b'{"id": 9223372036854775807, "price": 19.99}')

    assert parsed["id"] == 9223372036854775807
    assert parsed["price"] == Decimal("19.99")
    for bad in (b"", b"not json", b"[1, 2]", b"\xff\xfe"):
        with pytest.raises(MalformedBody):
            parse_body(bad)


def test_money_is_integer_minor_units_and_never_rounds():
    assert money("404.95", "USD").minor_units == 40495
    assert money(Decimal("1000"), "JPY").minor_units == 1000
    with pytest.raises(TranslationError):
        money("1.234", "USD")


def test_a_webhook_and_a_poll_of_one_version_share_one_request_id():
    webhook_key = version_key("gid://shopify/Order/820982911946154508", "2021-12-31T19:00:00-05:00")
    poll_key = version_key("gid://shopify/Order/820982911946154508", "2022-01-01T00:00:00Z")

    assert webhook_key == poll_key == "shopify:order:820982911946154508@2022-01-01T00:00:00Z"
    assert utc_text("2026-04-01T10:00:00-05:00") == "2026-04-01T15:00:00Z"


def test_an_admin_graphql_order_becomes_the_same_canonical_order():
    node = {
        "id": "gid://shopify/Order/1152921504606846977",
        "name": "#1001",
        "createdAt": "2026-04-01T15:00:00Z",
        "updatedAt": "2026-04-01T15:00:05Z",
        "processedAt": "2026-04-01T15:00:00Z",
        "currencyCode": "USD",
        "displayFinancialStatus": "PAID",
        "subtotalPriceSet": {"shopMoney": {"amount": "40.0", "currencyCode": "USD"}},
        "totalPriceSet": {"shopMoney": {"amount": "50.0", "currencyCode": "USD"}},
        "totalShippingPriceSet": {"shopMoney": {"amount": "10.0", "currencyCode": "USD"}},
        "totalTaxSet": {"shopMoney": {"amount": "0.0", "currencyCode": "USD"}},
        "customer": {"id": "gid://shopify/Customer/7"},
        "shippingAddress": {
            "name": "Ann Lee",
            "address1": "1 Main St",
            "city": "Austin",
            "zip": "78701",
            "provinceCode": "TX",
            "countryCodeV2": "US",
        },
        "lineItems": {
            "nodes": [
                {
                    "id": "gid://shopify/LineItem/1152921504606846999",
                    "name": "Tee",
                    "title": "Tee",
                    "sku": "SKU-1001",
                    "quantity": 2,
                    "currentQuantity": 2,
                    "originalUnitPriceSet": {"shopMoney": {"amount": "20.0", "currencyCode": "USD"}},
                }
            ]
        },
    }

    order = order_from_graphql(node)

    protovalidate.validate(order)
    assert order.lines[0].line_id == "1152921504606846999"
    assert order.lines[0].unit_price.minor_units == 2000
    assert order.totals.grand_total.minor_units == 5000
    assert order.payment_status == orders_pb2.PAYMENT_STATUS_PAID
    assert order.shipping_address.province_code == "TX"
