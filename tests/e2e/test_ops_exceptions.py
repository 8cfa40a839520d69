"""The ops worklists (V3) through real processes: an order the ERP refuses shows up in the ops
service's ListExceptions with the ERP's reason, and once the cause is fixed in Business Central and
the order replayed, the exception is resolved by the mesh itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from retail.ops.v1 import ops_pb2, ops_service_pb2, ops_service_pb2_grpc
from retail.orders.v1 import orders_pb2, orders_service_pb2
from tests.support.mesh import Running, bc_customer, bc_patch_customer, bc_token, running_mesh, until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

Status = orders_pb2.OrderStatus


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """The mesh on SQLite with its sandbox on free ports, ready for orders."""
    async with running_mesh(tmp_path_factory.mktemp("ops-exceptions") / "mesh") as mesh:
        yield mesh


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ops(running: Running) -> AsyncIterator[ops_service_pb2_grpc.OpsServiceStub]:
    """A client of the running ops service."""
    port = running.mesh.topology.service("ops").grpc_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield ops_service_pb2_grpc.OpsServiceStub(channel)


async def test_an_erp_rejection_is_in_the_worklist_with_its_reason_until_the_fixed_order_is_replayed(
    running: Running, ops: ops_service_pb2_grpc.OpsServiceStub
):
    async def exceptions(order_id: str, *states: int) -> list[ops_pb2.BusinessException]:
        reply = await ops.ListExceptions(
            ops_service_pb2.ListExceptionsRequest(order_id=order_id, states=list(states)), timeout=10
        )
        return list(reply.exceptions)

    token = await bc_token(running)
    customer = await bc_customer(running, token, "C10000")
    await bc_patch_customer(running, token, customer, {"blocked": "All"})
    try:
        shop_order = await running.checkout()
        order_id = f"shp-{shop_order['id']}"
        rejected = await running.reaches(order_id, Status.ORDER_STATUS_REJECTED)
        (listed,) = await until(lambda: exceptions(order_id), "the rejection in the ops worklist")
    finally:
        customer = await bc_customer(running, token, "C10000")
        await bc_patch_customer(running, token, customer, {"blocked": " "})
    summary = await ops.SummarizeExceptions(ops_service_pb2.SummarizeExceptionsRequest(), timeout=10)

    await running.orders.ReplayOrder(
        orders_service_pb2.ReplayOrderRequest(
            request_id=f"replay-{order_id}", order_id=order_id, note="customer unblocked in the ERP"
        ),
        timeout=10,
    )
    await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)
    (resolved,) = await until(
        lambda: exceptions(order_id, ops_pb2.EXCEPTION_STATE_RESOLVED),
        "the exception resolved after the replay",
    )
    still_open = await exceptions(order_id)
    timeline = await ops.GetOrderTimeline(
        ops_service_pb2.GetOrderTimelineRequest(order_id=order_id), timeout=15
    )

    reason = orders_pb2.RejectionReason.Name(rejected.rejection_reason).removeprefix("REJECTION_REASON_")
    assert listed.reason.code == reason
    assert listed.reason.message == rejected.rejection_detail
    assert listed.state == ops_pb2.EXCEPTION_STATE_OPEN
    assert listed.worklist != ops_pb2.WORKLIST_UNSPECIFIED
    assert any(g.reason_code == reason and g.open_count >= 1 for g in summary.groups)
    assert resolved.exception_id == listed.exception_id
    assert (resolved.resolution, resolved.resolved_by) == (ops_pb2.RESOLUTION_FIXED_AND_REPLAYED, "mesh")
    assert still_open == []
    assert [e.exception_id for e in timeline.exceptions] == [listed.exception_id]
    assert len(timeline.entries) > 0
