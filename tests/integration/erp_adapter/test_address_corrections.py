"""Address corrections reach the ERP (MISSION O7): OrderAddressCorrected on NATS → erp-adapter →
the Business Central stand-in's sales order ship-to fields over HTTP (If-Match, 412 re-read), a
correction that overtakes the creation applied right after it, and BC's refusal once the order has
shipped recorded instead of retried (docs/decisions/0022-address-corrections-reach-the-erp.md)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from libs.http.answer import Answer
from libs.http.budget import Lane
from retail.common.v1 import common_pb2
from retail.orders.v1 import events_pb2 as order_events
from retail.shipments.v1 import events_pb2 as shipment_events
from services.erp_adapter.app import business_central
from services.erp_adapter.config import ErpAdapterSettings
from services.erp_adapter.store.tables import ErpSalesOrderRow
from tests.integration.erp_adapter.conftest import Erp, accepted, sales_order, shipment_confirmed

NEW_ADDRESS = common_pb2.Address(
    name="Ada Buyer",
    lines=["77 River Rd", "Apt 4"],
    city="Troy",
    province_code="NY",
    postal_code="12180",
    country_code="US",
)
NEW_SHIP_TO = {
    "shipToName": "Ada Buyer",
    "shipToAddressLine1": "77 River Rd",
    "shipToAddressLine2": "Apt 4",
    "shipToCity": "Troy",
    "shipToState": "NY",
    "shipToPostCode": "12180",
    "shipToCountry": "US",
}


def corrected(order_id: str, seconds: int = 1_760_000_000) -> order_events.OrderAddressCorrected:
    """The orders service's OrderAddressCorrected, made at `seconds`."""
    event = order_events.OrderAddressCorrected(
        meta=common_pb2.EventMeta(), order_id=order_id, shipping_address=NEW_ADDRESS
    )
    event.meta.occurred_at.FromSeconds(seconds)
    return event


async def bc_order(erp: Erp, bc_id: str) -> dict[str, Any]:
    return next(o for o in (await erp.state())["salesOrders"] if o["id"] == bc_id)


def ship_to(order: dict[str, Any]) -> dict[str, Any]:
    return {name: order[name] for name in NEW_SHIP_TO}


async def row_of(erp: Erp, order_id: str) -> ErpSalesOrderRow:
    async with erp.inbox.db.read() as session:
        row = await session.get(ErpSalesOrderRow, order_id)
        assert row is not None
        return row


async def test_a_corrected_address_becomes_the_sales_orders_ship_to(erp: Erp) -> None:
    await erp.publish(accepted(sales_order("O-40", "#1040")), key="O-40")
    [created] = await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-40")

    await erp.handled(await erp.publish(corrected("O-40"), key="O-40"))

    assert ship_to(await bc_order(erp, created.erp_sales_order.id)) == NEW_SHIP_TO
    row = await row_of(erp, "O-40")
    assert row.ship_to["outcome"] == "applied"
    assert "fields" not in row.ship_to  # the address is not kept once BC has it (S4)
    patches = [
        x for x in erp.exchanges if x.method == "PATCH" and x.path.endswith(f"({created.erp_sales_order.id})")
    ]
    assert [x.status for x in patches] == [200]


async def test_an_order_changed_in_bc_meanwhile_is_read_again_and_both_changes_stay(
    erp: Erp, bc_url: str
) -> None:
    await erp.publish(accepted(sales_order("O-41", "#1041")), key="O-41")
    [created] = await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-41")
    bc_id = created.erp_sales_order.id
    other_user = business_central(ErpAdapterSettings(bc_base_url=bc_url, bc_client_secret="sandbox-secret"))
    interfered: list[int] = []

    async def interfere(response: Answer) -> None:
        """Right after the adapter read the order, a BC user changes it (its ETag moves on)."""
        if response.method == "GET" and response.path.endswith(f"salesOrders({bc_id})"):
            if not interfered:
                interfered.append(1)
                etag = response.json()["@odata.etag"]
                await other_user.request(
                    "PATCH",
                    f"salesOrders({bc_id})",
                    lane=Lane.BULK,
                    json={"shipToContact": "Front desk"},
                    if_match=etag,
                )

    async with other_user:
        erp.handlers.client.on_response.append(interfere)
        await erp.handled(await erp.publish(corrected("O-41"), key="O-41"))

    order = await bc_order(erp, bc_id)
    assert ship_to(order) == NEW_SHIP_TO
    assert order["shipToContact"] == "Front desk"
    patches = [
        x.status for x in erp.exchanges if x.method == "PATCH" and x.path.endswith(f"salesOrders({bc_id})")
    ]
    assert patches == [412, 200]


async def test_a_correction_that_overtakes_the_creation_is_applied_right_after_it(erp: Erp) -> None:
    await erp.handled(await erp.publish(corrected("O-42"), key="O-42"))

    await erp.publish(accepted(sales_order("O-42", "#1042")), key="O-42")

    [created] = await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-42")
    await _until(erp, lambda: _shows_new_address(erp, created.erp_sales_order.id))
    assert await erp.created("#1042") == 1


async def test_bc_refusing_a_correction_after_shipping_is_recorded_not_retried(erp: Erp) -> None:
    await erp.publish(accepted(sales_order("O-43", "#1043")), key="O-43")
    [created] = await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-43")
    await erp.publish(shipment_confirmed("SH-43", "O-43", [("L1", "SKU-1001", 1)], partial=True), key="O-43")
    await erp.wait_for(shipment_events.ErpShipmentPosted, order_id="O-43")
    before = ship_to(await bc_order(erp, created.erp_sales_order.id))

    await erp.handled(await erp.publish(corrected("O-43"), key="O-43"))

    assert ship_to(await bc_order(erp, created.erp_sales_order.id)) == before
    row = await row_of(erp, "O-43")
    assert (row.ship_to["outcome"], row.ship_to["code"]) == ("refused", "Application_DialogException")
    assert "partly shipped" in row.ship_to["message"]
    bc_id = created.erp_sales_order.id
    patches = [
        x.status for x in erp.exchanges if x.method == "PATCH" and x.path.endswith(f"salesOrders({bc_id})")
    ]
    assert patches == [400]


async def test_an_older_correction_delivered_late_changes_nothing(erp: Erp) -> None:
    await erp.publish(accepted(sales_order("O-44", "#1044")), key="O-44")
    [created] = await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-44")
    await erp.handled(await erp.publish(corrected("O-44", seconds=1_760_000_100), key="O-44"))
    older = corrected("O-44", seconds=1_760_000_000)
    older.shipping_address.city = "Schenectady"

    await erp.handled(await erp.publish(older, key="O-44"))

    assert ship_to(await bc_order(erp, created.erp_sales_order.id)) == NEW_SHIP_TO


async def _shows_new_address(erp: Erp, bc_id: str) -> bool:
    return ship_to(await bc_order(erp, bc_id)) == NEW_SHIP_TO


async def _until(erp: Erp, condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.05)
