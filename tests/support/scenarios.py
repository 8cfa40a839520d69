"""Order-to-cash scenarios that touch reservations, run end to end on SQLite and on PostgreSQL.

Each function is one scenario of issue #4, whole (arrange, act, assert), against a running mesh;
the e2e modules call it from a test on their own mesh (tests/e2e/test_order_fulfillment_routes.py
and test_order_to_cash.py on SQLite, test_order_to_cash_postgres.py on PostgreSQL). What is asserted
is what a user would check in each system: Shopify's fulfillment orders and fulfillments, the 3PL's
orders and the center each shipped from, Business Central's stock, sales orders and postings, the
inventory service's reservations and positions, the order's status history and timeline.
"""

from __future__ import annotations

from retail.inventory.v1 import inventory_pb2, inventory_service_pb2
from retail.orders.v1 import orders_pb2
from tests.support.mesh import Running, until
from tests.support.systems import (
    bc_has_no_order,
    bc_stock,
    cancel_request,
    continue_selling,
    count_at_3pl,
    fulfilled_in_shopify,
    position,
    postings,
    releases,
    service_rows,
    shopify_shows,
    tpl_centers,
    tpl_products,
    warehouse_order,
)

Status = orders_pb2.OrderStatus
ReservationState = inventory_pb2.ReservationState


async def reservations(running: Running, order_id: str) -> list[inventory_pb2.Reservation]:
    """Every reservation of the order, closed ones too."""
    reply = await running.inventory.ListReservations(
        inventory_service_pb2.ListReservationsRequest(order_id=order_id, include_closed=True), timeout=5
    )
    return list(reply.reservations)


async def settled(running: Running, order_id: str, state: int) -> list[inventory_pb2.Reservation]:
    """The order's reservations once every one is in `state` (inventory applies shipments on its own)."""

    async def check() -> list[inventory_pb2.Reservation]:
        found = await reservations(running, order_id)
        return found if found and all(r.state == state for r in found) else []

    return await until(check, f"{order_id}'s reservations {ReservationState.Name(state)}")


async def order_split_over_two_locations_ships_twice_and_is_fully_invoiced(running: Running) -> None:
    """Split fulfillment: a reservation across two locations, one release, 3PL order and posting each."""
    # SKU-1005 only at EAST; SKU-1006 two at each location, so four can only come from both.
    await count_at_3pl(running, {("SKU-1005", "WEST"): 0, ("SKU-1006", "EAST"): 2, ("SKU-1006", "WEST"): 2})
    await shopify_shows(running, {("SKU-1005", "WEST"): 0, ("SKU-1006", "EAST"): 2, ("SKU-1006", "WEST"): 2})
    bc_before = await bc_stock(running)

    shop_order = await running.checkout(
        [{"sku": "SKU-1005", "quantity": 2}, {"sku": "SKU-1006", "quantity": 4}]
    )
    order_id = f"shp-{shop_order['id']}"
    order = await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)

    # Inventory: the line of four reserved at both locations, all of it consumed by the shipments.
    consumed = await settled(running, order_id, ReservationState.RESERVATION_STATE_CONSUMED)
    assert {(r.sku, r.location_id): r.quantity for r in consumed} == {
        ("SKU-1005", "EAST"): 2,
        ("SKU-1006", "EAST"): 2,
        ("SKU-1006", "WEST"): 2,
    }
    # Shopify: one fulfillment order per location, each closed by exactly one fulfillment with tracking.
    fos = await fulfilled_in_shopify(running, shop_order)
    assert {fo["location"]: fo["lines"] for fo in fos} == {
        "East Warehouse": {"SKU-1005": 2, "SKU-1006": 2},
        "West Warehouse": {"SKU-1006": 2},
    }
    assert all(fo["status"] == "CLOSED" and fo["remaining"] == 0 for fo in fos), fos
    assert all(len(fo["tracking"]) == 1 and fo["tracking"][0] for fo in fos), fos
    fulfillments = await running.created(running.shopify, "fulfillments", str(shop_order["id"]))
    assert sorted(fulfillments.values()) == [1, 1]
    # 3PL: one order per release, each shipped from the center the mesh routed it to.
    assert sorted((await running.created(running.tpl, "orders", order_id)).values()) == [1, 1]
    shipped_from = {
        location: await tpl_centers(running, warehouse_order_id)
        for location, warehouse_order_id in (await releases(running, order_id)).items()
    }
    assert shipped_from == {"EAST": {"EAST"}, "WEST": {"WEST"}}
    # Business Central: two postings, stock taken at the location each shipment left.
    assert await postings(running, order_id) == 2
    bc_after = await bc_stock(running)
    taken = {key: bc_before[key] - bc_after[key] for key in bc_before if bc_before[key] != bc_after[key]}
    assert taken == {("SKU-1005", "EAST"): 2, ("SKU-1006", "EAST"): 2, ("SKU-1006", "WEST"): 2}
    assert list((await running.created(running.bc, "salesOrders", shop_order["name"])).values()) == [1]
    # The mesh: released to both locations, partially shipped, then shipped and invoiced.
    changes = [c.to_status for c in order.status_history]
    released = next(c for c in order.status_history if c.to_status == Status.ORDER_STATUS_RELEASED)
    assert released.note == "EAST, WEST"
    assert changes.index(Status.ORDER_STATUS_PARTIALLY_SHIPPED) < changes.index(Status.ORDER_STATUS_SHIPPED)
    assert changes[-1] == Status.ORDER_STATUS_INVOICED
    assert all(line.quantity_shipped == line.quantity for line in order.lines)


async def backordered_line_waits_for_stock_then_ships_and_is_invoiced(running: Running) -> None:
    """Backorder: a line sold out everywhere waits; stock counted at the 3PL releases the order."""
    # SKU-1007 sold out everywhere; the merchant keeps selling it (Shopify's "continue selling").
    await count_at_3pl(running, {("SKU-1007", "EAST"): 0, ("SKU-1007", "WEST"): 0})
    await shopify_shows(running, {("SKU-1007", "EAST"): 0, ("SKU-1007", "WEST"): 0})
    await continue_selling(running, "SKU-1007")

    shop_order = await running.checkout(
        [{"sku": "SKU-1001", "quantity": 1}, {"sku": "SKU-1007", "quantity": 2}]
    )
    order_id = f"shp-{shop_order['id']}"
    waiting = await running.reaches(order_id, Status.ORDER_STATUS_BACKORDERED)

    backordered = next(c for c in waiting.status_history if c.to_status == Status.ORDER_STATUS_BACKORDERED)
    assert backordered.note == "waiting for SKU-1007"
    assert {line.sku: line.quantity_backordered for line in waiting.lines} == {"SKU-1001": 0, "SKU-1007": 2}
    assert await running.created(running.bc, "salesOrders", shop_order["name"]) == {}
    assert await running.created(running.tpl, "orders", order_id) == {}
    # SKU-1001 is held where the destination routed it (EAST or WEST, by the checkout's address).
    (held,) = [r.location_id for r in await reservations(running, order_id) if r.sku == "SKU-1001"]

    # Three units arrive there: the warehouse counts them, the next snapshot brings them in.
    await count_at_3pl(running, {("SKU-1007", held): 3})
    order = await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)

    changes = [c.to_status for c in order.status_history]
    assert changes[:3] == [
        Status.ORDER_STATUS_RECEIVED,
        Status.ORDER_STATUS_BACKORDERED,
        Status.ORDER_STATUS_ACCEPTED,
    ]
    assert changes[-1] == Status.ORDER_STATUS_INVOICED
    timeline = await running.timeline(order_id)
    woken = [e for e in timeline if e.summary == "SKU-1007 available: reserving again"]
    assert len(woken) == 1 and woken[0].message_id, [(e.summary, e.message_id) for e in timeline]
    assert not [e for e in timeline if "still waiting" in e.summary]
    assert list((await running.created(running.bc, "salesOrders", shop_order["name"])).values()) == [1]
    assert list((await running.created(running.tpl, "orders", order_id)).values()) == [1]
    (fo,) = await fulfilled_in_shopify(running, shop_order)
    assert sum((await running.created(running.shopify, "fulfillments", str(shop_order["id"]))).values()) == 1
    assert fo["status"] == "CLOSED" and fo["lines"] == {"SKU-1001": 1, "SKU-1007": 2}
    assert await postings(running, order_id) == 1
    assert (await position(running, "SKU-1007", held)).on_hand == 1


async def backordered_line_with_partial_stock_keeps_what_it_has_and_ships_whole(running: Running) -> None:
    """Backorder with partial stock: 1 of 3 reserved while waiting, the rest when stock arrives."""
    # One SKU-1009 left, at EAST; the merchant keeps selling it.
    await count_at_3pl(running, {("SKU-1009", "EAST"): 1, ("SKU-1009", "WEST"): 0})
    await shopify_shows(running, {("SKU-1009", "EAST"): 1, ("SKU-1009", "WEST"): 0})
    await continue_selling(running, "SKU-1009")

    shop_order = await running.checkout([{"sku": "SKU-1009", "quantity": 3}])
    order_id = f"shp-{shop_order['id']}"
    waiting = await running.reaches(order_id, Status.ORDER_STATUS_BACKORDERED)

    # The order waits whole, holding the unit it got: nothing goes to the ERP or the 3PL yet.
    assert [(line.sku, line.quantity_backordered) for line in waiting.lines] == [("SKU-1009", 2)]
    held = [(r.location_id, r.quantity, r.state) for r in await reservations(running, order_id)]
    assert held == [("EAST", 1, ReservationState.RESERVATION_STATE_ACTIVE)]
    assert (await position(running, "SKU-1009", "EAST")).reserved == 1
    assert await running.created(running.bc, "salesOrders", shop_order["name"]) == {}
    assert await running.created(running.tpl, "orders", order_id) == {}

    # Two more units are counted at EAST (three on hand, one of them already the order's).
    await count_at_3pl(running, {("SKU-1009", "EAST"): 3})
    order = await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)

    changes = [c.to_status for c in order.status_history]
    assert changes[:3] == [
        Status.ORDER_STATUS_RECEIVED,
        Status.ORDER_STATUS_BACKORDERED,
        Status.ORDER_STATUS_ACCEPTED,
    ]
    assert changes[-1] == Status.ORDER_STATUS_INVOICED
    assert [(line.quantity_shipped, line.quantity_backordered) for line in order.lines] == [(3, 0)]
    timeline = await running.timeline(order_id)
    assert [e.summary for e in timeline].count("SKU-1009 available: reserving again") == 1
    consumed = await settled(running, order_id, ReservationState.RESERVATION_STATE_CONSUMED)
    assert [(r.location_id, r.quantity) for r in consumed] == [("EAST", 3)]
    assert list((await running.created(running.bc, "salesOrders", shop_order["name"])).values()) == [1]
    assert list((await running.created(running.tpl, "orders", order_id)).values()) == [1]
    assert await tpl_products(running, await warehouse_order(running, order_id)) == {"SKU-1009": 3}
    (fo,) = await fulfilled_in_shopify(running, shop_order)
    assert sum((await running.created(running.shopify, "fulfillments", str(shop_order["id"]))).values()) == 1
    assert fo["status"] == "CLOSED" and fo["lines"] == {"SKU-1009": 3} and fo["remaining"] == 0
    assert await postings(running, order_id) == 1
    after = await position(running, "SKU-1009", "EAST")
    assert (after.on_hand, after.reserved) == (0, 0)


async def cancellation_after_release_accepted_by_the_3pl_releases_stock_and_the_erp_order(
    running: Running,
) -> None:
    """Cancellation after release, accepted by the 3PL: stock released, ERP order removed, no fulfillment."""
    shop_order = await running.checkout()
    order_id = f"shp-{shop_order['id']}"
    await until(lambda: warehouse_order(running, order_id), "the order at the 3PL")
    await running.reaches(order_id, Status.ORDER_STATUS_RELEASED)

    await running.orders.CancelOrder(cancel_request(order_id), timeout=10)
    order = await running.reaches(order_id, Status.ORDER_STATUS_CANCELLED)

    assert Status.ORDER_STATUS_CANCEL_REQUESTED in [c.to_status for c in order.status_history]
    released = await settled(running, order_id, ReservationState.RESERVATION_STATE_RELEASED)
    assert len(released) == len(shop_order["line_items"])
    assert await until(
        lambda: bc_has_no_order(running, shop_order["name"]), "the ERP order removed", timeout=30
    )
    assert sum((await running.created(running.shopify, "fulfillments", str(shop_order["id"]))).values()) == 0


async def partial_shipment_becomes_two_fulfillments_and_two_erp_postings(running: Running) -> None:
    """Partial shipment: the 3PL ships in two parts; reservations are consumed in two steps."""
    shop_order = await running.checkout()
    order_id = f"shp-{shop_order['id']}"
    warehouse_order_id = await until(lambda: warehouse_order(running, order_id), "the order at the 3PL")

    shipped = await running.http.post(
        f"{running.tpl}/_sandbox/orders/{warehouse_order_id}/ship", json={"split": True}
    )
    order = await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)

    assert shipped.status_code == 200, shipped.text
    await fulfilled_in_shopify(running, shop_order)
    assert sum((await running.created(running.shopify, "fulfillments", str(shop_order["id"]))).values()) == 2
    assert await postings(running, order_id) == 2
    changes = [c.to_status for c in order.status_history]
    assert Status.ORDER_STATUS_PARTIALLY_SHIPPED in changes
    assert changes.index(Status.ORDER_STATUS_PARTIALLY_SHIPPED) < changes.index(Status.ORDER_STATUS_SHIPPED)
    # Inventory consumed the reservations in two steps, one per parcel, to the full quantities.
    consumed = await settled(running, order_id, ReservationState.RESERVATION_STATE_CONSUMED)
    assert {(r.line_id, r.quantity) for r in consumed} == {
        (str(line["id"]), line["quantity"]) for line in shop_order["line_items"]
    }
    steps = await service_rows(
        running,
        "inventory",
        "SELECT count(*) FROM outbox WHERE key = :order_id AND event_type LIKE '%StockConsumed'",
        order_id=order_id,
    )
    assert steps == [(2,)]
