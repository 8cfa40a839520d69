"""Pure parts of the Shopify stand-in: signing against Shopify's own vector, query cost, store rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graphql import get_operation_ast, parse

from sandbox.shopify.cost import query_cost
from sandbox.shopify.schema import SCHEMA
from sandbox.shopify.state import Rejected, Store
from sandbox.shopify.webhooks import sign

FIXTURES = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "shopify"


def test_signature_matches_shopify_api_js_vector():
    vector = json.loads((FIXTURES / "shopify-api-js_webhook_hmac_vector.json").read_text())
    raw = (FIXTURES / vector["raw_body_file"]).read_bytes()

    assert raw == vector["raw_body"].encode()
    assert sign(raw, vector["secret"]) == vector["x_shopify_hmac_sha256"]
    assert sign(raw + b" ", vector["secret"]) != vector["x_shopify_hmac_sha256"]


def test_cost_of_microsofts_recorded_fulfillment_order_query():
    recorded = json.loads((FIXTURES / "FulfillmentOrderResult.txt").read_text())
    document = parse("query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 4) { nodes { id } } } }")
    operation = get_operation_ast(document)

    requested = query_cost(SCHEMA, document, operation, {"id": "x"})
    actual = query_cost(SCHEMA, document, operation, {"id": "x"}, recorded["data"], actual=True)

    assert (requested, actual) == (
        recorded["extensions"]["cost"]["requestedQueryCost"],
        recorded["extensions"]["cost"]["actualQueryCost"],
    )


def test_cost_of_a_mutation_is_ten_as_recorded_for_fulfillment_create():
    recorded = json.loads((FIXTURES / "FulfillmentCreateResult.txt").read_text())
    document = parse(
        "mutation { fulfillmentCreate(fulfillment: {lineItemsByFulfillmentOrder: []}) "
        "{ fulfillment { id status } userErrors { field message } } }"
    )

    cost = query_cost(SCHEMA, document, get_operation_ast(document), {})

    assert cost == recorded["extensions"]["cost"]["requestedQueryCost"] == 10


def test_the_same_seed_builds_the_same_shop():
    first, second, other = Store(7), Store(7), Store(8)

    assert first.snapshot() == second.snapshot()
    assert first.snapshot() != other.snapshot()
    assert sorted(v.sku for v in first.variants.values()) == [f"SKU-{n}" for n in range(1001, 1011)]
    assert {loc.code for loc in first.locations.values()} == {"EAST", "WEST"}


def test_checkout_announces_create_and_paid_and_refuses_unknown_skus():
    events = []
    store = Store(0, emit=lambda topic, body: events.append(topic))

    store.checkout([("SKU-1001", 1)])

    assert events[:2] == ["orders/create", "orders/paid"]
    with pytest.raises(Rejected) as refused:
        store.checkout([("SKU-9999", 1)])
    assert refused.value.errors[0].code == "NOT_FOUND"


def test_on_hand_is_available_plus_every_unavailable_state():
    store = Store(0)

    for level in store.levels.values():
        q = level.quantities()
        assert (
            q["on_hand"]
            == q["available"]
            + q["committed"]
            + q["reserved"]
            + q["damaged"]
            + q["safety_stock"]
            + q["quality_control"]
        )
