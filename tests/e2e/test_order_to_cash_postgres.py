"""Order-to-cash on PostgreSQL: the scenarios that touch reservations, every service on its own
database in a real PostgreSQL cluster (the production shape), the rest as on SQLite."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from retail.inventory.v1 import inventory_pb2, inventory_service_pb2
from retail.orders.v1 import orders_pb2, orders_service_pb2
from tests.support.mesh import (
    Running,
    bc_customer,
    bc_patch_customer,
    bc_token,
    no_active_reservation,
    running_mesh,
    until,
)
from tests.support.postgres import PostgresCluster
from tools.topology import SERVICES

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]

Status = orders_pb2.OrderStatus


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    tmp_path_factory: pytest.TempPathFactory, postgres_cluster: PostgresCluster
) -> AsyncIterator[Running]:
    """The mesh with one PostgreSQL database per service."""
    urls = {s.name: postgres_cluster.create_database(f"e2e_{s.name.replace('-', '_')}") for s in SERVICES}
    async with running_mesh(tmp_path_factory.mktemp("order-to-cash-pg") / "mesh", urls) as mesh:
        yield mesh


async def test_an_order_is_reserved_released_shipped_and_invoiced_on_postgresql(running: Running):
    shop_order = await running.checkout()
    order_id = f"shp-{shop_order['id']}"

    await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)

    reservations = await running.inventory.ListReservations(
        inventory_service_pb2.ListReservationsRequest(order_id=order_id, include_closed=True), timeout=5
    )
    assert {r.state for r in reservations.reservations} == {inventory_pb2.RESERVATION_STATE_CONSUMED}
    assert list((await running.created(running.bc, "salesOrders", shop_order["name"])).values()) == [1]
    assert list((await running.created(running.tpl, "orders", order_id)).values()) == [1]


async def test_a_rejected_order_releases_its_stock_and_a_replay_reserves_it_again_on_postgresql(
    running: Running,
):
    token = await bc_token(running)
    await bc_patch_customer(running, token, await bc_customer(running, token, "C10000"), {"blocked": "All"})
    try:
        shop_order = await running.checkout()
        order_id = f"shp-{shop_order['id']}"
        await running.reaches(order_id, Status.ORDER_STATUS_REJECTED)
        await until(lambda: no_active_reservation(running, order_id), "the reservation released")
    finally:
        await bc_patch_customer(running, token, await bc_customer(running, token, "C10000"), {"blocked": " "})

    await running.orders.ReplayOrder(
        orders_service_pb2.ReplayOrderRequest(
            request_id=f"replay-{order_id}", order_id=order_id, note="fixed"
        ),
        timeout=10,
    )
    await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)

    assert list((await running.created(running.bc, "salesOrders", shop_order["name"])).values()) == [1]
    assert list((await running.created(running.tpl, "orders", order_id)).values()) == [1]


async def test_kill_9_of_the_inventory_service_mid_flow_loses_and_duplicates_nothing(running: Running):
    shop_order = await running.checkout()
    order_id = f"shp-{shop_order['id']}"
    child = running.mesh.children["inventory"]
    restarts = child.restarts

    os.kill(child.pid, signal.SIGKILL)

    async def restarted() -> bool:
        await asyncio.sleep(0)
        return child.restarts > restarts

    await until(restarted, "inventory restarted", timeout=30)
    await running.mesh.wait_serving(timeout=60)
    await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True, timeout=120)
    reservations = await running.inventory.ListReservations(
        inventory_service_pb2.ListReservationsRequest(order_id=order_id, include_closed=True), timeout=5
    )
    assert len(reservations.reservations) == len(shop_order["line_items"])
    assert list((await running.created(running.bc, "salesOrders", shop_order["name"])).values()) == [1]
