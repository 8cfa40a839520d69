"""``fulfillmentOrderMove`` on the Shopify stand-in: whole and partial moves, committed stock, refusals."""

from __future__ import annotations

from sandbox.shopify.state import parse_gid

EAST, WEST = "East Warehouse", "West Warehouse"
FO_FIELDS = """id status assignedLocation { name location { id } }
  lineItems(first: 10) { nodes { id sku totalQuantity remainingQuantity } }"""
MOVE = f"""mutation($id: ID!, $to: ID!, $items: [FulfillmentOrderLineItemInput!]) {{
  fulfillmentOrderMove(id: $id, newLocationId: $to, fulfillmentOrderLineItems: $items) {{
    movedFulfillmentOrder {{ {FO_FIELDS} }}
    originalFulfillmentOrder {{ {FO_FIELDS} }}
    remainingFulfillmentOrder {{ id }}
    userErrors {{ field message }} }} }}"""
ORDER_FOS = f"""query($id: ID!) {{ order(id: $id) {{
  fulfillmentOrders(first: 5) {{ nodes {{ {FO_FIELDS} }} }} }} }}"""
LEVELS = """query($q: String!) { inventoryItems(first: 1, query: $q) { nodes { id
  inventoryLevels(first: 5) { nodes { location { name }
    quantities(names: ["available", "committed", "on_hand"]) { name quantity } } } } } }"""
SHIP = """mutation($fo: ID!) { fulfillmentCreate(fulfillment: {lineItemsByFulfillmentOrder:
  [{fulfillmentOrderId: $fo}], trackingInfo: {company: "UPS", number: "1ZMOVED"}}) {
  fulfillment { id location { name } fulfillmentLineItems(first: 5) { nodes { quantity lineItem { sku } } } }
  userErrors { field message } } }"""
SHIP_SOME = """mutation($fo: ID!, $line: ID!, $qty: Int!) { fulfillmentCreate(fulfillment: {
  lineItemsByFulfillmentOrder: [{fulfillmentOrderId: $fo, fulfillmentOrderLineItems: [{id: $line,
  quantity: $qty}]}]}) { fulfillment { id } userErrors { field message } } }"""


def _locations(shopify):
    nodes = shopify.gql("{ locations(first: 5) { nodes { id name } } }")["locations"]["nodes"]
    return {n["name"]: n["id"] for n in nodes}


def _levels(shopify, sku):
    """``{location name: {"available", "committed", "on_hand"}}`` of a SKU, read through GraphQL."""
    item = shopify.gql(LEVELS, {"q": f"sku:{sku}"})["inventoryItems"]["nodes"][0]
    return {
        n["location"]["name"]: {q["name"]: q["quantity"] for q in n["quantities"]}
        for n in item["inventoryLevels"]["nodes"]
    }


def _fulfillment_orders(shopify, order):
    return shopify.gql(ORDER_FOS, {"id": order["admin_graphql_api_id"]})["order"]["fulfillmentOrders"][
        "nodes"
    ]


def _order_updated_at(shopify, order):
    """The order's ``updated_at`` to the microsecond (GraphQL gives whole seconds)."""
    orders = shopify.http.get("/_sandbox/state").json()["orders"]
    return next(o["updated_at"] for o in orders if o["id"] == order["id"])


def _placed_at_east(shopify, *lines):
    """Check out ``lines``; the one fulfillment order Shopify opened for them (at East)."""
    order = shopify.checkout(*lines)
    [fo] = _fulfillment_orders(shopify, order)
    assert fo["assignedLocation"]["name"] == EAST
    return order, fo


def _line(fo, sku):
    return next(x for x in fo["lineItems"]["nodes"] if x["sku"] == sku)


def _lines(fo):
    return sorted((x["sku"], x["totalQuantity"], x["remainingQuantity"]) for x in fo["lineItems"]["nodes"])


def _move(shopify, fo_id, to, items=None):
    return shopify.gql(MOVE, {"id": fo_id, "to": to, "items": items})["fulfillmentOrderMove"]


def _refused(shopify, fo_id, to, items=None):
    moved = _move(shopify, fo_id, to, items)
    assert moved["movedFulfillmentOrder"] is None and moved["originalFulfillmentOrder"] is None
    assert len(moved["userErrors"]) == 1, moved
    return moved["userErrors"][0]


def _change(before, after, sku_location):
    return {name: after[sku_location][name] - before[sku_location][name] for name in after[sku_location]}


def test_moving_a_whole_fulfillment_order_changes_its_location_and_moves_committed_stock(shopify):
    order, fo = _placed_at_east(shopify, ("SKU-1001", 3), ("SKU-1002", 1))
    before = {sku: _levels(shopify, sku) for sku in ("SKU-1001", "SKU-1002")}

    moved = _move(shopify, fo["id"], _locations(shopify)[WEST])

    assert moved["userErrors"] == [] and moved["remainingFulfillmentOrder"] is None
    assert moved["movedFulfillmentOrder"]["id"] == moved["originalFulfillmentOrder"]["id"] == fo["id"]
    assert moved["movedFulfillmentOrder"]["assignedLocation"]["name"] == WEST
    assert moved["movedFulfillmentOrder"]["status"] == "OPEN"
    assert _lines(moved["movedFulfillmentOrder"]) == [("SKU-1001", 3, 3), ("SKU-1002", 1, 1)]
    [now] = _fulfillment_orders(shopify, order)
    assert now["id"] == fo["id"] and now["assignedLocation"]["name"] == WEST
    for sku, units in (("SKU-1001", 3), ("SKU-1002", 1)):
        after = _levels(shopify, sku)
        assert _change(before[sku], after, EAST) == {"available": units, "committed": -units, "on_hand": 0}
        assert _change(before[sku], after, WEST) == {"available": -units, "committed": units, "on_hand": 0}


def test_moving_part_of_a_fulfillment_order_opens_a_new_one_and_reduces_the_original(shopify):
    order, fo = _placed_at_east(shopify, ("SKU-1003", 3), ("SKU-1004", 2), ("SKU-1006", 1))
    before = {sku: _levels(shopify, sku) for sku in ("SKU-1003", "SKU-1004", "SKU-1006")}
    items = [
        {"id": _line(fo, "SKU-1003")["id"], "quantity": 1},
        {"id": _line(fo, "SKU-1004")["id"], "quantity": 2},
    ]

    moved = _move(shopify, fo["id"], _locations(shopify)[WEST], items)

    assert moved["userErrors"] == []
    new, original = moved["movedFulfillmentOrder"], moved["originalFulfillmentOrder"]
    assert new["id"] != fo["id"] and original["id"] == fo["id"]
    assert (new["status"], new["assignedLocation"]["name"]) == ("OPEN", WEST)
    assert _lines(new) == [("SKU-1003", 1, 1), ("SKU-1004", 2, 2)]
    assert not {x["id"] for x in new["lineItems"]["nodes"]} & {x["id"] for x in fo["lineItems"]["nodes"]}
    assert (original["status"], original["assignedLocation"]["name"]) == ("OPEN", EAST)
    assert _lines(original) == [("SKU-1003", 2, 2), ("SKU-1006", 1, 1)]
    assert [x["id"] for x in _fulfillment_orders(shopify, order)] == [fo["id"], new["id"]]
    for sku, units in (("SKU-1003", 1), ("SKU-1004", 2), ("SKU-1006", 0)):
        after = _levels(shopify, sku)
        assert _change(before[sku], after, EAST)["committed"] == -units
        assert _change(before[sku], after, WEST)["committed"] == units
        assert _change(before[sku], after, WEST)["available"] == -units


def test_moving_the_rest_of_a_partly_fulfilled_order_keeps_the_shipped_units_and_closes_the_original(
    shopify,
):
    order, fo = _placed_at_east(shopify, ("SKU-1005", 3))
    shipped = shopify.gql(SHIP_SOME, {"fo": fo["id"], "line": _line(fo, "SKU-1005")["id"], "qty": 2})
    assert shipped["fulfillmentCreate"]["userErrors"] == []
    before = _levels(shopify, "SKU-1005")

    moved = _move(shopify, fo["id"], _locations(shopify)[WEST])

    assert moved["userErrors"] == []
    new, original = moved["movedFulfillmentOrder"], moved["originalFulfillmentOrder"]
    assert new["id"] != fo["id"] and original["id"] == fo["id"]
    assert (new["status"], new["assignedLocation"]["name"]) == ("OPEN", WEST)
    assert _lines(new) == [("SKU-1005", 1, 1)]
    assert (original["status"], original["assignedLocation"]["name"]) == ("CLOSED", EAST)
    assert _lines(original) == [("SKU-1005", 2, 0)]
    assert [x["id"] for x in _fulfillment_orders(shopify, order)] == [fo["id"], new["id"]]
    after = _levels(shopify, "SKU-1005")
    assert _change(before, after, EAST) == {"available": 1, "committed": -1, "on_hand": 0}
    assert _change(before, after, WEST) == {"available": -1, "committed": 1, "on_hand": 0}


def test_a_part_still_open_after_a_partial_fulfillment_stays_in_progress_where_it_was(shopify):
    _, fo = _placed_at_east(shopify, ("SKU-1007", 3), ("SKU-1008", 1))
    shipped = shopify.gql(SHIP_SOME, {"fo": fo["id"], "line": _line(fo, "SKU-1007")["id"], "qty": 1})
    assert shipped["fulfillmentCreate"]["userErrors"] == []

    moved = _move(
        shopify, fo["id"], _locations(shopify)[WEST], [{"id": _line(fo, "SKU-1007")["id"], "quantity": 2}]
    )

    assert moved["userErrors"] == []
    assert _lines(moved["movedFulfillmentOrder"]) == [("SKU-1007", 2, 2)]
    original = moved["originalFulfillmentOrder"]
    assert (original["status"], original["assignedLocation"]["name"]) == ("IN_PROGRESS", EAST)
    assert _lines(original) == [("SKU-1007", 1, 0), ("SKU-1008", 1, 1)]


def test_a_move_announces_both_inventory_levels_and_leaves_the_order_unchanged(shopify, receiver, wait):
    order, fo = _placed_at_east(shopify, ("SKU-1009", 2))
    updated_at = _order_updated_at(shopify, order)
    shopify.subscribe("INVENTORY_LEVELS_UPDATE", receiver.url("levels"))
    shopify.subscribe("ORDERS_UPDATED", receiver.url("orders"))
    locations = _locations(shopify)

    _move(shopify, fo["id"], locations[WEST])

    hooks = wait(lambda: len(receiver.on("levels")) == 2 and receiver.on("levels"), what="two level updates")
    available = {h.json()["location_id"]: h.json()["available"] for h in hooks}
    levels = _levels(shopify, "SKU-1009")
    item = shopify.app.state.store.variant_by_sku("SKU-1009").inventory_item_id
    assert {h.json()["inventory_item_id"] for h in hooks} == {item}
    assert available == {
        parse_gid(locations[EAST]): levels[EAST]["available"],
        parse_gid(locations[WEST]): levels[WEST]["available"],
    }
    assert _order_updated_at(shopify, order) == updated_at
    assert receiver.on("orders") == []


def test_a_moved_fulfillment_order_ships_from_its_new_location(shopify):
    _, fo = _placed_at_east(shopify, ("SKU-1010", 3))
    before = _levels(shopify, "SKU-1010")
    moved = _move(
        shopify, fo["id"], _locations(shopify)[WEST], [{"id": _line(fo, "SKU-1010")["id"], "quantity": 2}]
    )["movedFulfillmentOrder"]

    made = shopify.gql(SHIP, {"fo": moved["id"]})["fulfillmentCreate"]

    assert made["userErrors"] == []
    assert made["fulfillment"]["location"]["name"] == WEST
    assert made["fulfillment"]["fulfillmentLineItems"]["nodes"] == [
        {"quantity": 2, "lineItem": {"sku": "SKU-1010"}}
    ]
    after = _levels(shopify, "SKU-1010")
    assert _change(before, after, WEST) == {"available": -2, "committed": 0, "on_hand": -2}
    assert _change(before, after, EAST) == {"available": 2, "committed": -2, "on_hand": 0}
    shipped = shopify.gql("query($id: ID!) { fulfillmentOrder(id: $id) { status } }", {"id": moved["id"]})
    assert shipped["fulfillmentOrder"]["status"] == "CLOSED"


def test_a_closed_fulfillment_order_cannot_be_moved(shopify):
    _, fo = _placed_at_east(shopify, ("SKU-1001", 1))
    assert shopify.gql(SHIP, {"fo": fo["id"]})["fulfillmentCreate"]["userErrors"] == []
    before = _levels(shopify, "SKU-1001")

    error = _refused(shopify, fo["id"], _locations(shopify)[WEST])

    assert error["field"] == ["id"] and "closed" in error["message"]
    assert _levels(shopify, "SKU-1001") == before


def test_a_fulfillment_order_on_hold_cannot_be_moved(shopify):
    order, fo = _placed_at_east(shopify, ("SKU-1002", 1))
    held = shopify.gql(
        """mutation($id: ID!) { fulfillmentOrderHold(id: $id, fulfillmentHold: {reason: OTHER}) {
        userErrors { message } } }""",
        {"id": fo["id"]},
    )
    assert held["fulfillmentOrderHold"]["userErrors"] == []

    error = _refused(shopify, fo["id"], _locations(shopify)[WEST])

    assert error["field"] == ["id"] and "on hold" in error["message"]
    assert _fulfillment_orders(shopify, order)[0]["assignedLocation"]["name"] == EAST


def test_a_fulfillment_order_awaiting_a_fulfillment_service_cannot_be_moved(shopify):
    order, fo = _placed_at_east(shopify, ("SKU-1002", 1))
    # No mutation here submits a fulfillment request: set the status the service would.
    shopify.app.state.store.fulfillment_orders[parse_gid(fo["id"])].request_status = "SUBMITTED"

    error = _refused(shopify, fo["id"], _locations(shopify)[WEST])

    assert error["field"] == ["id"] and "SUBMITTED" in error["message"]
    assert _fulfillment_orders(shopify, order)[0]["assignedLocation"]["name"] == EAST


def test_a_fulfillment_order_cannot_be_moved_to_the_location_it_is_at(shopify):
    order, fo = _placed_at_east(shopify, ("SKU-1003", 1))

    error = _refused(shopify, fo["id"], _locations(shopify)[EAST])

    assert error["field"] == ["newLocationId"] and "already assigned" in error["message"]
    assert [x["id"] for x in _fulfillment_orders(shopify, order)] == [fo["id"]]


def test_a_fulfillment_order_cannot_be_moved_to_an_unknown_location(shopify):
    order, fo = _placed_at_east(shopify, ("SKU-1003", 1))

    error = _refused(shopify, fo["id"], "gid://shopify/Location/1")
    unknown_fo = _refused(shopify, "gid://shopify/FulfillmentOrder/1", _locations(shopify)[WEST])

    assert error["field"] == ["newLocationId"] and "Location does not exist" in error["message"]
    assert unknown_fo["field"] == ["id"] and "Fulfillment order does not exist" in unknown_fo["message"]
    assert _fulfillment_orders(shopify, order)[0]["assignedLocation"]["name"] == EAST


def test_a_fulfillment_order_cannot_be_moved_where_an_item_is_not_stocked(shopify):
    order, fo = _placed_at_east(shopify, ("SKU-1004", 2), ("SKU-1005", 1))
    locations = _locations(shopify)
    store = shopify.app.state.store
    item = store.variant_by_sku("SKU-1004").inventory_item_id
    # No Admin API here removes an item from a location: take the level away as Shopify's
    # inventoryDeactivate would.
    del store.levels[(item, parse_gid(locations[WEST]))]
    before = _levels(shopify, "SKU-1005")

    whole = _refused(shopify, fo["id"], locations[WEST])
    named = _refused(shopify, fo["id"], locations[WEST], [{"id": _line(fo, "SKU-1004")["id"], "quantity": 1}])

    assert whole["field"] == ["newLocationId"] and "stock" in whole["message"]
    assert named["field"] == ["fulfillmentOrderLineItems", "0", "id"] and "stock" in named["message"]
    assert _fulfillment_orders(shopify, order)[0]["assignedLocation"]["name"] == EAST
    assert _levels(shopify, "SKU-1005") == before


def test_a_quantity_above_what_remains_or_a_line_of_another_order_cannot_be_moved(shopify):
    order, fo = _placed_at_east(shopify, ("SKU-1006", 3))
    _, other = _placed_at_east(shopify, ("SKU-1006", 1))
    to = _locations(shopify)[WEST]
    before = _levels(shopify, "SKU-1006")

    too_many = _refused(shopify, fo["id"], to, [{"id": _line(fo, "SKU-1006")["id"], "quantity": 4}])
    none = _refused(shopify, fo["id"], to, [{"id": _line(fo, "SKU-1006")["id"], "quantity": 0}])
    foreign = _refused(shopify, fo["id"], to, [{"id": _line(other, "SKU-1006")["id"], "quantity": 1}])

    assert too_many["field"] == ["fulfillmentOrderLineItems", "0", "quantity"]
    assert none["field"] == ["fulfillmentOrderLineItems", "0", "quantity"]
    assert foreign["field"] == ["fulfillmentOrderLineItems", "0", "id"]
    assert _lines(_fulfillment_orders(shopify, order)[0]) == [("SKU-1006", 3, 3)]
    assert _levels(shopify, "SKU-1006") == before


def test_a_move_costs_ten_like_other_mutations(shopify):
    _, fo = _placed_at_east(shopify, ("SKU-1007", 1))

    body = shopify.graphql(
        """mutation($id: ID!, $to: ID!) { fulfillmentOrderMove(id: $id, newLocationId: $to) {
        movedFulfillmentOrder { id } originalFulfillmentOrder { id } userErrors { field message } } }""",
        {"id": fo["id"], "to": _locations(shopify)[WEST]},
    ).json()

    assert body["data"]["fulfillmentOrderMove"]["userErrors"] == []
    assert body["extensions"]["cost"]["requestedQueryCost"] == 10
    assert body["extensions"]["cost"]["actualQueryCost"] == 10


def test_records_keep_the_routed_location_and_list_each_move(shopify):
    order, fo = _placed_at_east(shopify, ("SKU-1008", 2), ("SKU-1009", 1))

    _move(shopify, fo["id"], _locations(shopify)[WEST], [{"id": _line(fo, "SKU-1008")["id"], "quantity": 1}])
    records = shopify.http.get("/_sandbox/records").json()

    mine = next(o for o in records["orders"] if o["name"] == order["name"])
    assert {line["sku"]: line["location"] for line in mine["lines"]} == {
        "SKU-1008": "EAST",
        "SKU-1009": "EAST",
    }
    [move] = records["fulfillment_order_moves"]
    assert (move["order"], move["from"], move["to"], move["units"]) == (
        order["name"],
        "EAST",
        "WEST",
        {"SKU-1008": 1},
    )
    assert move["original_fulfillment_order_id"] == str(parse_gid(fo["id"]))
    assert move["moved_fulfillment_order_id"] != move["original_fulfillment_order_id"]
    assert mine["created_at"] <= move["created_at"]
