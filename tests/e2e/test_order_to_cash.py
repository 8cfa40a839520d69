"""Order-to-cash through real processes: the Shopify stand-in's checkout to the ERP invoice.

One mesh runs for the module as processes (NATS, every service, the three stand-ins), exporting
traces to a real OTLP collector; each scenario places its own orders. What is asserted is what a
user would check in each system: the sales order in Business Central, the order at the 3PL, the
fulfillment with tracking in Shopify (the stand-ins' create counts prove nothing was duplicated),
the order's status, timeline and transaction log in the mesh, and one trace across the hops.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from retail.common.v1 import common_pb2
from retail.integration.v1 import integration_pb2, integration_service_pb2, integration_service_pb2_grpc
from retail.inventory.v1 import inventory_service_pb2
from retail.orders.v1 import orders_pb2, orders_service_pb2
from tests.support import scenarios, systems
from tests.support.mesh import (
    Running,
    bc_customer,
    bc_patch_customer,
    bc_token,
    no_active_reservation,
    running_mesh,
    signed,
    until,
)
from tests.support.systems import cancel_request, exceptions, warehouse_order

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

Status = orders_pb2.OrderStatus
SourceSystem = common_pb2.SourceSystem
#: Services that consume this flow's events and so write transaction-log rows for it.
HOP_SERVICES = ("orders", "inventory", "erp-adapter", "tpl-adapter", "shopify-adapter")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """The mesh on SQLite with its sandbox on free ports, ready for orders."""
    async with running_mesh(tmp_path_factory.mktemp("order-to-cash") / "mesh") as mesh:
        yield mesh


async def test_one_order_flows_from_checkout_to_invoice_as_one_trace(running: Running):
    shop_order = await running.checkout()
    order_id = f"shp-{shop_order['id']}"

    order = await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)

    assert list((await running.created(running.bc, "salesOrders", shop_order["name"])).values()) == [1]
    assert list((await running.created(running.tpl, "orders", order_id)).values()) == [1]
    await systems.fulfilled_in_shopify(running, shop_order)  # the adapter fulfils apart from the invoice
    assert sum((await running.created(running.shopify, "fulfillments", str(shop_order["id"]))).values()) == 1
    owners = {c.to_status: c.source_system for c in order.status_history}
    assert order.status_history[0].to_status == Status.ORDER_STATUS_RECEIVED
    assert owners[Status.ORDER_STATUS_ERP_CREATED] == SourceSystem.SOURCE_SYSTEM_ERP
    assert owners[Status.ORDER_STATUS_SHIPPED] == SourceSystem.SOURCE_SYSTEM_TPL
    assert owners[Status.ORDER_STATUS_INVOICED] == SourceSystem.SOURCE_SYSTEM_ERP

    correlations = {
        entry.correlation_id for entry in await running.timeline(order_id) if entry.correlation_id
    }
    assert len(correlations) == 1, correlations
    (correlation_id,) = correlations
    hops = [row for service in HOP_SERVICES for row in running.hop_rows(service, correlation_id)]
    assert {service for service, *_ in hops} == set(HOP_SERVICES)
    assert all(outcome in ("ok", "duplicate") and latency >= 0 for _, _, outcome, latency in hops), hops

    async def one_trace() -> bool:
        wanted = {"shopify-adapter", "orders", "inventory", "erp-adapter", "tpl-adapter", "shipments"}
        return any(wanted <= services for services in running.collector.services_by_trace().values())

    await until(one_trace, "one trace spanning every hop", timeout=30)


async def test_the_same_webhook_three_times_two_concurrently_makes_one_of_everything(running: Running):
    await running.http.put(f"{running.shopify}/_sandbox/webhook-faults", json={"duplicate_rate": 1.0})
    try:
        shop_order = await running.checkout()
    finally:
        await running.http.delete(f"{running.shopify}/_sandbox/webhook-faults")
    order_id = f"shp-{shop_order['id']}"

    async def duplicated_event() -> str | None:
        deliveries = (await running.http.get(f"{running.shopify}/_sandbox/deliveries")).json()["deliveries"]
        # Faults were on for this checkout only, so its orders/create is the one duplicated.
        copies = [
            d["event_id"] for d in deliveries if d["topic"] == "orders/create" and d["fault"] == "duplicate"
        ]
        return copies[-1] if copies else None

    event_id = await until(duplicated_event, "the stand-in's duplicate delivery", timeout=30)
    body = json.dumps(shop_order).encode()
    third = await running.http.post(
        running.webhook_url, content=body, headers=signed(body, "orders/create", event_id)
    )

    await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)

    assert third.status_code == 200
    assert running.adapter_rows("SELECT count(*) FROM webhook_delivery WHERE event_id = ?", event_id) == [
        (1,)
    ]
    assert list((await running.created(running.bc, "salesOrders", shop_order["name"])).values()) == [1]
    assert list((await running.created(running.tpl, "orders", order_id)).values()) == [1]
    await systems.fulfilled_in_shopify(running, shop_order)  # the adapter fulfils apart from the invoice
    assert sum((await running.created(running.shopify, "fulfillments", str(shop_order["id"]))).values()) == 1


async def test_a_bad_signature_is_refused_and_a_malformed_body_is_kept_for_inspection(running: Running):
    body = json.dumps({"id": 1, "note": "forged"}).encode()

    forged = await running.http.post(
        running.webhook_url,
        content=body,
        headers=signed(body, "orders/create", "evt-forged", secret="not-the-secret"),
    )
    malformed = await running.http.post(
        running.webhook_url,
        content=b"{not json",
        headers=signed(b"{not json", "orders/create", "evt-malformed"),
    )

    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "invalid_signature"
    assert running.adapter_rows("SELECT count(*) FROM webhook_delivery WHERE event_id = 'evt-forged'") == [
        (0,)
    ]
    assert await running.order("shp-1") is None
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_body"
    assert running.adapter_rows("SELECT status FROM webhook_delivery WHERE event_id = 'evt-malformed'") == [
        ("rejected",)
    ]


async def test_an_erp_rejection_holds_nothing_and_a_replay_completes_the_order_once_fixed(running: Running):
    token = await bc_token(running)
    customer = await bc_customer(running, token, "C10000")
    await bc_patch_customer(running, token, customer, {"blocked": "All"})
    try:
        shop_order = await running.checkout()
        order_id = f"shp-{shop_order['id']}"
        rejected = await running.reaches(order_id, Status.ORDER_STATUS_REJECTED)
        released = await until(lambda: no_active_reservation(running, order_id), "the reservation released")
    finally:
        customer = await bc_customer(running, token, "C10000")
        await bc_patch_customer(running, token, customer, {"blocked": " "})

    replay = await running.orders.ReplayOrder(
        orders_service_pb2.ReplayOrderRequest(
            request_id=f"replay-{order_id}", order_id=order_id, note="customer unblocked in the ERP"
        ),
        timeout=10,
    )
    await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)

    assert rejected.rejection_reason != orders_pb2.RejectionReason.Value("REJECTION_REASON_UNSPECIFIED")
    assert released
    assert replay is not None
    assert list((await running.created(running.bc, "salesOrders", shop_order["name"])).values()) == [1]
    assert list((await running.created(running.tpl, "orders", order_id)).values()) == [1]


@pytest.mark.parametrize("service", ["orders", "erp-adapter", "tpl-adapter"])
async def test_kill_9_of_a_service_mid_flow_loses_and_duplicates_nothing(running: Running, service: str):
    shop_order = await running.checkout()
    order_id = f"shp-{shop_order['id']}"
    child = running.mesh.children[service]
    restarts = child.restarts

    os.kill(child.pid, signal.SIGKILL)
    await until(lambda: asyncio.sleep(0, child.restarts > restarts), f"{service} restarted", timeout=30)
    await running.mesh.wait_serving(timeout=60)
    await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True, timeout=120)

    assert list((await running.created(running.bc, "salesOrders", shop_order["name"])).values()) == [1]
    assert list((await running.created(running.tpl, "orders", order_id)).values()) == [1]
    await systems.fulfilled_in_shopify(running, shop_order)  # the adapter fulfils apart from the invoice
    assert sum((await running.created(running.shopify, "fulfillments", str(shop_order["id"]))).values()) == 1


async def test_erp_429s_errors_and_responses_lost_after_commit_never_duplicate_a_sales_order(
    running: Running,
):
    faults = {
        "salesOrders.create": {
            "error_rate": 0.3,
            "error_status": 429,
            "retry_after_s": 1,
            "drop_response_rate": 0.5,
        },
        "salesOrders.list": {"error_rate": 0.2, "error_status": 503},
    }
    await running.http.put(f"{running.bc}/_sandbox/faults", json=faults)
    try:
        placed = [await running.checkout() for _ in range(3)]
        for shop_order in placed:
            await until(
                lambda order_id=f"shp-{shop_order['id']}": _passed(
                    running, order_id, Status.ORDER_STATUS_ERP_CREATED
                ),
                "the ERP sales order despite the faults",
                timeout=120,
            )
    finally:
        await running.http.delete(f"{running.bc}/_sandbox/faults")

    for shop_order in placed:
        assert list((await running.created(running.bc, "salesOrders", shop_order["name"])).values()) == [1]
        await running.reaches(f"shp-{shop_order['id']}", Status.ORDER_STATUS_INVOICED, ship=True)


async def test_a_partial_shipment_becomes_two_fulfillments_and_two_erp_postings(running: Running):
    await scenarios.partial_shipment_becomes_two_fulfillments_and_two_erp_postings(running)


async def test_a_webhook_that_never_arrives_is_found_by_the_reconciliation_poll(running: Running):
    await running.http.put(f"{running.shopify}/_sandbox/webhook-faults", json={"drop_rate": 1.0})
    try:
        shop_order = await running.checkout()
    finally:
        await running.http.delete(f"{running.shopify}/_sandbox/webhook-faults")
    order_id = f"shp-{shop_order['id']}"
    assert await running.order(order_id) is None

    run = await _reconcile_orders(running, f"poll-{order_id}")
    await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)

    assert run.compared >= 1
    assert list((await running.created(running.bc, "salesOrders", shop_order["name"])).values()) == [1]


async def test_an_update_before_its_create_and_a_stale_update_are_resolved_by_updated_at(running: Running):
    await running.http.put(f"{running.shopify}/_sandbox/webhook-faults", json={"drop_rate": 1.0})
    try:
        shop_order = await running.checkout()
    finally:
        await running.http.delete(f"{running.shopify}/_sandbox/webhook-faults")
    order_id = f"shp-{shop_order['id']}"
    newer = dict(shop_order, updated_at="2030-01-01T12:00:00Z", note="newer version")
    older = dict(shop_order, updated_at="2030-01-01T11:00:00Z")
    update_body, create_body = json.dumps(newer).encode(), json.dumps(older).encode()

    first = await running.http.post(
        running.webhook_url,
        content=update_body,
        headers=signed(update_body, "orders/updated", f"upd-{order_id}"),
    )
    await until(lambda: running.order(order_id), f"{order_id} created from its update")
    second = await running.http.post(
        running.webhook_url,
        content=create_body,
        headers=signed(create_body, "orders/create", f"crt-{order_id}"),
    )

    async def stale_recorded() -> bool:
        timeline = await running.timeline(order_id)
        return any(e.outcome == common_pb2.HOP_OUTCOME_STALE for e in timeline)

    await until(stale_recorded, "the older create recorded as stale")
    order = await running.order(order_id)
    assert (first.status_code, second.status_code) == (200, 200)
    assert order is not None
    assert order.channel_updated_at.ToJsonString().startswith("2030-01-01T12:00:00")
    assert order.status_history[0].to_status == Status.ORDER_STATUS_RECEIVED
    assert [c.to_status for c in order.status_history].count(Status.ORDER_STATUS_RECEIVED) == 1


async def test_the_cli_shows_an_orders_status_history_and_timeline(running: Running):
    shop_order = await running.checkout()
    order_id = f"shp-{shop_order['id']}"
    await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, ship=True)
    orders_addr = f"127.0.0.1:{running.mesh.topology.service('orders').grpc_port}"

    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tools.cli",
        "order",
        order_id,
        "--orders-addr",
        orders_addr,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(cli.communicate(), 30)

    text = out.decode()
    assert cli.returncode == 0, err.decode()
    assert f"order {order_id}  status INVOICED" in text
    for status, source in (
        ("RECEIVED", "SHOPIFY"),
        ("ERP_CREATED", "ERP"),
        ("SHIPPED", "TPL"),
        ("INVOICED", "ERP"),
    ):
        assert any(status in line and f"by {source}" in line for line in text.splitlines()), (status, text)
    assert "correlation id" in text


async def test_a_cancellation_after_release_accepted_by_the_3pl_releases_stock_and_the_erp_order(
    running: Running,
):
    await scenarios.cancellation_after_release_accepted_by_the_3pl_releases_stock_and_the_erp_order(running)


async def test_a_cancellation_the_3pl_refuses_because_it_shipped_leaves_the_order_shipped(running: Running):
    shop_order = await running.checkout()
    order_id = f"shp-{shop_order['id']}"
    warehouse_order_id = await until(lambda: warehouse_order(running, order_id), "the order at the 3PL")
    await running.reaches(order_id, Status.ORDER_STATUS_RELEASED)
    # The 3PL ships, but its webhook is delayed: the mesh asks to cancel what already left.
    fault = {"webhook.deliver": {"error_rate": 1.0, "error_status": 503}}
    await running.http.put(f"{running.tpl}/_sandbox/faults", json=fault)
    try:
        shipped = await running.http.post(f"{running.tpl}/_sandbox/orders/{warehouse_order_id}/ship", json={})
        assert shipped.status_code == 200, shipped.text
        await running.orders.CancelOrder(cancel_request(order_id), timeout=10)

        async def refused() -> bool:
            return await exceptions(running, "ALREADY_SHIPPED", order_id=order_id) != []

        await until(refused, "the refused cancellation recorded as an exception")
    finally:
        await running.http.delete(f"{running.tpl}/_sandbox/faults")
    order = await running.reaches(order_id, Status.ORDER_STATUS_INVOICED, timeout=120)

    changes = [c.to_status for c in order.status_history]
    assert Status.ORDER_STATUS_CANCEL_REQUESTED in changes
    assert Status.ORDER_STATUS_CANCELLED not in changes
    await systems.fulfilled_in_shopify(running, shop_order)  # the adapter fulfils apart from the invoice
    assert sum((await running.created(running.shopify, "fulfillments", str(shop_order["id"]))).values()) == 1


async def test_a_replacement_order_is_linked_to_its_original_and_flows_on_its_own(running: Running):
    shop_order = await running.checkout()
    original_id = f"shp-{shop_order['id']}"
    original = await running.reaches(original_id, Status.ORDER_STATUS_INVOICED, ship=True)
    line = original.lines[0]

    reply = await running.orders.CreateReplacementOrder(
        orders_service_pb2.CreateReplacementOrderRequest(
            request_id=f"replace-{original_id}",
            original_order_id=original_id,
            lines=[orders_service_pb2.ReplacementLine(line_id=line.line_id, quantity=1, sku=line.sku)],
            reason=orders_service_pb2.REPLACEMENT_REASON_DAMAGED_IN_TRANSIT,
            note="arrived broken",
        ),
        timeout=10,
    )
    replacement_id = reply.order.order_id
    replacement = await running.reaches(replacement_id, Status.ORDER_STATUS_INVOICED, ship=True)

    assert replacement_id != original_id
    assert replacement.replacement_of_order_id == original_id
    assert Status.ORDER_STATUS_SHIPPED in [c.to_status for c in replacement.status_history]
    assert list((await running.created(running.tpl, "orders", replacement_id)).values()) == [1]
    assert (await running.order(original_id)).status == Status.ORDER_STATUS_INVOICED


async def test_shopify_shows_the_channel_availability_not_the_raw_balance_after_an_order(running: Running):
    shop_order = await running.checkout([{"sku": "SKU-1004", "quantity": 3}])
    order_id = f"shp-{shop_order['id']}"
    await running.reaches(order_id, Status.ORDER_STATUS_RELEASED)

    async def converged() -> bool:
        state = (await running.http.get(f"{running.shopify}/_sandbox/state")).json()
        claimed_somewhere = False
        for location in ("EAST", "WEST"):
            reply = await running.inventory.GetPosition(
                inventory_service_pb2.GetPositionRequest(sku="SKU-1004", location_id=location), timeout=5
            )
            channel = next(c.available for c in reply.position.channels if c.channel == "online-store")
            if state["inventory"]["SKU-1004"]["levels"][location]["available"] != channel:
                return False
            # Where the order's units are claimed, the channel sees less than the raw balance.
            claimed_somewhere |= channel < reply.position.on_hand
        return claimed_somewhere

    await until(converged, "Shopify's available equal to the mesh's online-store availability", timeout=60)


async def _reconcile_orders(running: Running, request_id: str) -> integration_pb2.ReconciliationRun:
    port = running.mesh.topology.service("shopify-adapter").grpc_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = integration_service_pb2_grpc.IntegrationServiceStub(channel)
        reply = await stub.RunReconciliation(
            integration_service_pb2.RunReconciliationRequest(
                request_id=request_id, kind=integration_pb2.RECONCILIATION_KIND_ORDERS, lookback_minutes=60
            ),
            timeout=60,
        )
    return reply.run


async def _passed(running: Running, order_id: str, status: int) -> bool:
    order = await running.order(order_id)
    return order is not None and status in [c.to_status for c in order.status_history]
