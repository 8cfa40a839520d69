"""Admin GraphQL of the Shopify stand-in: auth, cost, throttling, orders, fulfilment, inventory, returns."""

from __future__ import annotations

import json

SET = """mutation($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id changes { name delta quantityAfterChange } }
    userErrors { field message code } } }"""
LEVEL = """query($sku: String!) { inventoryItems(first: 1, query: $sku) { nodes { id
  inventoryLevels(first: 5) { nodes { location { id name } quantities(names: ["available", "on_hand",
    "committed",
  "incoming", "reserved", "damaged", "safety_stock", "quality_control"]) { name quantity } } } } } }"""
ORDER_FOS = """query($id: ID!) { order(id: $id) { displayFulfillmentStatus fulfillmentOrders(first: 5) {
    nodes {
  id status fulfillmentHolds { id reason } lineItems(first: 10) { nodes { id sku remainingQuantity } } }
    } } }"""


def _levels(shopify, sku):
    item = shopify.gql(LEVEL, {"sku": f"sku:{sku}"})["inventoryItems"]["nodes"][0]
    levels = {
        n["location"]["name"]: ({q["name"]: q["quantity"] for q in n["quantities"]}, n["location"]["id"])
        for n in item["inventoryLevels"]["nodes"]
    }
    return item["id"], levels


def test_graphql_without_or_with_a_wrong_access_token_is_401(shopify):
    assert shopify.graphql("{ shop { name } }", token=None).status_code == 401
    assert shopify.graphql("{ shop { name } }", token="nope").status_code == 401
    assert shopify.graphql("{ shop { name } }").json()["data"]["shop"]["name"] == "Retail Mesh Demo"


def test_responses_carry_calculated_cost_and_throttle_status(shopify):
    order = shopify.checkout(("SKU-1001", 1))

    body = shopify.graphql(
        "query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 4) { nodes { id } } } }",
        {"id": order["admin_graphql_api_id"]},
    ).json()

    # The same query and answer shape as Microsoft's recorded FulfillmentOrderResult: requested 7, actual 4.
    assert body["extensions"]["cost"]["requestedQueryCost"] == 7
    assert body["extensions"]["cost"]["actualQueryCost"] == 4
    status = body["extensions"]["cost"]["throttleStatus"]
    assert status["maximumAvailable"] == 2000.0 and status["restoreRate"] == 100.0
    assert 1990 <= status["currentlyAvailable"] <= 2000


def test_mutations_cost_ten(shopify, receiver):
    response = shopify.graphql(
        """mutation($uri: String!) { webhookSubscriptionCreate(topic: ORDERS_CREATE,
        webhookSubscription: {uri: $uri}) { webhookSubscription { id } userErrors { field message } } }""",
        {"uri": receiver.url("x")},
    )

    assert response.json()["extensions"]["cost"]["requestedQueryCost"] == 10


def test_an_empty_bucket_answers_throttled(shopify_factory):
    shop = shopify_factory(throttle_capacity=30, throttle_restore_rate=0)
    # Requested 2 + 20 = 22 points; the 3 seeded orders make the actual cost 5, so 17 come back each time:
    # 30 -> 25 -> 20, and the third request finds fewer than 22 points.
    query = "{ orders(first: 20) { nodes { id name } } }"

    answers = [shop.graphql(query).json() for _ in range(3)]

    assert "errors" not in answers[0] and "errors" not in answers[1]
    assert answers[2]["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert answers[2]["extensions"]["cost"]["requestedQueryCost"] == 22
    assert answers[2]["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 22
    assert "data" not in answers[2]


def test_a_query_above_the_single_query_limit_is_refused(shopify):
    body = shopify.graphql(
        "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }"
    ).json()

    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"


def test_orders_by_updated_at_page_through_with_cursors(shopify):
    before = shopify.gql("{ orders(first: 50) { nodes { id } } }")["orders"]["nodes"]
    placed = [shopify.checkout(("SKU-1002", 1)) for _ in range(5)]
    since = shopify.gql(
        "query($id: ID!) { order(id: $id) { updatedAt } }", {"id": placed[0]["admin_graphql_api_id"]}
    )["order"]["updatedAt"]
    query = """query($after: String, $q: String) { orders(first: 2, after: $after, query: $q, sortKey:
        UPDATED_AT) {
        nodes { id legacyResourceId updatedAt } pageInfo { hasNextPage endCursor } } }"""

    seen, after, pages = [], None, 0
    while True:
        page = shopify.gql(query, {"after": after, "q": f"updated_at:>='{since}'"})["orders"]
        seen += page["nodes"]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert len(before) == 3
    assert [n["id"] for n in seen] == [o["admin_graphql_api_id"] for o in placed]
    assert [int(n["legacyResourceId"]) for n in seen] == [o["id"] for o in placed]
    assert pages == 3


def test_fulfillment_create_ships_the_named_lines_with_tracking(shopify):
    order = shopify.checkout(("SKU-1001", 3), ("SKU-1002", 1))
    fo = shopify.gql(ORDER_FOS, {"id": order["admin_graphql_api_id"]})["order"]["fulfillmentOrders"]["nodes"][
        0
    ]
    line = next(x for x in fo["lineItems"]["nodes"] if x["sku"] == "SKU-1001")
    _, before = _levels(shopify, "SKU-1001")

    made = shopify.gql(
        """mutation($fo: ID!, $line: ID!) { fulfillmentCreate(fulfillment: {
        lineItemsByFulfillmentOrder: [{fulfillmentOrderId: $fo, fulfillmentOrderLineItems: [{id: $line,
          quantity: 2}]}],
        trackingInfo: {company: "UPS", number: "1Z999AA10123456784", url:
          "https://ups.example/1Z999AA10123456784"}}) {
        fulfillment { id status trackingInfo { company number url }
          fulfillmentLineItems(first: 5) { nodes { quantity lineItem { sku } } } }
        userErrors { field message } } }""",
        {"fo": fo["id"], "line": line["id"]},
    )["fulfillmentCreate"]

    assert made["userErrors"] == []
    assert made["fulfillment"]["status"] == "SUCCESS"
    assert made["fulfillment"]["trackingInfo"] == [
        {"company": "UPS", "number": "1Z999AA10123456784", "url": "https://ups.example/1Z999AA10123456784"}
    ]
    assert made["fulfillment"]["fulfillmentLineItems"]["nodes"] == [
        {"quantity": 2, "lineItem": {"sku": "SKU-1001"}}
    ]
    after = shopify.gql(ORDER_FOS, {"id": order["admin_graphql_api_id"]})["order"]
    remaining = {
        x["sku"]: x["remainingQuantity"] for x in after["fulfillmentOrders"]["nodes"][0]["lineItems"]["nodes"]
    }
    assert remaining == {"SKU-1001": 1, "SKU-1002": 1}
    assert after["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    assert after["fulfillmentOrders"]["nodes"][0]["status"] == "IN_PROGRESS"
    _, levels = _levels(shopify, "SKU-1001")
    east = "East Warehouse"
    assert levels[east][0]["committed"] == before[east][0]["committed"] - 2
    assert levels[east][0]["on_hand"] == before[east][0]["on_hand"] - 2
    assert levels[east][0]["available"] == before[east][0]["available"]
    counts = shopify.http.get("/_sandbox/counts").json()
    assert list(counts["created"]["fulfillments"].values()) == [1]


def test_checkout_moves_available_to_committed(shopify):
    _, before = _levels(shopify, "SKU-1007")

    shopify.checkout(("SKU-1007", 4))

    _, after = _levels(shopify, "SKU-1007")
    east = "East Warehouse"
    assert after[east][0]["available"] == before[east][0]["available"] - 4
    assert after[east][0]["committed"] == before[east][0]["committed"] + 4
    assert after[east][0]["on_hand"] == before[east][0]["on_hand"]


def test_a_held_fulfillment_order_cannot_ship_until_released(shopify):
    order = shopify.checkout(("SKU-1003", 1))
    fo_id = shopify.gql(ORDER_FOS, {"id": order["admin_graphql_api_id"]})["order"]["fulfillmentOrders"][
        "nodes"
    ][0]["id"]
    ship = """mutation($fo: ID!) { fulfillmentCreate(fulfillment: {lineItemsByFulfillmentOrder:
        [{fulfillmentOrderId: $fo}]})
        { fulfillment { id } userErrors { field message } } }"""

    held = shopify.gql(
        """mutation($id: ID!) { fulfillmentOrderHold(id: $id, fulfillmentHold: {reason: HIGH_RISK_OF_FRAUD,
        reasonNotes: "check address", handle: "fraud-check"}) { fulfillmentHold { id reason handle }
        fulfillmentOrder { status } userErrors { field message code } } }""",
        {"id": fo_id},
    )["fulfillmentOrderHold"]
    refused = shopify.gql(ship, {"fo": fo_id})["fulfillmentCreate"]
    released = shopify.gql(
        """mutation($id: ID!) { fulfillmentOrderReleaseHold(id: $id) { fulfillmentOrder { status
        fulfillmentHolds { id } } userErrors { message } } }""",
        {"id": fo_id},
    )["fulfillmentOrderReleaseHold"]
    shipped = shopify.gql(ship, {"fo": fo_id})["fulfillmentCreate"]

    assert held["fulfillmentOrder"]["status"] == "ON_HOLD"
    assert held["fulfillmentHold"]["reason"] == "HIGH_RISK_OF_FRAUD"
    assert refused["fulfillment"] is None and "hold" in refused["userErrors"][0]["message"]
    assert released["fulfillmentOrder"] == {"status": "OPEN", "fulfillmentHolds": []}
    assert shipped["userErrors"] == [] and shipped["fulfillment"]["id"]


def test_inventory_set_quantities_compares_and_sets(shopify):
    item, levels = _levels(shopify, "SKU-1005")
    quantities, location = levels["West Warehouse"]
    current = quantities["available"]

    stale = shopify.gql(
        SET,
        {
            "key": "k-stale",
            "input": {
                "name": "available",
                "reason": "correction",
                "quantities": [
                    {
                        "inventoryItemId": item,
                        "locationId": location,
                        "quantity": 5,
                        "changeFromQuantity": current + 1,
                    }
                ],
            },
        },
    )
    ok = shopify.gql(
        SET,
        {
            "key": "k-ok",
            "input": {
                "name": "available",
                "reason": "correction",
                "quantities": [
                    {
                        "inventoryItemId": item,
                        "locationId": location,
                        "quantity": 5,
                        "changeFromQuantity": current,
                    }
                ],
            },
        },
    )
    unchecked = shopify.gql(
        SET,
        {
            "key": "k-null",
            "input": {
                "name": "on_hand",
                "reason": "cycle_count_available",
                "quantities": [
                    {
                        "inventoryItemId": item,
                        "locationId": location,
                        "quantity": 500,
                        "changeFromQuantity": None,
                    }
                ],
            },
        },
    )

    error = stale["inventorySetQuantities"]["userErrors"][0]
    assert error["code"] == "CHANGE_FROM_QUANTITY_STALE"
    assert error["field"] == ["input", "quantities", "0", "changeFromQuantity"]
    assert stale["inventorySetQuantities"]["inventoryAdjustmentGroup"] is None
    changes = ok["inventorySetQuantities"]["inventoryAdjustmentGroup"]["changes"]
    assert {"name": "available", "delta": 5 - current, "quantityAfterChange": 5} in changes
    assert unchecked["inventorySetQuantities"]["userErrors"] == []
    _, after = _levels(shopify, "SKU-1005")
    assert after["West Warehouse"][0]["on_hand"] == 500


def test_inventory_set_quantities_replays_a_repeated_idempotency_key(shopify):
    item, levels = _levels(shopify, "SKU-1006")
    quantities, location = levels["East Warehouse"]
    variables = {
        "key": "3f7c0b1e-replay",
        "input": {
            "name": "available",
            "reason": "correction",
            "quantities": [
                {
                    "inventoryItemId": item,
                    "locationId": location,
                    "quantity": quantities["available"] + 10,
                    "changeFromQuantity": quantities["available"],
                }
            ],
        },
    }

    first = shopify.gql(SET, variables)
    second = shopify.gql(SET, variables)

    assert first == second
    assert first["inventorySetQuantities"]["userErrors"] == []
    _, after = _levels(shopify, "SKU-1006")
    assert after["East Warehouse"][0]["available"] == quantities["available"] + 10
    counts = shopify.http.get("/_sandbox/counts").json()
    assert counts["attempts"]["inventorySetQuantities"]["3f7c0b1e-replay"] == 2
    assert counts["created"]["inventorySetQuantities"]["3f7c0b1e-replay"] == 1
    assert counts["duplicates"] == {}


def test_inventory_mutations_without_idempotent_or_change_from_quantity_are_errors(shopify):
    item, levels = _levels(shopify, "SKU-1001")
    location = levels["East Warehouse"][1]
    no_directive = shopify.graphql(
        """mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input)
        { userErrors { code } } }""",
        {
            "input": {
                "name": "available",
                "reason": "correction",
                "quantities": [
                    {
                        "inventoryItemId": item,
                        "locationId": location,
                        "quantity": 1,
                        "changeFromQuantity": None,
                    }
                ],
            }
        },
    ).json()
    no_change_from = shopify.graphql(
        SET,
        {
            "key": "k-missing",
            "input": {
                "name": "available",
                "reason": "correction",
                "quantities": [{"inventoryItemId": item, "locationId": location, "quantity": 1}],
            },
        },
    ).json()
    adjust = shopify.graphql("""mutation { inventoryAdjustQuantities(input: {name: "available", reason:
        "correction",
        changes: []}) { userErrors { code } } }""").json()

    assert "@idempotent" in no_directive["errors"][0]["message"]
    assert no_directive["data"]["inventorySetQuantities"] is None
    assert "changeFromQuantity" in no_change_from["errors"][0]["message"]
    assert "@idempotent" in adjust["errors"][0]["message"]
    assert levels["East Warehouse"][0] == _levels(shopify, "SKU-1001")[1]["East Warehouse"][0]


def test_inventory_adjust_quantities_applies_deltas(shopify):
    item, levels = _levels(shopify, "SKU-1008")
    quantities, location = levels["East Warehouse"]

    shopify.gql(
        """mutation($item: ID!, $loc: ID!) { inventoryAdjustQuantities(input: {name: "damaged", reason:
            "damaged",
        changes: [{inventoryItemId: $item, locationId: $loc, delta: 2}]}) @idempotent(key: "adj-1") {
        userErrors { code } } }""",
        {"item": item, "loc": location},
    )

    after = _levels(shopify, "SKU-1008")[1]["East Warehouse"][0]
    assert after["damaged"] == quantities["damaged"] + 2
    assert after["available"] == quantities["available"]


def test_return_flow_restocks_refunds_and_closes(shopify):
    order = shopify.checkout(("SKU-1009", 2))
    fo = shopify.gql(ORDER_FOS, {"id": order["admin_graphql_api_id"]})["order"]["fulfillmentOrders"]["nodes"][
        0
    ]
    shopify.gql(
        """mutation($fo: ID!) { fulfillmentCreate(fulfillment: {lineItemsByFulfillmentOrder:
            [{fulfillmentOrderId: $fo}]})
        { userErrors { message } } }""",
        {"fo": fo["id"]},
    )
    fli = shopify.gql(
        """query($id: ID!) { order(id: $id) { fulfillments { fulfillmentLineItems(first: 5) { nodes { id
            } } } } }""",
        {"id": order["admin_graphql_api_id"]},
    )["order"]["fulfillments"][0]["fulfillmentLineItems"]["nodes"][0]
    _, before = _levels(shopify, "SKU-1009")

    requested = shopify.gql(
        """mutation($order: ID!, $fli: ID!) { returnRequest(input: {orderId: $order, returnLineItems: [
        {fulfillmentLineItemId: $fli, quantity: 1, returnReason: DEFECTIVE}]}) { return { id status }
          userErrors { message } } }""",
        {"order": order["admin_graphql_api_id"], "fli": fli["id"]},
    )["returnRequest"]["return"]
    approved = shopify.gql(
        """mutation($id: ID!) { returnApproveRequest(input: {id: $id}) { return { status
        reverseFulfillmentOrders(first: 1) { nodes { lineItems(first: 5) { nodes { id totalQuantity } }
          } } } } }""",
        {"id": requested["id"]},
    )["returnApproveRequest"]["return"]
    rfo_line = approved["reverseFulfillmentOrders"]["nodes"][0]["lineItems"]["nodes"][0]
    disposed = shopify.gql(
        """mutation($line: ID!, $loc: ID!) { reverseFulfillmentOrderDispose(dispositionInputs: [
        {reverseFulfillmentOrderLineItemId: $line, quantity: 1, dispositionType: RESTOCKED, locationId:
          $loc}]) {
        reverseFulfillmentOrderLineItems { dispositions { type quantity } } userErrors { message } } }""",
        {"line": rfo_line["id"], "loc": before["East Warehouse"][1]},
    )["reverseFulfillmentOrderDispose"]
    processed = shopify.gql(
        """mutation($id: ID!) { returnProcess(input: {returnId: $id, financialTransfer: {issueRefund: {}}}) {
        return { status refunds(first: 2) { nodes { totalRefundedSet { shopMoney { amount } } } } }
          userErrors { message } } }""",
        {"id": requested["id"]},
    )["returnProcess"]

    assert requested["status"] == "REQUESTED"
    assert approved["status"] == "OPEN" and rfo_line["totalQuantity"] == 1
    assert disposed["reverseFulfillmentOrderLineItems"][0]["dispositions"] == [
        {"type": "RESTOCKED", "quantity": 1}
    ]
    assert processed["return"]["status"] == "CLOSED"
    price = next(li["price"] for li in order["line_items"])
    assert processed["return"]["refunds"]["nodes"][0]["totalRefundedSet"]["shopMoney"]["amount"] == price
    after = _levels(shopify, "SKU-1009")[1]["East Warehouse"][0]
    assert after["on_hand"] == before["East Warehouse"][0]["on_hand"] + 1


def test_refund_create_is_idempotent_and_counted_once(shopify):
    order = shopify.checkout(("SKU-1010", 2))
    line = order["line_items"][0]["admin_graphql_api_id"]
    mutation = """mutation($input: RefundInput!) { refundCreate(input: $input) @idempotent(key: "refund-1") {
        refund { id totalRefundedSet { shopMoney { amount } } } userErrors { field message } } }"""
    variables = {
        "input": {
            "orderId": order["admin_graphql_api_id"],
            "note": "damaged",
            "refundLineItems": [{"lineItemId": line, "quantity": 1, "restockType": "CANCEL"}],
        }
    }

    first = shopify.gql(mutation, variables)["refundCreate"]
    second = shopify.gql(mutation, variables)["refundCreate"]

    assert first == second and first["userErrors"] == []
    refunds = shopify.gql(
        "query($id: ID!) { order(id: $id) { refunds { id } displayFinancialStatus } }",
        {"id": order["admin_graphql_api_id"]},
    )["order"]
    assert len(refunds["refunds"]) == 1 and refunds["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert shopify.http.get("/_sandbox/counts").json()["created"]["refundCreate"] == {"refund-1": 1}


def test_order_cancel_returns_a_job_and_releases_stock(shopify):
    _, before = _levels(shopify, "SKU-1004")
    order = shopify.checkout(("SKU-1004", 3))

    cancelled = shopify.gql(
        """mutation($id: ID!) { orderCancel(orderId: $id, reason: CUSTOMER, restock: true, refund: true)
        { job { id done } orderCancelUserErrors { code message } } }""",
        {"id": order["admin_graphql_api_id"]},
    )["orderCancel"]
    job = shopify.gql("query($id: ID!) { job(id: $id) { done } }", {"id": cancelled["job"]["id"]})["job"]
    state = shopify.gql(
        "query($id: ID!) { order(id: $id) { cancelledAt cancelReason displayFinancialStatus } }",
        {"id": order["admin_graphql_api_id"]},
    )["order"]

    assert cancelled["orderCancelUserErrors"] == [] and cancelled["job"]["done"] is False
    assert job == {"done": True}
    assert state["cancelReason"] == "CUSTOMER" and state["cancelledAt"]
    assert _levels(shopify, "SKU-1004")[1]["East Warehouse"][0] == before["East Warehouse"][0]


def test_product_set_creates_a_product_with_stock_and_updates_it_by_handle(shopify):
    location = shopify.gql("{ locations(first: 2) { nodes { id name } } }")["locations"]["nodes"][0]["id"]
    mutation = """mutation($input: ProductSetInput!) { productSet(input: $input) { product { id title
        variants(first: 5) { nodes { sku price inventoryQuantity } } } userErrors { field message } } }"""
    spec = {
        "title": "Trail Gaiter",
        "handle": "trail-gaiter",
        "status": "ACTIVE",
        "variants": [
            {
                "sku": "SKU-2001",
                "price": "21.00",
                "inventoryQuantities": [{"locationId": location, "name": "available", "quantity": 7}],
            }
        ],
    }

    created = shopify.gql(mutation, {"input": spec})["productSet"]
    updated = shopify.gql(
        mutation,
        {"input": {**spec, "title": "Trail Gaiter II", "variants": [{"sku": "SKU-2001", "price": "23.50"}]}},
    )["productSet"]

    assert created["product"]["variants"]["nodes"] == [
        {"sku": "SKU-2001", "price": "21.00", "inventoryQuantity": 7}
    ]
    assert updated["product"]["id"] == created["product"]["id"]
    assert updated["product"]["title"] == "Trail Gaiter II"
    assert updated["product"]["variants"]["nodes"][0]["price"] == "23.50"


def test_ids_above_two_to_the_53_survive_the_json(shopify):
    order = shopify.checkout(("SKU-1001", 1))

    raw = shopify.http.get("/_sandbox/state").text
    legacy = shopify.gql(
        "query($id: ID!) { order(id: $id) { legacyResourceId } }", {"id": order["admin_graphql_api_id"]}
    )["order"]["legacyResourceId"]

    assert order["id"] > 2**53
    assert str(order["id"]) in raw
    assert int(legacy) == order["id"]
    assert json.loads(raw, parse_int=str) is not None


STORE = """{ locations(first: 5) { nodes { id name } }
  products(first: 20) { nodes { title variants(first: 5) { nodes { sku inventoryItem { id } } } } }
  customers(first: 10) { nodes { id email displayName } } }"""
FO_LOCATIONS = """query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 5) { nodes {
  assignedLocation { name } lineItems(first: 5) { nodes { sku totalQuantity } } } } } }"""


def _set_available(shopify, sku, location_name, quantity, key):
    item, levels = _levels(shopify, sku)
    current, location = levels[location_name]
    change = {
        "inventoryItemId": item,
        "locationId": location,
        "quantity": quantity,
        "changeFromQuantity": current["available"],
    }
    result = shopify.gql(
        SET, {"key": key, "input": {"name": "available", "reason": "correction", "quantities": [change]}}
    )
    assert result["inventorySetQuantities"]["userErrors"] == []


def test_the_store_has_two_locations_ten_products_with_skus_and_five_customers(shopify):
    data = shopify.gql(STORE)

    assert sorted(n["name"] for n in data["locations"]["nodes"]) == ["East Warehouse", "West Warehouse"]
    skus = [v["sku"] for p in data["products"]["nodes"] for v in p["variants"]["nodes"]]
    assert sorted(skus) == [f"SKU-{n}" for n in range(1001, 1011)]
    assert all(v["inventoryItem"]["id"] for p in data["products"]["nodes"] for v in p["variants"]["nodes"])
    customers = data["customers"]["nodes"]
    assert len(customers) == 5 and all("@" in c["email"] and c["displayName"] for c in customers)
    _, levels = _levels(shopify, "SKU-1001")
    for quantities, _ in levels.values():
        assert set(quantities) == {
            "available",
            "on_hand",
            "committed",
            "incoming",
            "reserved",
            "damaged",
            "safety_stock",
            "quality_control",
        }


def test_an_order_no_single_location_can_fill_gets_one_fulfillment_order_per_location(shopify):
    _set_available(shopify, "SKU-1001", "West Warehouse", 0, "route-1")
    _set_available(shopify, "SKU-1002", "East Warehouse", 0, "route-2")

    order = shopify.checkout(("SKU-1001", 1), ("SKU-1002", 1))
    refused = shopify.http.post(
        "/_sandbox/checkout", json={"lines": [{"sku": "SKU-1002", "quantity": 100000}]}
    )

    fos = shopify.gql(FO_LOCATIONS, {"id": order["admin_graphql_api_id"]})["order"]["fulfillmentOrders"]
    placed = {
        fo["assignedLocation"]["name"]: [(li["sku"], li["totalQuantity"]) for li in fo["lineItems"]["nodes"]]
        for fo in fos["nodes"]
    }
    assert placed == {"East Warehouse": [("SKU-1001", 1)], "West Warehouse": [("SKU-1002", 1)]}
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "NOT_ENOUGH_IN_STOCK"


def test_a_line_no_single_location_can_fill_is_split_over_the_locations_fulfillment_orders(shopify):
    _set_available(shopify, "SKU-1005", "East Warehouse", 3, "split-1")
    _set_available(shopify, "SKU-1005", "West Warehouse", 4, "split-2")
    before = _levels(shopify, "SKU-1005")[1]

    order = shopify.checkout(("SKU-1005", 5))
    refused = shopify.http.post("/_sandbox/checkout", json={"lines": [{"sku": "SKU-1005", "quantity": 3}]})

    fos = shopify.gql(FO_LOCATIONS, {"id": order["admin_graphql_api_id"]})["order"]["fulfillmentOrders"]
    placed = {
        fo["assignedLocation"]["name"]: [(li["sku"], li["totalQuantity"]) for li in fo["lineItems"]["nodes"]]
        for fo in fos["nodes"]
    }
    assert placed == {"East Warehouse": [("SKU-1005", 3)], "West Warehouse": [("SKU-1005", 2)]}
    after = _levels(shopify, "SKU-1005")[1]
    assert (after["East Warehouse"][0]["available"], after["West Warehouse"][0]["available"]) == (0, 2)
    committed = [
        after[n][0]["committed"] - before[n][0]["committed"] for n in ("East Warehouse", "West Warehouse")
    ]
    assert committed == [3, 2]
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "NOT_ENOUGH_IN_STOCK"


def test_a_query_for_a_field_the_schema_lacks_is_refused_by_graphql_validation(shopify):
    response = shopify.graphql("{ shop { name noSuchField } }")

    body = response.json()
    assert response.status_code == 200
    assert "data" not in body
    assert body["errors"][0]["message"] == "Cannot query field 'noSuchField' on type 'Shop'."
    assert body["errors"][0]["locations"] == [{"line": 1, "column": 15}]


def test_a_query_text_seen_before_is_answered_again_and_a_bad_one_fails_again(shopify):
    # Each text is parsed and validated once (the stand-in keeps the document or its errors). That
    # answers still follow the state is what the tests reading levels before and after a change
    # with the same text check.
    query = "{ shop { name } }"
    first, again = shopify.graphql(query).json(), shopify.graphql(query).json()
    broken = [shopify.graphql("{ shop { name ").json() for _ in range(2)]
    invalid = [shopify.graphql("{ shop { noSuchField } }").json() for _ in range(2)]

    assert first["data"] == again["data"] == {"shop": {"name": first["data"]["shop"]["name"]}}
    assert broken[0] == broken[1] and "Syntax Error" in broken[0]["errors"][0]["message"]
    assert invalid[0]["errors"] == invalid[1]["errors"]
    assert invalid[0]["errors"][0]["message"] == "Cannot query field 'noSuchField' on type 'Shop'."
