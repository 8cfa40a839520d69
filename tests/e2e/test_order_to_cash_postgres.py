"""Order-to-cash on PostgreSQL: the scenarios that touch reservations, every service on its own
database in a real PostgreSQL cluster (the production shape), the rest as on SQLite."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_pb2, inventory_service_pb2
from retail.orders.v1 import orders_pb2, orders_service_pb2
from tests.e2e.test_order_changes import held_before_release
from tests.support import scenarios
from tests.support.mesh import (
    Running,
    bc_customer,
    bc_patch_customer,
    bc_token,
    no_active_reservation,
    running_mesh,
    until,
)
from tests.support.systems import bc_has_no_order
from tools.postgres import PostgresCluster
from tools.topology import SERVICES

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]

Status = orders_pb2.OrderStatus


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    tmp_path_factory: pytest.TempPathFactory, postgres_cluster: PostgresCluster
) -> AsyncIterator[Running]:
    """The mesh with one PostgreSQL database per service; backorders wait for a stock signal."""
    urls = {s.name: postgres_cluster.create_database(f"e2e_{s.name.replace('-', '_')}") for s in SERVICES}
    async with running_mesh(
        tmp_path_factory.mktemp("order-to-cash-pg") / "mesh", urls, extra_env={"BACKORDER_RETRY_S": "900"}
    ) as mesh:
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


async def test_an_order_cancelled_before_release_releases_its_stock_and_the_erp_order_on_postgresql(
    running: Running,
):
    shop_order, order_id, _ = await held_before_release(running)
    reserved = await running.inventory.ListReservations(
        inventory_service_pb2.ListReservationsRequest(order_id=order_id), timeout=5
    )

    await running.orders.CancelOrder(
        orders_service_pb2.CancelOrderRequest(
            request_id=f"cancel-{order_id}",
            order_id=order_id,
            reason=orders_pb2.CANCELLATION_REASON_CUSTOMER_REQUEST,
            requested_by=common_pb2.SOURCE_SYSTEM_OPERATOR,
        ),
        timeout=10,
    )
    order = await running.reaches(order_id, Status.ORDER_STATUS_CANCELLED)

    assert {r.state for r in reserved.reservations} == {inventory_pb2.RESERVATION_STATE_ACTIVE}
    assert await until(lambda: no_active_reservation(running, order_id), "the reservations released")
    assert await until(lambda: bc_has_no_order(running, shop_order["name"]), "the ERP order deleted")
    assert order.status_history[-1].from_status == Status.ORDER_STATUS_ON_HOLD
    assert Status.ORDER_STATUS_RELEASED not in [c.to_status for c in order.status_history]
    assert await running.created(running.tpl, "orders", order_id) == {}


async def test_an_order_split_over_two_locations_ships_twice_and_is_fully_invoiced_on_postgresql(
    running: Running,
):
    await scenarios.order_split_over_two_locations_ships_twice_and_is_fully_invoiced(running)


async def test_a_backordered_line_waits_for_stock_at_the_3pl_then_ships_and_is_invoiced_on_postgresql(
    running: Running,
):
    await scenarios.backordered_line_waits_for_stock_then_ships_and_is_invoiced(running)


async def test_a_line_backordered_with_one_of_three_keeps_that_unit_and_ships_all_three_on_postgresql(
    running: Running,
):
    await scenarios.backordered_line_with_partial_stock_keeps_what_it_has_and_ships_whole(running)


async def test_a_cancellation_after_release_accepted_by_the_3pl_releases_stock_on_postgresql(
    running: Running,
):
    await scenarios.cancellation_after_release_accepted_by_the_3pl_releases_stock_and_the_erp_order(running)


async def test_a_partial_shipment_consumes_the_reservations_in_two_steps_on_postgresql(running: Running):
    await scenarios.partial_shipment_becomes_two_fulfillments_and_two_erp_postings(running)
