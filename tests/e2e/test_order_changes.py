"""Changes to an order through real processes (O7): lines and whole orders cancelled before
release, and shipping addresses corrected before release, at the 3PL before picking, and refused
after shipment.

One mesh runs for the module as processes, as in test_order_to_cash. A retailer meets these
changes when a customer calls customer service shortly after checkout: customer service puts the
order on hold (PlaceHold, CUSTOMER_REQUEST, from the ops console), changes it in Shopify admin or
through the gRPC API, and releases the hold. To catch the order before it is released every time,
the ERP is made slow for the checkout (a 5 s latency on Business Central's sales order create, as
under month-end load): the order waits in ACCEPTED while the ERP works, the hold lands there, and
the ERP sales order is then created while the order is held, so nothing reaches the 3PL until the
hold is released. What is asserted is what a user would check in each system: reservations in the
inventory service, the sales order in Business Central, the order at the 3PL, the stand-ins'
create counts, and the order's status history, timeline and exceptions in the mesh.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_pb2, inventory_service_pb2
from retail.orders.v1 import orders_pb2, orders_service_pb2
from tests.support.mesh import Running, bc_token, no_active_reservation, running_mesh, until
from tools.topology import SANDBOX_CREDENTIALS

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

Status = orders_pb2.OrderStatus
OPERATOR = common_pb2.SOURCE_SYSTEM_OPERATOR
#: Business Central answering a sales order create only after this long.
SLOW_ERP = {"salesOrders.create": {"latency_ms": 5000}}
CORRECTED = common_pb2.Address(
    name="Ada Lovelace",
    lines=["42 Harbour Rd", "Unit 7"],
    city="Portland",
    province_code="ME",
    postal_code="04101",
    country_code="US",
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """The mesh on SQLite with its sandbox on free ports, ready for orders."""
    async with running_mesh(tmp_path_factory.mktemp("order-changes") / "mesh") as mesh:
        yield mesh


async def held_before_release(
    running: Running, lines: list[dict[str, Any]] | None = None
) -> tuple[dict[str, Any], str, str]:
    """Check out and hold the order while the ERP creates it; returns (Shopify order, id, hold id).

    On return the ERP sales order exists and the order is ON_HOLD, to resume ERP_CREATED: nothing
    has been released to the 3PL.
    """
    await running.http.put(f"{running.bc}/_sandbox/faults", json=SLOW_ERP)
    try:
        shop_order = await (running.checkout(lines) if lines else running.checkout())
        order_id = f"shp-{shop_order['id']}"
        await running.reaches(order_id, Status.ORDER_STATUS_ACCEPTED, timeout=60)
        held = await running.orders.PlaceHold(
            orders_service_pb2.PlaceHoldRequest(
                request_id=f"hold-{order_id}",
                order_id=order_id,
                reason=orders_pb2.HOLD_REASON_CUSTOMER_REQUEST,
                placed_by=OPERATOR,
                note="customer called to change the order",
            ),
            timeout=10,
        )

        async def erp_created_while_held() -> bool:
            order = await running.order(order_id)
            return (
                order.status == Status.ORDER_STATUS_ON_HOLD
                and order.resume_status == Status.ORDER_STATUS_ERP_CREATED
                and bool(order.erp_sales_order.id)
            )

        await until(erp_created_while_held, f"{order_id} ERP-created while held", timeout=90)
    finally:
        await running.http.delete(f"{running.bc}/_sandbox/faults")
    return shop_order, order_id, held.hold.hold_id


async def release_hold(running: Running, order_id: str, hold_id: str) -> None:
    await running.orders.ReleaseHold(
        orders_service_pb2.ReleaseHoldRequest(
            request_id=f"release-{order_id}",
            order_id=order_id,
            hold_id=hold_id,
            released_by=OPERATOR,
            note="change done",
        ),
        timeout=10,
    )


async def test_a_line_removed_in_shopify_admin_before_release_never_reaches_the_3pl(running: Running):
    shop_order, order_id, hold_id = await held_before_release(running)
    kept, removed = shop_order["line_items"]

    edit = await running.http.post(
        f"{running.shopify}/_sandbox/orders/{shop_order['id']}/edit",
        json={"remove": [{"line_item_id": removed["id"], "quantity": removed["quantity"]}]},
    )
    assert edit.status_code == 200, edit.text

    async def line_cancelled() -> orders_pb2.SalesOrder | None:
        order = await running.order(order_id)
        line = next(x for x in order.lines if x.line_id == str(removed["id"]))
        return order if line.status == orders_pb2.LINE_STATUS_CANCELLED else None

    order = await until(line_cancelled, "the removed line cancelled in the mesh")
    assert await until(
        lambda: _active(running, order_id, {str(kept["id"]): kept["quantity"]}), "the line's stock released"
    )
    bc_lines = await until(lambda: _bc_lines(running, shop_order["name"], 1), "the ERP line removed")
    await release_hold(running, order_id, hold_id)
    order = await running.reaches(order_id, Status.ORDER_STATUS_RELEASED)
    tpl_orders = await until(lambda: _tpl_orders(running, order_id), "the order at the 3PL")

    assert bc_lines == {kept["sku"]: kept["quantity"]}
    assert [_products(o) for o in tpl_orders] == [{kept["sku"]: kept["quantity"]}]
    assert sum((await running.created(running.tpl, "orders", order_id)).values()) == 1
    changes = [c.to_status for c in order.status_history]
    assert changes.index(Status.ORDER_STATUS_ON_HOLD) < changes.index(Status.ORDER_STATUS_RELEASED)
    assert Status.ORDER_STATUS_CANCELLED not in changes
    timeline = await running.timeline(order_id)
    assert any("units removed in the channel cancelled" in e.summary for e in timeline), timeline


async def test_a_quantity_reduced_over_grpc_before_release_reduces_the_erp_line_and_the_3pl_order(
    running: Running,
):
    shop_order, order_id, hold_id = await held_before_release(running)
    one, two = shop_order["line_items"]

    await running.orders.CancelOrderLines(
        orders_service_pb2.CancelOrderLinesRequest(
            request_id=f"cancel-lines-{order_id}",
            order_id=order_id,
            lines=[orders_service_pb2.LineCancellation(line_id=str(two["id"]), quantity=1)],
            reason=orders_pb2.CANCELLATION_REASON_CUSTOMER_REQUEST,
            requested_by=OPERATOR,
        ),
        timeout=10,
    )
    wanted = {str(one["id"]): one["quantity"], str(two["id"]): two["quantity"] - 1}
    assert await until(lambda: _active(running, order_id, wanted), "one unit's stock released")
    bc_lines = await until(
        lambda: _bc_quantities(running, shop_order["name"], two["sku"], two["quantity"] - 1),
        "the ERP line reduced",
    )
    await release_hold(running, order_id, hold_id)
    tpl_orders = await until(lambda: _tpl_orders(running, order_id), "the order at the 3PL")
    order = await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)

    assert bc_lines == {one["sku"]: one["quantity"], two["sku"]: two["quantity"] - 1}
    assert [_products(o) for o in tpl_orders] == [
        {one["sku"]: one["quantity"], two["sku"]: two["quantity"] - 1}
    ]
    line = next(x for x in order.lines if x.line_id == str(two["id"]))
    assert (line.quantity_cancelled, line.quantity_shipped) == (1, two["quantity"] - 1)


async def test_an_order_cancelled_in_shopify_admin_before_release_releases_stock_and_the_erp_order(
    running: Running,
):
    shop_order, order_id, _ = await held_before_release(running)

    cancelled = await running.http.post(
        f"{running.shopify}/_sandbox/orders/{shop_order['id']}/cancel", json={"reason": "CUSTOMER"}
    )
    order = await running.reaches(order_id, Status.ORDER_STATUS_CANCELLED)

    assert cancelled.status_code == 200, cancelled.text
    assert await until(lambda: no_active_reservation(running, order_id), "the reservations released")
    assert await until(lambda: bc_has_no_order(running, shop_order["name"]), "the ERP order deleted")
    last = order.status_history[-1]
    assert (last.from_status, last.to_status) == (Status.ORDER_STATUS_ON_HOLD, Status.ORDER_STATUS_CANCELLED)
    assert last.source_system == common_pb2.SOURCE_SYSTEM_SHOPIFY
    assert Status.ORDER_STATUS_RELEASED not in [c.to_status for c in order.status_history]
    assert await running.created(running.tpl, "orders", order_id) == {}
    assert await _tpl_orders(running, order_id) == []


async def test_an_address_edited_in_shopify_admin_before_release_is_the_one_the_3pl_gets(running: Running):
    shop_order, order_id, hold_id = await held_before_release(running)

    updated = await running.http.post(
        f"{running.shopify}/_sandbox/orders/{shop_order['id']}/update",
        json={"shipping_address": {"address1": "42 Harbour Rd", "city": "Portland", "zip": "04101"}},
    )
    assert updated.status_code == 200, updated.text

    async def corrected() -> bool:
        order = await running.order(order_id)
        return list(order.shipping_address.lines[:1]) == ["42 Harbour Rd"]

    await until(corrected, "the corrected address in the mesh")
    await release_hold(running, order_id, hold_id)
    (tpl_order,) = await until(lambda: _tpl_orders(running, order_id), "the order at the 3PL")

    address = tpl_order["recipient"]["address"]
    assert (address["address1"], address["city"], address["zip_code"]) == (
        "42 Harbour Rd",
        "Portland",
        "04101",
    )
    assert sum((await running.created(running.tpl, "orders", order_id)).values()) == 1


async def test_an_address_corrected_after_release_updates_the_unpicked_3pl_order(running: Running):
    shop_order = await running.checkout()
    order_id = f"shp-{shop_order['id']}"
    await running.reaches(order_id, Status.ORDER_STATUS_RELEASED)
    await until(lambda: _tpl_orders(running, order_id), "the order at the 3PL")

    reply = await running.orders.CorrectAddress(_correct(order_id), timeout=10)

    async def updated_at_3pl() -> bool:
        (tpl_order,) = await _tpl_orders(running, order_id)
        return tpl_order["shipments"][0]["recipient"]["address"]["address1"] == "42 Harbour Rd"

    await until(updated_at_3pl, "the 3PL shipment's address updated")
    (tpl_order,) = await _tpl_orders(running, order_id)
    assert reply.warehouse_update_required
    assert tpl_order["recipient"]["address"]["city"] == "Portland"
    assert tpl_order["shipments"][0]["status"] == "Processing"

    async def recorded() -> bool:
        return any(e.type == "WarehouseAddressUpdated" for e in await running.timeline(order_id))

    await until(recorded, "the warehouse's update in the order's timeline")


async def test_an_address_correction_the_3pl_refuses_after_picking_is_recorded_for_customer_service(
    running: Running,
):
    shop_order = await running.checkout()
    order_id = f"shp-{shop_order['id']}"
    await running.reaches(order_id, Status.ORDER_STATUS_RELEASED)
    await until(lambda: _tpl_orders(running, order_id), "the order at the 3PL")
    picked = await running.http.post(f"{running.tpl}/_sandbox/advance", json={"steps": 1, "force": True})
    assert picked.status_code == 200, picked.text

    await running.orders.CorrectAddress(_correct(order_id), timeout=10)

    await until(
        lambda: _async(_exceptions(running, "ADDRESS_CORRECTION_REFUSED", order_id)),
        "the refusal as an exception",
    )
    timeline = await running.timeline(order_id)
    refused = [e for e in timeline if e.type == "WarehouseAddressUpdateRejected"]
    assert refused and refused[0].outcome == common_pb2.HOP_OUTCOME_FAILED
    assert "ALREADY_PICKED" in refused[0].summary
    (tpl_order,) = await _tpl_orders(running, order_id)
    assert tpl_order["recipient"]["address"]["address1"] != "42 Harbour Rd"


async def test_an_address_correction_after_shipment_is_refused_with_failed_precondition_and_recorded(
    running: Running,
):
    shop_order = await running.checkout()
    order_id = f"shp-{shop_order['id']}"
    await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)

    with pytest.raises(grpc.aio.AioRpcError) as first:
        await running.orders.CorrectAddress(_correct(order_id), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as repeat:
        await running.orders.CorrectAddress(_correct(order_id), timeout=10)

    assert first.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cannot be corrected while the order is INVOICED" in first.value.details()
    assert (repeat.value.code(), repeat.value.details()) == (first.value.code(), first.value.details())
    assert _exceptions(running, "ADDRESS_CORRECTION_REFUSED", order_id) == [
        (order_id, "ADDRESS_CORRECTION_REFUSED")
    ]
    timeline = await running.timeline(order_id)
    assert any(e.type == "CorrectAddress" and e.outcome == common_pb2.HOP_OUTCOME_FAILED for e in timeline), (
        timeline
    )
    order = await running.order(order_id)
    assert list(order.shipping_address.lines[:1]) != ["42 Harbour Rd"]
    (tpl_order,) = await _tpl_orders(running, order_id)
    assert tpl_order["recipient"]["address"]["address1"] != "42 Harbour Rd"


def _correct(order_id: str) -> orders_service_pb2.CorrectAddressRequest:
    return orders_service_pb2.CorrectAddressRequest(
        request_id=f"address-{order_id}", order_id=order_id, shipping_address=CORRECTED, requested_by=OPERATOR
    )


async def _async(value: Any) -> Any:
    return value


async def _active(running: Running, order_id: str, wanted: dict[str, int]) -> bool:
    """Whether the order's active reservations are exactly `wanted` (line id -> quantity)."""
    reply = await running.inventory.ListReservations(
        inventory_service_pb2.ListReservationsRequest(order_id=order_id, include_closed=True), timeout=5
    )
    active: dict[str, int] = {}
    for r in reply.reservations:
        if r.state == inventory_pb2.RESERVATION_STATE_ACTIVE:
            active[r.line_id] = active.get(r.line_id, 0) + r.quantity
    return active == wanted


async def _bc_order(running: Running, external_document_number: str) -> dict[str, Any] | None:
    token = await bc_token(running)
    auth = {"Authorization": f"Bearer {token}"}
    companies = (await running.http.get(f"{running.bc}/api/v2.0/companies", headers=auth)).json()["value"]
    found = await running.http.get(
        f"{running.bc}/api/v2.0/companies({companies[0]['id']})/salesOrders",
        params={
            "$filter": f"externalDocumentNumber eq '{external_document_number}'",
            "$expand": "salesOrderLines",
        },
        headers=auth,
    )
    orders = found.json()["value"]
    return orders[0] if orders else None


async def _bc_lines(running: Running, name: str, count: int) -> dict[str, float] | None:
    """The BC order's item quantities once it has `count` lines."""
    order = await _bc_order(running, name)
    if order is None or len(order["salesOrderLines"]) != count:
        return None
    return {line["lineObjectNumber"]: line["quantity"] for line in order["salesOrderLines"]}


async def _bc_quantities(running: Running, name: str, sku: str, quantity: int) -> dict[str, float] | None:
    """The BC order's item quantities once `sku` has `quantity`."""
    order = await _bc_order(running, name)
    lines = {line["lineObjectNumber"]: line["quantity"] for line in (order or {}).get("salesOrderLines", [])}
    return lines if lines.get(sku) == quantity else None


async def bc_has_no_order(running: Running, name: str) -> bool:
    """Whether Business Central has no sales order with this external document number."""
    return await _bc_order(running, name) is None


async def _tpl_orders(running: Running, order_id: str) -> list[dict[str, Any]]:
    """The 3PL's orders for the order's releases, as its API shows them."""
    reply = await running.http.get(
        f"{running.tpl}/2026-07/order",
        headers={"Authorization": f"Bearer {SANDBOX_CREDENTIALS['TPL_API_TOKEN']}"},
    )
    assert reply.status_code == 200, reply.text
    return [o for o in reply.json() if o["reference_id"].startswith(f"{order_id}:")]


def _products(tpl_order: dict[str, Any]) -> dict[str, int]:
    return {p["sku"]: p["quantity"] for p in tpl_order["products"]}


def _exceptions(running: Running, reason: str, order_id: str) -> list[tuple[str, str]]:
    with sqlite3.connect(running.mesh.topology.data_dir / "orders.db") as db:
        return db.execute(
            "SELECT order_id, reason_code FROM order_exception WHERE reason_code = ? AND order_id = ?",
            (reason, order_id),
        ).fetchall()
