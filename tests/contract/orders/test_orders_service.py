"""OrdersService's real servicer stack on port 0 (real database and nats-server; the inventory
dependency is the stand-in of inventory_standin.py): status codes, request_id replay, AcceptOrder."""

from __future__ import annotations

import grpc
import pytest

from retail.common.v1 import common_pb2
from retail.orders.v1 import orders_pb2
from tests.contract.orders.harness import channel_order, money, orders_stack, pb

STOCK = {("SKU-1001", "EAST"): 3}


@pytest.fixture
def sqlite_only(sqlite_url):
    """The SQLite database (these contract checks do not depend on the engine)."""
    return sqlite_url


async def test_repeating_an_ingest_request_returns_the_first_result(sqlite_only, nats_server):
    order = channel_order(7001, lines=[("L1", "SKU-1001", 1)])
    async with orders_stack(sqlite_only, nats_server.url, STOCK) as stack:
        first = await stack.stub.IngestOrder(pb.IngestOrderRequest(request_id="wh-1", order=order))
        again = await stack.stub.IngestOrder(pb.IngestOrderRequest(request_id="wh-1", order=order))

    assert first == again
    assert first.outcome == pb.INGEST_OUTCOME_CREATED


async def test_bad_requests_get_a_clear_status_naming_the_problem(sqlite_only, nats_server):
    no_time = channel_order(7002)
    no_time.ClearField("channel_updated_at")
    async with orders_stack(sqlite_only, nats_server.url, STOCK) as stack:
        with pytest.raises(grpc.aio.AioRpcError) as missing_time:
            await stack.stub.IngestOrder(pb.IngestOrderRequest(request_id="wh-2", order=no_time))
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stack.stub.GetOrder(pb.GetOrderRequest(order_id="shp-404"))
        with pytest.raises(grpc.aio.AioRpcError) as no_order:
            await stack.stub.CancelOrder(
                pb.CancelOrderRequest(
                    request_id="c-1",
                    order_id="shp-404",
                    reason=orders_pb2.CANCELLATION_REASON_OTHER,
                    requested_by=common_pb2.SOURCE_SYSTEM_OPERATOR,
                )
            )

    assert missing_time.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "channel_updated_at" in missing_time.value.details()
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert no_order.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_command_not_allowed_in_the_status_fails_with_failed_precondition(sqlite_only, nats_server):
    async with orders_stack(sqlite_only, nats_server.url, STOCK) as stack:
        order_id = (
            await stack.stub.IngestOrder(
                pb.IngestOrderRequest(
                    request_id="wh-3", order=channel_order(7003, lines=[("L1", "SKU-1001", 1)])
                )
            )
        ).order_id
        await stack.wait_status(order_id, orders_pb2.ORDER_STATUS_ACCEPTED)
        with pytest.raises(grpc.aio.AioRpcError) as replay:
            await stack.stub.ReplayOrder(
                pb.ReplayOrderRequest(
                    request_id="op-1", order_id=order_id, step=pb.REPLAY_STEP_WAREHOUSE_CANCEL, note="try"
                )
            )
        with pytest.raises(grpc.aio.AioRpcError) as stale_version:
            await stack.stub.CancelOrder(
                pb.CancelOrderRequest(
                    request_id="c-3",
                    order_id=order_id,
                    reason=orders_pb2.CANCELLATION_REASON_OTHER,
                    requested_by=common_pb2.SOURCE_SYSTEM_OPERATOR,
                    expected_version=99,
                )
            )

    assert replay.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert stale_version.value.code() == grpc.StatusCode.ABORTED


async def test_accept_order_says_why_it_refuses_within_the_deadline(sqlite_only, nats_server):
    request = pb.AcceptOrderRequest(
        channel="b2b",
        destination=common_pb2.Destination(country_code="US"),
        lines=[
            pb.ProposedLine(line_id="1", sku="SKU-1001", quantity=5, unit_price=money(1000)),
            pb.ProposedLine(line_id="2", sku="SKU-9999", quantity=1, unit_price=money(1000)),
        ],
    )
    async with orders_stack(sqlite_only, nats_server.url, STOCK) as stack:
        reply = await stack.stub.AcceptOrder(request, timeout=2)

    assert reply.decision == pb.ACCEPTANCE_DECISION_REJECTED
    assert [(ln.rejection_reason, ln.available_quantity) for ln in reply.lines] == [
        (orders_pb2.REJECTION_REASON_OUT_OF_STOCK, 3),
        (orders_pb2.REJECTION_REASON_INVALID_SKU, 0),
    ]
    assert {r.code for r in reply.reasons} == {"OUT_OF_STOCK", "INVALID_SKU"}
