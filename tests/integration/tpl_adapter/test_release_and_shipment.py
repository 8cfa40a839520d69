"""The JSON API path through real processes' parts: releases become 3PL orders exactly once,
the 3PL's signed webhooks become recorded shipments and ShipmentConfirmed events, cancellations
are accepted before shipment and rejected after, and stock snapshots reach the inventory API."""

from __future__ import annotations

import grpc

from retail.integration.v1 import integration_pb2, integration_service_pb2, integration_service_pb2_grpc
from retail.orders.v1 import events_pb2 as order_events
from retail.shipments.v1 import events_pb2 as shipment_events
from tests.integration.tpl_adapter.conftest import Mesh, release, wait_until


async def accepted(mesh: Mesh, release_id: str) -> order_events.WarehouseReleaseAccepted:
    async def found():
        return [
            e for e in mesh.observer.of(order_events.WarehouseReleaseAccepted) if e.release_id == release_id
        ]

    return (await wait_until(found, what=f"WarehouseReleaseAccepted {release_id}"))[0]


async def test_a_release_delivered_twice_creates_one_3pl_order_and_one_acceptance(mesh: Mesh):
    event = release()
    again = release()

    await mesh.observer.publish(event, key=event.order_id)
    first = await accepted(mesh, event.release_id)
    await mesh.observer.publish(again, key=again.order_id)
    await wait_until(
        lambda: mesh.adapter.events.inbox.seen("tpl-adapter", again.meta.event_id), what="2nd handled"
    )

    counts = await mesh.counts()
    assert counts["created"]["orders"] == {event.release_id: 1}
    assert len(await mesh.tpl_orders(event.release_id)) == 1
    assert len(mesh.observer.of(order_events.WarehouseReleaseAccepted)) == 1
    assert first.warehouse_order.id == str((await mesh.tpl_orders(event.release_id))[0]["id"])


async def test_a_create_whose_answer_is_lost_after_commit_still_makes_one_3pl_order(mesh: Mesh):
    await mesh.tpl_http.put(
        "/_sandbox/faults", json={"operation": "order.create", "fault": {"drop_response_rate": 1.0}}
    )
    event = release("ord-lost")

    await mesh.observer.publish(event, key=event.order_id)
    done = await accepted(mesh, event.release_id)

    assert len(await mesh.tpl_orders(event.release_id)) == 1
    assert (await mesh.counts())["created"]["orders"] == {event.release_id: 1}
    assert done.warehouse_order.id == str((await mesh.tpl_orders(event.release_id))[0]["id"])


async def test_split_fulfillment_gives_one_3pl_order_per_location_each_confirmed_on_its_own(mesh: Mesh):
    east = release("ord-split", "EAST", (("L1", "SKU-1001", 1),))
    west = release("ord-split", "WEST", (("L2", "SKU-1002", 1),))

    await mesh.observer.publish(east, key=east.order_id)
    await mesh.observer.publish(west, key=west.order_id)
    east_order = await accepted(mesh, east.release_id)
    west_order = await accepted(mesh, west.release_id)
    await mesh.ship(east_order.warehouse_order.id)
    await mesh.ship(west_order.warehouse_order.id)

    confirmed = await wait_until(
        lambda: _async(
            len(mesh.observer.of(shipment_events.ShipmentConfirmed)) >= 2
            and mesh.observer.of(shipment_events.ShipmentConfirmed)
        ),
        what="two ShipmentConfirmed",
    )
    assert east_order.warehouse_order.id != west_order.warehouse_order.id
    assert {c.shipment.release_id: c.shipment.location_id for c in confirmed} == {
        east.release_id: "EAST",
        west.release_id: "WEST",
    }
    # Both centers stock both SKUs: the 3PL ships from the center the mesh routed to, not its first.
    for event, center in ((east, "EAST"), (west, "WEST")):
        (tpl_order,) = await mesh.tpl_orders(event.release_id)
        assert {s["location"]["name"] for s in tpl_order["shipments"]} == {center}


async def test_a_shipment_webhook_becomes_a_recorded_shipment_and_shipment_confirmed(mesh: Mesh):
    event = release("ord-ship", lines=(("L1", "SKU-1003", 1), ("L2", "SKU-1004", 2)))
    await mesh.observer.publish(event, key=event.order_id)
    order = await accepted(mesh, event.release_id)

    await mesh.ship(order.warehouse_order.id)

    (confirmed,) = await wait_until(
        lambda: _async(mesh.observer.of(shipment_events.ShipmentConfirmed)), what="ShipmentConfirmed"
    )
    shipment = confirmed.shipment
    assert shipment.order_id == "ord-ship"
    assert shipment.location_id == "EAST"
    assert not shipment.partial
    assert shipment.packages[0].tracking_number.startswith("1Z")
    assert shipment.packages[0].carrier == "UPS"
    assert shipment.packages[0].tracking_url
    assert sorted((x.line_id, x.sku, x.quantity) for x in shipment.packages[0].lines) == [
        ("L1", "SKU-1003", 1),
        ("L2", "SKU-1004", 2),
    ]


async def test_a_partial_shipment_gives_two_shipment_confirmed_with_separate_tracking(mesh: Mesh):
    event = release("ord-partial", lines=(("L1", "SKU-1005", 4),))
    await mesh.observer.publish(event, key=event.order_id)
    order = await accepted(mesh, event.release_id)

    await mesh.ship(order.warehouse_order.id, split=True)

    confirmed = await wait_until(
        lambda: _async(
            len(mesh.observer.of(shipment_events.ShipmentConfirmed)) >= 2
            and mesh.observer.of(shipment_events.ShipmentConfirmed)
        ),
        what="two ShipmentConfirmed",
    )
    tracking = {c.shipment.packages[0].tracking_number for c in confirmed}
    assert len(tracking) == 2
    assert sum(c.shipment.packages[0].lines[0].quantity for c in confirmed) == 4
    assert sorted(c.shipment.partial for c in confirmed) == [False, True]


async def test_a_cancellation_before_shipment_is_accepted_by_the_3pl(mesh: Mesh):
    event = release("ord-cancel")
    await mesh.observer.publish(event, key=event.order_id)
    order = await accepted(mesh, event.release_id)

    await mesh.observer.publish(
        order_events.OrderCancellationRequested(
            order_id=event.order_id, release_id=event.release_id, whole_release=True
        ),
        key=event.order_id,
    )

    (done,) = await wait_until(
        lambda: _async(mesh.observer.of(order_events.WarehouseCancellationAccepted)), what="accepted"
    )
    tpl_order = (await mesh.tpl_orders(event.release_id))[0]
    assert tpl_order["status"] == "Cancelled"
    assert tpl_order["id"] == int(order.warehouse_order.id)
    assert [(x.line_id, x.quantity) for x in done.lines] == [("L1", 2)]


async def test_a_cancellation_after_shipment_is_rejected_as_already_shipped(mesh: Mesh):
    event = release("ord-late")
    await mesh.observer.publish(event, key=event.order_id)
    order = await accepted(mesh, event.release_id)
    await mesh.ship(order.warehouse_order.id)

    await mesh.observer.publish(
        order_events.OrderCancellationRequested(
            order_id=event.order_id, release_id=event.release_id, whole_release=True
        ),
        key=event.order_id,
    )

    (rejected,) = await wait_until(
        lambda: _async(mesh.observer.of(order_events.WarehouseCancellationRejected)), what="rejected"
    )
    assert rejected.reason.code == "ALREADY_SHIPPED"
    assert "already shipped" in rejected.reason.message
    assert (await mesh.tpl_orders(event.release_id))[0]["status"] != "Cancelled"


async def test_a_release_with_an_unknown_sku_is_rejected_with_a_business_reason(mesh: Mesh):
    event = release("ord-bad", lines=(("L1", "SKU-9999", 1),))

    await mesh.observer.publish(event, key=event.order_id)

    (rejected,) = await wait_until(
        lambda: _async(mesh.observer.of(order_events.WarehouseReleaseRejected)), what="rejected"
    )
    assert rejected.reason.code == "INVALID_SKU"
    assert rejected.release_id == event.release_id


async def test_inventory_reconciliation_applies_one_snapshot_per_fulfillment_center(mesh: Mesh):
    await wait_until(lambda: _async(len(mesh.inventory.snapshots) >= 2), what="snapshot at start")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.adapter.grpc_port}") as channel:
        stub = integration_service_pb2_grpc.IntegrationServiceStub(channel)

        reply = await stub.RunReconciliation(
            integration_service_pb2.RunReconciliationRequest(
                request_id="r1", kind=integration_pb2.RECONCILIATION_KIND_INVENTORY
            )
        )
        connection = await stub.GetConnection(integration_service_pb2.GetConnectionRequest())

    latest = mesh.inventory.snapshots[-2:]
    assert sorted(s.location_id for s in latest) == ["EAST", "WEST"]
    assert all(len(s.lines) == 10 and s.complete for s in latest)
    assert reply.run.compared == 20
    assert len({s.request_id for s in mesh.inventory.snapshots}) == len(mesh.inventory.snapshots)
    assert connection.connection.base_url == mesh.tpl_url
    assert connection.connection.HasField("last_success_at")


async def _async(value):
    return value
