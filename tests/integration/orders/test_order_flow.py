"""The order actor's whole flow on a real nats-server and database (SQLite and PostgreSQL): the
ERP, warehouse and shipment facts are published as their adapters would publish them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import text

from retail.common.v1 import common_pb2
from retail.orders.v1 import events_pb2 as ev
from retail.orders.v1 import orders_pb2
from retail.shipments.v1 import events_pb2 as shipment_events
from retail.shipments.v1 import shipments_pb2
from tests.contract.orders.harness import channel_order, money, orders_stack, pb
from tests.integration.bus.helpers import wait_until

S = orders_pb2
STOCK = {("SKU-1001", "EAST"): 10, ("SKU-1002", "EAST"): 5}


def shipment(order_id: str, release_id: str, shipment_id: str, lines: list[tuple[str, str, int]]):
    notice = shipments_pb2.ShipmentNotice(
        shipment_id=shipment_id,
        order_id=order_id,
        release_id=release_id,
        location_id="EAST",
        warehouse_shipment=common_pb2.ExternalRef(system=common_pb2.SOURCE_SYSTEM_TPL, id=shipment_id),
        packages=[
            shipments_pb2.Package(
                package_id="P1",
                lines=[shipments_pb2.ShipmentLine(line_id=lid, sku=sku, quantity=q) for lid, sku, q in lines],
            )
        ],
    )
    notice.shipped_at.FromDatetime(datetime(2026, 1, 2, tzinfo=UTC))
    return shipment_events.ShipmentConfirmed(shipment=notice)


async def test_an_order_goes_from_received_to_invoiced_through_the_published_facts(database_url, nats_server):
    async with orders_stack(database_url, nats_server.url, STOCK) as stack:
        ingested = await stack.stub.IngestOrder(
            pb.IngestOrderRequest(request_id="wh-1", order=channel_order(5001))
        )
        order_id = ingested.order_id
        accepted = await stack.wait_status(order_id, S.ORDER_STATUS_ACCEPTED)

        await stack.publish(
            ev.ErpSalesOrderCreated(
                order_id=order_id,
                erp_sales_order=common_pb2.ExternalRef(
                    system=common_pb2.SOURCE_SYSTEM_ERP, id="so-1", name="SO-1"
                ),
            )
        )
        released = await stack.wait_status(order_id, S.ORDER_STATUS_RELEASED)
        release_id = f"{order_id}:EAST:1"
        await stack.publish(
            ev.WarehouseReleaseAccepted(order_id=order_id, release_id=release_id),
            source=common_pb2.SOURCE_SYSTEM_TPL,
        )
        await stack.publish(
            shipment(order_id, release_id, "SH-1", [("L1", "SKU-1001", 1)]),
            source=common_pb2.SOURCE_SYSTEM_TPL,
        )
        await stack.wait_status(order_id, S.ORDER_STATUS_PARTIALLY_SHIPPED)
        await stack.publish(
            shipment(order_id, release_id, "SH-2", [("L1", "SKU-1001", 1), ("L2", "SKU-1002", 1)]),
            source=common_pb2.SOURCE_SYSTEM_TPL,
        )
        await stack.wait_status(order_id, S.ORDER_STATUS_SHIPPED)
        await stack.publish(
            ev.ErpInvoicePosted(
                order_id=order_id,
                erp_invoice=common_pb2.ExternalRef(system=common_pb2.SOURCE_SYSTEM_ERP, id="inv-1"),
                total=money(4500),
                final=True,
            )
        )
        final = await stack.wait_status(order_id, S.ORDER_STATUS_INVOICED)

    assert ingested.outcome == pb.INGEST_OUTCOME_CREATED
    assert order_id == "shp-5001"
    assert [ln.fulfillment_location_id for ln in accepted.lines] == ["EAST", "EAST"]
    assert released.erp_sales_order.name == "SO-1"
    assert [(c.to_status, c.source_system) for c in final.status_history] == [
        (S.ORDER_STATUS_RECEIVED, common_pb2.SOURCE_SYSTEM_SHOPIFY),
        (S.ORDER_STATUS_ACCEPTED, common_pb2.SOURCE_SYSTEM_MESH),
        (S.ORDER_STATUS_ERP_CREATED, common_pb2.SOURCE_SYSTEM_ERP),
        (S.ORDER_STATUS_RELEASED, common_pb2.SOURCE_SYSTEM_MESH),
        (S.ORDER_STATUS_PARTIALLY_SHIPPED, common_pb2.SOURCE_SYSTEM_TPL),
        (S.ORDER_STATUS_SHIPPED, common_pb2.SOURCE_SYSTEM_TPL),
        (S.ORDER_STATUS_INVOICED, common_pb2.SOURCE_SYSTEM_ERP),
    ]


async def test_an_update_before_the_create_creates_the_order_and_the_older_create_is_stale(
    database_url, nats_server
):
    newer = channel_order(5002, updated_at=datetime(2026, 1, 1, 12, tzinfo=UTC))
    newer.payment_status = S.PAYMENT_STATUS_PAID
    older = channel_order(5002, updated_at=datetime(2026, 1, 1, 10, tzinfo=UTC))
    older.payment_status = S.PAYMENT_STATUS_PENDING
    async with orders_stack(database_url, nats_server.url, STOCK) as stack:
        first = await stack.stub.IngestOrder(pb.IngestOrderRequest(request_id="upd-1", order=newer))
        second = await stack.stub.IngestOrder(pb.IngestOrderRequest(request_id="create-1", order=older))
        again = await stack.stub.IngestOrder(pb.IngestOrderRequest(request_id="create-1", order=older))
        got = await stack.stub.GetOrder(pb.GetOrderRequest(order_id="shp-5002", include_timeline=True))

    assert (first.outcome, second.outcome, again.outcome) == (
        pb.INGEST_OUTCOME_CREATED,
        pb.INGEST_OUTCOME_STALE,
        pb.INGEST_OUTCOME_STALE,
    )
    assert got.order.payment_status == S.PAYMENT_STATUS_PAID
    assert any(e.outcome == common_pb2.HOP_OUTCOME_STALE for e in got.timeline)


async def test_an_erp_rejection_lands_in_the_exception_list_and_a_replay_completes_it(
    database_url, nats_server
):
    async with orders_stack(database_url, nats_server.url, STOCK) as stack:
        order_id = (
            await stack.stub.IngestOrder(pb.IngestOrderRequest(request_id="wh-3", order=channel_order(5003)))
        ).order_id
        await stack.wait_status(order_id, S.ORDER_STATUS_ACCEPTED)
        await stack.publish(
            ev.ErpOrderRejected(
                order_id=order_id,
                reason=S.REJECTION_REASON_CUSTOMER_BLOCKED,
                erp_reason=common_pb2.Reason(code="CREDIT_HOLD", message="blocked"),
            )
        )
        rejected = await stack.wait_status(order_id, S.ORDER_STATUS_REJECTED)
        listed = await stack.stub.ListOrders(pb.ListOrdersRequest(statuses=[S.ORDER_STATUS_REJECTED]))
        replayed = await stack.stub.ReplayOrder(
            pb.ReplayOrderRequest(request_id="op-1", order_id=order_id, note="customer unblocked in the ERP")
        )
        reaccepted = await stack.wait_status(order_id, S.ORDER_STATUS_ACCEPTED)

    assert rejected.rejection_reason == S.REJECTION_REASON_CUSTOMER_BLOCKED
    assert [o.order_id for o in listed.orders] == [order_id]
    assert replayed.step == pb.REPLAY_STEP_RESERVE
    assert reaccepted.status_history[-2].to_status == S.ORDER_STATUS_RECEIVED


async def test_a_cancellation_after_release_that_the_warehouse_rejects_because_it_shipped_stays_shipped(
    database_url, nats_server
):
    async with orders_stack(database_url, nats_server.url, STOCK) as stack:
        order_id = (
            await stack.stub.IngestOrder(pb.IngestOrderRequest(request_id="wh-4", order=channel_order(5004)))
        ).order_id
        await stack.wait_status(order_id, S.ORDER_STATUS_ACCEPTED)
        await stack.publish(
            ev.ErpSalesOrderCreated(
                order_id=order_id,
                erp_sales_order=common_pb2.ExternalRef(system=common_pb2.SOURCE_SYSTEM_ERP, id="so-4"),
            )
        )
        await stack.wait_status(order_id, S.ORDER_STATUS_RELEASED)
        cancel = await stack.stub.CancelOrder(
            pb.CancelOrderRequest(
                request_id="c-4",
                order_id=order_id,
                reason=S.CANCELLATION_REASON_CUSTOMER_REQUEST,
                requested_by=common_pb2.SOURCE_SYSTEM_SHOPIFY,
            )
        )
        release_id = f"{order_id}:EAST:1"
        await stack.publish(
            shipment(order_id, release_id, "SH-4", [("L1", "SKU-1001", 2), ("L2", "SKU-1002", 1)]),
            source=common_pb2.SOURCE_SYSTEM_TPL,
        )
        await stack.wait_status(order_id, S.ORDER_STATUS_SHIPPED)
        await stack.publish(
            ev.WarehouseCancellationRejected(
                order_id=order_id, release_id=release_id, reason=common_pb2.Reason(code="ALREADY_SHIPPED")
            ),
            source=common_pb2.SOURCE_SYSTEM_TPL,
        )
        async with asyncio.timeout(20):
            while True:
                timeline = await stack.stub.GetOrder(
                    pb.GetOrderRequest(order_id=order_id, include_timeline=True)
                )
                if any(e.type == "WarehouseCancellationRejected" for e in timeline.timeline):
                    break
                await asyncio.sleep(0.05)
        final = timeline.order

    assert cancel.order.status == S.ORDER_STATUS_CANCEL_REQUESTED
    assert final.status == S.ORDER_STATUS_SHIPPED
    assert [e.outcome for e in timeline.timeline if e.type == "WarehouseCancellationRejected"] == [
        common_pb2.HOP_OUTCOME_FAILED
    ]


async def test_a_held_order_waits_and_resumes_where_it_was_when_the_hold_is_released(
    database_url, nats_server
):
    async with orders_stack(database_url, nats_server.url, STOCK) as stack:
        order_id = (
            await stack.stub.IngestOrder(pb.IngestOrderRequest(request_id="wh-5", order=channel_order(5005)))
        ).order_id
        await stack.wait_status(order_id, S.ORDER_STATUS_ACCEPTED)
        held = await stack.stub.PlaceHold(
            pb.PlaceHoldRequest(
                request_id="h-5",
                order_id=order_id,
                reason=S.HOLD_REASON_FRAUD_REVIEW,
                placed_by=common_pb2.SOURCE_SYSTEM_SHOPIFY,
            )
        )
        await stack.publish(
            ev.ErpSalesOrderCreated(
                order_id=order_id,
                erp_sales_order=common_pb2.ExternalRef(system=common_pb2.SOURCE_SYSTEM_ERP, id="so-5"),
            )
        )
        still_held = await stack.wait_for(
            order_id,
            lambda o: o.resume_status == S.ORDER_STATUS_ERP_CREATED,
            what="ERP creation recorded while held",
        )
        by_hold = await stack.stub.ListOrders(pb.ListOrdersRequest(hold_reason=S.HOLD_REASON_FRAUD_REVIEW))
        released = await stack.stub.ReleaseHold(
            pb.ReleaseHoldRequest(
                request_id="r-5",
                order_id=order_id,
                hold_id=held.hold.hold_id,
                released_by=common_pb2.SOURCE_SYSTEM_SHOPIFY,
            )
        )

    assert held.order.status == S.ORDER_STATUS_ON_HOLD
    assert still_held.status == S.ORDER_STATUS_ON_HOLD
    assert [o.order_id for o in by_hold.orders] == [order_id]
    assert released.order.status == S.ORDER_STATUS_RELEASED


async def test_a_backordered_order_is_reserved_when_stock_arrives(database_url, nats_server):
    from retail.inventory.v1 import events_pb2 as inventory_events

    order = channel_order(5006, lines=[("L1", "SKU-1003", 2)])
    async with orders_stack(database_url, nats_server.url, {("SKU-1003", "WEST"): 1}) as stack:
        order_id = (
            await stack.stub.IngestOrder(pb.IngestOrderRequest(request_id="wh-6", order=order))
        ).order_id
        backordered = await stack.wait_status(order_id, S.ORDER_STATUS_BACKORDERED)
        stack.inventory.stock[("SKU-1003", "WEST")] = 5
        await stack.publish(
            inventory_events.AvailabilityChanged(sku="SKU-1003", location_id="WEST", available_to_sell=4),
            source=common_pb2.SOURCE_SYSTEM_MESH,
        )
        accepted = await stack.wait_status(order_id, S.ORDER_STATUS_ACCEPTED)

    assert backordered.lines[0].quantity_backordered == 1
    assert accepted.lines[0].fulfillment_location_id == "WEST"


async def _rows(stack, query: str, **params: object) -> list:
    async with stack.app.db.read() as session:
        return list((await session.execute(text(query), params)).all())


async def test_a_fact_delivered_twice_is_applied_once_in_the_turn_that_claims_it(database_url, nats_server):
    async with orders_stack(database_url, nats_server.url, STOCK) as stack:
        order_id = (
            await stack.stub.IngestOrder(pb.IngestOrderRequest(request_id="wh-7", order=channel_order(5007)))
        ).order_id
        await stack.wait_status(order_id, S.ORDER_STATUS_ACCEPTED)
        created = ev.ErpSalesOrderCreated(
            order_id=order_id,
            erp_sales_order=common_pb2.ExternalRef(
                system=common_pb2.SOURCE_SYSTEM_ERP, id="so-7", name="SO-7"
            ),
        )
        event_id = await stack.publish(created)
        await stack.wait_status(order_id, S.ORDER_STATUS_RELEASED)
        # An outbox republish after the duplicate window: same event id, another Nats-Msg-Id.
        await stack.publish(created, event_id=event_id, msg_id=f"{event_id}-again")
        hop_query = "SELECT outcome FROM hop_log WHERE event_id = :e ORDER BY id"

        async def both_handled() -> list[str] | None:
            outcomes = [row.outcome for row in await _rows(stack, hop_query, e=event_id)]
            return outcomes if len(outcomes) == 2 else None

        outcomes = await wait_until(both_handled, within=20, what="the copy handled")
        order = await stack.order(order_id)
        inbox = await _rows(stack, "SELECT consumer FROM inbox WHERE event_id = :e", e=event_id)

    assert outcomes == ["ok", "duplicate"]
    assert [c.to_status for c in order.status_history].count(S.ORDER_STATUS_ERP_CREATED) == 1
    assert [row.consumer for row in inbox] == ["orders"]


async def test_a_fact_for_an_order_that_does_not_exist_is_an_exception_and_is_not_redelivered(
    database_url, nats_server
):
    async with orders_stack(database_url, nats_server.url, STOCK) as stack:
        event_id = await stack.publish(
            ev.WarehouseReleaseAccepted(order_id="shp-404", release_id="shp-404:EAST:1")
        )
        query = "SELECT reason_code, detail FROM order_exception WHERE order_id = 'shp-404'"
        exceptions = await wait_until(lambda: _rows(stack, query), within=20, what="the exception")
        hops = await _rows(stack, "SELECT outcome FROM hop_log WHERE event_id = :e", e=event_id)
        actor_rows = await _rows(stack, "SELECT key FROM actor_state WHERE key = 'shp-404'")

    assert [(e.reason_code, e.detail) for e in exceptions] == [
        ("UNKNOWN_ORDER", "retail.orders.v1.WarehouseReleaseAccepted for unknown order")
    ]
    assert [h.outcome for h in hops] == ["ok"]
    assert actor_rows == []  # no order was made up for it


async def test_a_fact_refused_halfway_leaves_the_order_as_it_was_before_it(
    database_url, nats_server, monkeypatch
):
    from services.orders.domain import machine
    from services.orders.events import subscriptions

    cls, _ = subscriptions.APPLIERS["retail.shipments.v1.ShipmentConfirmed"]

    def halfway(order, event, event_id, now):
        order.lines[0].quantity_shipped = order.lines[0].quantity  # changed, then refused
        order.shipments.append("SH-HALF")
        raise machine.Refused("refused after changing the order")

    monkeypatch.setitem(subscriptions.APPLIERS, "retail.shipments.v1.ShipmentConfirmed", (cls, halfway))
    async with orders_stack(database_url, nats_server.url, STOCK) as stack:
        order_id = (
            await stack.stub.IngestOrder(pb.IngestOrderRequest(request_id="wh-9", order=channel_order(5009)))
        ).order_id
        await stack.wait_status(order_id, S.ORDER_STATUS_ACCEPTED)
        before = await stack.order(order_id)
        event_id = await stack.publish(
            shipment(order_id, f"{order_id}:EAST:1", "SH-9", [("L1", "SKU-1001", 1)]),
            source=common_pb2.SOURCE_SYSTEM_TPL,
        )
        hop_query = "SELECT outcome FROM hop_log WHERE event_id = :e"

        async def handled() -> bool:
            return bool(await _rows(stack, hop_query, e=event_id))

        await wait_until(handled, within=20, what="the shipment handled")
        after = await stack.order(order_id)

    assert after.status == S.ORDER_STATUS_ACCEPTED
    assert [line.quantity_shipped for line in after.lines] == [line.quantity_shipped for line in before.lines]
    assert all(line.quantity_shipped == 0 for line in after.lines)
