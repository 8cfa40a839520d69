"""Order exceptions with the real orders service next to ops (one nats-server, a database each, SQLite
and PostgreSQL): the orders service's own events open and clear them, and GetOrderTimeline joins the
order's hops from OrdersService.GetOrder with its exceptions."""

from __future__ import annotations

import json
import uuid

import grpc
import pytest
from sqlalchemy import select

from libs.bus.tables import HopRow
from retail.common.v1 import common_pb2
from retail.ops.v1 import ops_pb2
from retail.orders.v1 import events_pb2 as ev
from retail.orders.v1 import orders_pb2
from tests.contract.orders.harness import channel_order, orders_stack
from tests.contract.orders.harness import pb as orders_pb
from tests.integration.ops.harness import ops_stack, pb, until

STOCK = {("SKU-1001", "EAST"): 10, ("SKU-1002", "EAST"): 5}


@pytest.fixture
def ops_database_url(database_url: str, request: pytest.FixtureRequest, tmp_path) -> str:
    """A database of the ops service's own, of the same kind as `database_url` (the orders one)."""
    if database_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"
    return request.getfixturevalue("postgres_cluster").create_database(f"ops_{uuid.uuid4().hex[:12]}")


async def test_an_erp_rejection_is_listed_with_its_reason_and_resolved_once_the_replayed_order_is_in_the_erp(
    database_url, ops_database_url, nats_server
):
    async with orders_stack(database_url, nats_server.url, STOCK) as orders:
        orders_addr = f"127.0.0.1:{orders.app.server.port}"
        async with ops_stack(ops_database_url, nats_server.url, orders_addr=orders_addr) as ops:
            order_id = (
                await orders.stub.IngestOrder(
                    orders_pb.IngestOrderRequest(request_id="wh-7001", order=channel_order(7001))
                )
            ).order_id
            await orders.wait_status(order_id, orders_pb2.ORDER_STATUS_ACCEPTED)
            await orders.publish(
                ev.ErpOrderRejected(
                    order_id=order_id,
                    reason=orders_pb2.REJECTION_REASON_TAX_REJECTED,
                    erp_reason=common_pb2.Reason(
                        code="TAX_AREA",
                        message="no tax area for 12345",
                        external_code="Internal_InvalidTaxArea",
                    ),
                )
            )
            (listed,) = await until(
                lambda: ops.exceptions(order_id=order_id), "the rejection in the worklist"
            )
            await orders.stub.ReplayOrder(
                orders_pb.ReplayOrderRequest(request_id="op-7001", order_id=order_id, note="tax area set up")
            )
            await orders.wait_status(order_id, orders_pb2.ORDER_STATUS_ACCEPTED)
            await until(
                lambda: _consumed_status(ops, order_id, "ACCEPTED"), "ops saw the order accepted again"
            )
            still_open = await ops.exceptions(order_id=order_id)
            await orders.publish(
                ev.ErpSalesOrderCreated(
                    order_id=order_id,
                    erp_sales_order=common_pb2.ExternalRef(
                        system=common_pb2.SOURCE_SYSTEM_ERP, id="so-7001", name="SO-7001"
                    ),
                )
            )
            await orders.wait_status(order_id, orders_pb2.ORDER_STATUS_RELEASED)
            await until(
                lambda: _not(ops.exceptions(order_id=order_id)),
                "the rejection resolved after the ERP created it",
            )
            timeline = await ops.stub.GetOrderTimeline(
                pb.GetOrderTimelineRequest(order_id=order_id), timeout=15
            )
            got = await orders.stub.GetOrder(
                orders_pb.GetOrderRequest(order_id=order_id, include_timeline=True), timeout=15
            )
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await ops.stub.GetOrderTimeline(pb.GetOrderTimelineRequest(order_id="shp-404"), timeout=15)

    assert listed.worklist == ops_pb2.WORKLIST_FINANCE
    assert (listed.reason.code, listed.reason.source_system) == ("TAX_REJECTED", common_pb2.SOURCE_SYSTEM_ERP)
    assert "no tax area for 12345" in listed.reason.message
    assert listed.state == ops_pb2.EXCEPTION_STATE_OPEN and listed.correlation_id
    assert [e.exception_id for e in still_open] == [listed.exception_id]
    (resolved,) = timeline.exceptions
    assert resolved.exception_id == listed.exception_id
    assert resolved.state == ops_pb2.EXCEPTION_STATE_RESOLVED
    assert (resolved.resolution, resolved.resolved_by) == (ops_pb2.RESOLUTION_FIXED_AND_REPLAYED, "mesh")
    types = [entry.type for entry in timeline.entries]
    assert {"IngestOrder", "ReplayOrder"} <= set(types), types
    assert [e.summary for e in timeline.entries] == [e.summary for e in got.timeline]
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def _not(listing) -> bool:
    return not await listing


async def _consumed_status(ops, order_id: str, status: str) -> bool:
    """Whether ops has consumed the order's OrderStatusChanged to `status` (its hop log says so)."""
    async with ops.app.db.read() as session:
        rows = (
            await session.scalars(select(HopRow.payload_snapshot).where(HopRow.hop == "ops.orders"))
        ).all()
    texts = [json.dumps(row) for row in rows if row]
    return any(order_id in text and f'"to_status": "ORDER_STATUS_{status}"' in text for text in texts)
