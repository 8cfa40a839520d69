"""Signals in (MISSION I5, issue 5) through real processes: a purchase order created in the
Business Central stand-in, goods received by the 3PL stand-in against it, a customer return put
back to stock; checked where a user would look: the mesh's positions over gRPC and the available
quantity the Shopify stand-in shows for the location.

One mesh runs for the module (SQLite), with the purchase-order and receiving polls at one second.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from retail.inventory.v1 import inventory_pb2, inventory_service_pb2
from tests.support.mesh import Running, bc_token, running_mesh, until
from tools.topology import SANDBOX_CREDENTIALS

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

TPL_HEADERS = {
    "Authorization": f"Bearer {SANDBOX_CREDENTIALS['TPL_API_TOKEN']}",
    "shipbob_channel_id": "1001",
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """The mesh on SQLite, polling purchase orders and receiving orders every second."""
    env = {"BC_INBOUND_POLL_S": "1", "TPL_RECEIVING_INTERVAL_S": "1"}
    async with running_mesh(tmp_path_factory.mktemp("inventory-signals") / "mesh", extra_env=env) as mesh:
        yield mesh


async def position(running: Running, sku: str, location: str = "EAST") -> inventory_pb2.InventoryPosition:
    reply = await running.inventory.GetPosition(
        inventory_service_pb2.GetPositionRequest(sku=sku, location_id=location), timeout=5
    )
    return reply.position


def channel(p: inventory_pb2.InventoryPosition, name: str) -> int:
    return next(c.available for c in p.channels if c.channel == name)


async def shopify_available(running: Running, sku: str, location: str = "EAST") -> int:
    state = (await running.http.get(f"{running.shopify}/_sandbox/state")).json()
    return state["inventory"][sku]["levels"][location]["available"]


async def shopify_shows(running: Running, sku: str, expected: int) -> None:
    async def shown() -> bool:
        return await shopify_available(running, sku) == expected

    await until(shown, f"Shopify showing {expected} of {sku} at EAST", timeout=60)


async def bc(running: Running) -> tuple[str, dict[str, str]]:
    """The BC company's API root and an authorization header."""
    auth = {"Authorization": f"Bearer {await bc_token(running)}"}
    companies = (await running.http.get(f"{running.bc}/api/v2.0/companies", headers=auth)).json()["value"]
    return f"{running.bc}/api/v2.0/companies({companies[0]['id']})", auth


async def create_purchase_order(running: Running, sku: str, quantity: int) -> dict[str, Any]:
    base, auth = await bc(running)
    created = await running.http.post(
        f"{base}/purchaseOrders",
        json={
            "vendorNumber": "V10000",
            "purchaseOrderLines": [{"lineType": "Item", "lineObjectNumber": sku, "quantity": quantity}],
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    return created.json()


async def settled_incoming(running: Running, sku: str, expected: int) -> inventory_pb2.InventoryPosition:
    async def reached():
        p = await position(running, sku)
        return p if p.incoming == expected else None

    return await until(reached, f"incoming {expected} of {sku} at EAST", timeout=60)


def purchase_order_rows(running: Running, number: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(running.mesh.topology.data_dir / "erp-adapter.db") as db:
        return db.execute(
            "SELECT number, closed FROM erp_inbound_document WHERE number = ?", (number,)
        ).fetchall()


async def test_a_purchase_order_raises_incoming_which_only_the_channel_selling_incoming_may_sell(
    running: Running,
):
    before = await position(running, "SKU-1007")

    order = await create_purchase_order(running, "SKU-1007", 24)

    after = await settled_incoming(running, "SKU-1007", before.incoming + 24)
    assert (after.on_hand, after.available_to_sell) == (before.on_hand, before.available_to_sell)
    assert channel(after, "online-store") == channel(before, "online-store")
    assert channel(after, "pos") == channel(before, "pos") + 24  # policy.yaml: pos sells incoming
    # The mesh's first push of its stock may still be on its way when the purchase order lands.
    await shopify_shows(running, "SKU-1007", channel(after, "online-store"))

    # The erp-adapter records the document after the inventory service took its incoming.
    async def recorded() -> bool:
        return purchase_order_rows(running, order["number"]) == [(order["number"], 0)]

    await until(recorded, f"purchase order {order['number']} recorded open by the erp-adapter", timeout=30)


async def test_a_3pl_receipt_raises_on_hand_lowers_incoming_and_shopify_shows_the_new_availability(
    running: Running,
):
    before = await position(running, "SKU-1006")
    order = await create_purchase_order(running, "SKU-1006", 10)
    await settled_incoming(running, "SKU-1006", before.incoming + 10)
    wro = await running.http.post(
        f"{running.tpl}/2026-07/receiving",
        json={
            "fulfillment_center": {"id": 1},
            "purchase_order_number": order["number"],
            "boxes": [{"box_items": [{"sku": "SKU-1006", "quantity": 10}]}],
        },
        headers=TPL_HEADERS,
    )
    assert wro.status_code == 201, wro.text

    received = await running.http.post(
        f"{running.tpl}/_sandbox/receiving/{wro.json()['id']}/receive", json={}
    )

    assert received.json()["status"] == "Completed"

    async def on_hand_up():
        p = await position(running, "SKU-1006")
        return p if p.on_hand == before.on_hand + 10 else None

    after = await until(on_hand_up, "the receipt in on_hand", timeout=60)
    assert after.incoming == before.incoming
    assert channel(after, "online-store") == channel(before, "online-store") + 10
    await shopify_shows(running, "SKU-1006", channel(after, "online-store"))

    # The ERP posts the same receipt; BC deletes the fully received order and the poll closes it.
    base, auth = await bc(running)
    posted = await running.http.post(
        f"{base}/purchaseOrders({order['id']})/Microsoft.NAV.receiveAndInvoice", headers=auth
    )
    assert posted.status_code == 204, posted.text

    async def closed() -> bool:
        return purchase_order_rows(running, order["number"]) == [(order["number"], 1)]

    await until(closed, "the received purchase order closed by the erp-adapter", timeout=60)
    final = await position(running, "SKU-1006")
    assert (final.on_hand, final.incoming) == (after.on_hand, before.incoming)


async def test_a_return_goes_back_to_stock_and_its_damaged_units_are_not_sold(running: Running):
    before = await position(running, "SKU-1005")
    created = await running.http.post(
        f"{running.tpl}/2026-07/return",
        json={
            "reference_id": "rma-e2e-1",
            "fulfillment_center": {"id": 1},
            "inventory": [{"sku": "SKU-1005", "quantity": 3}],
        },
        headers=TPL_HEADERS,
    )
    assert created.status_code == 201, created.text

    await running.http.post(
        f"{running.tpl}/_sandbox/returns/{created.json()['id']}/receive", json={"damaged": {"SKU-1005": 1}}
    )

    async def returned():
        p = await position(running, "SKU-1005")
        return p if p.on_hand == before.on_hand + 3 else None

    after = await until(returned, "the return in on_hand", timeout=60)
    assert after.damaged == before.damaged + 1
    assert after.available_to_sell == before.available_to_sell + 2
    assert channel(after, "online-store") == channel(before, "online-store") + 2
    await shopify_shows(running, "SKU-1005", channel(after, "online-store"))
