"""The Shopify stand-in's load-test routes: a bulk checkout whose webhooks leave at once, and the
timed records (orders, fulfillments with tracking, inventory adjustments) a benchmark reads."""

from __future__ import annotations

import time

SET = """mutation($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id } userErrors { field message code } } }"""
FOS = """query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 5) { nodes { id
  lineItems(first: 10) { nodes { id sku remainingQuantity } } } } } }"""
ITEM = """query($q: String!) { inventoryItems(first: 1, query: $q) { nodes { id
  inventoryLevels(first: 5) { nodes { location { id name } } } } } }"""


def test_bulk_checkout_places_every_order_and_fires_each_webhook(shopify, receiver, wait):
    shopify.subscribe("ORDERS_CREATE", receiver.url("orders"))
    before = time.time()

    response = shopify.http.post(
        "/_sandbox/checkout/bulk",
        json={"orders": [{"lines": [{"sku": "SKU-1001", "quantity": 1}]} for _ in range(25)]},
    )

    assert response.status_code == 200
    created = response.json()["created"]
    assert len(created) == 25 and response.json()["refused"] == []
    assert all(before <= c["created_at"] <= time.time() for c in created)
    wait(lambda: len(receiver.on("orders")) == 25, what="25 orders/create webhooks")
    names = {r.json()["name"] for r in receiver.on("orders")}
    assert names == {c["name"] for c in created}

    def delivered():
        rows = [d for d in shopify.deliveries("orders/create") if d["outcome"] == "delivered"]
        return rows if len(rows) == 25 else None

    rows = wait(delivered, what="25 delivery records")
    assert all(d["duration_ms"] > 0 for d in rows)
    assert len(shopify.http.get("/_sandbox/counts").json()["created_at"]["orders"]) == 25


def test_bulk_checkout_reports_an_order_without_stock_and_places_the_rest(shopify):
    response = shopify.http.post(
        "/_sandbox/checkout/bulk",
        json={
            "orders": [
                {"lines": [{"sku": "SKU-1002", "quantity": 1}]},
                {"lines": [{"sku": "SKU-1002", "quantity": 1_000_000}]},
            ]
        },
    )

    assert response.status_code == 200
    assert len(response.json()["created"]) == 1
    assert [r["index"] for r in response.json()["refused"]] == [1]


def test_records_show_each_fulfillment_with_its_tracking_and_each_inventory_set(shopify):
    order = shopify.checkout(("SKU-1003", 2))
    fo = shopify.gql(FOS, {"id": order["admin_graphql_api_id"]})["order"]["fulfillmentOrders"]["nodes"][0]
    line = fo["lineItems"]["nodes"][0]
    for number in ("1ZPARCEL1", "1ZPARCEL2"):
        made = shopify.gql(
            """mutation($fo: ID!, $line: ID!, $n: String!) { fulfillmentCreate(fulfillment: {
              lineItemsByFulfillmentOrder: [{fulfillmentOrderId: $fo, fulfillmentOrderLineItems: [{id: $line,
              quantity: 1}]}], trackingInfo: {company: "UPS", number: $n}}) {
              fulfillment { id } userErrors { message } } }""",
            {"fo": fo["id"], "line": line["id"], "n": number},
        )["fulfillmentCreate"]
        assert made["userErrors"] == []
    item = shopify.gql(ITEM, {"q": "sku:SKU-1004"})["inventoryItems"]["nodes"][0]
    location = item["inventoryLevels"]["nodes"][0]["location"]["id"]
    shopify.gql(
        SET,
        {
            "key": "records-test",
            "input": {
                "name": "available",
                "reason": "correction",
                "quantities": [
                    {
                        "inventoryItemId": item["id"],
                        "locationId": location,
                        "quantity": 7,
                        "changeFromQuantity": None,
                    }
                ],
            },
        },
    )

    records = shopify.http.get("/_sandbox/records").json()

    mine = next(o for o in records["orders"] if o["name"] == order["name"])
    assert mine["lines"][0]["sku"] == "SKU-1003" and mine["lines"][0]["location"] in ("EAST", "WEST")
    assert [f["tracking_numbers"] for f in mine["fulfillments"]] == [["1ZPARCEL1"], ["1ZPARCEL2"]]
    assert [f["units"] for f in mine["fulfillments"]] == [{"SKU-1003": 1}, {"SKU-1003": 1}]
    assert (
        mine["created_at"] <= mine["fulfillments"][0]["created_at"] <= mine["fulfillments"][1]["created_at"]
    )
    change = records["inventory_adjustments"][-1]["changes"][0]
    assert (change["name"], change["sku"], change["quantity_after_change"]) == ("available", "SKU-1004", 7)
