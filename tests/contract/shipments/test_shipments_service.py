"""ShipmentsService's real servicer stack on port 0 over real SQLite and PostgreSQL databases: every RPC,
request_id replay, one shipment per warehouse shipment, validation, NOT_FOUND, and the events
staged in the outbox parsing as their declared types."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import select

from libs.bus import MIGRATIONS, Outbox
from libs.bus.tables import OutboxRow
from libs.rpc import RpcServer
from libs.store import Database, upgrade
from retail.common.v1 import common_pb2
from retail.shipments.v1 import events_pb2, shipments_pb2, shipments_service_pb2, shipments_service_pb2_grpc
from services.shipments import store
from services.shipments.api.servicer import ShipmentsServiceServicer
from services.shipments.app import SERVICE
from services.shipments.config import ShipmentsSettings

SHIPPED_AT = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


@dataclass
class Served:
    """The servicer on a free port, its stub and its database."""

    stub: shipments_service_pb2_grpc.ShipmentsServiceStub
    db: Database


@pytest.fixture
async def served(database_url: str) -> AsyncIterator[Served]:
    """ShipmentsService with the standard interceptors on port 0 over a migrated database."""
    db = Database(database_url)
    await upgrade(db, [MIGRATIONS, store.MIGRATIONS])
    servicer = ShipmentsServiceServicer(db, Outbox(producer="shipments"))
    server = RpcServer(
        ShipmentsSettings(grpc_port=0, metrics_port=0),
        servicers=[(shipments_service_pb2_grpc.add_ShipmentsServiceServicer_to_server, servicer)],
        service_names=[SERVICE],
    )
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Served(shipments_service_pb2_grpc.ShipmentsServiceStub(channel), db)
    finally:
        await channel.close()
        await server.stop(0)
        await db.dispose()


def notice(
    warehouse_id: str = "200001", *, order_id: str = "ord-1", packages: int = 1, partial: bool = False
) -> shipments_pb2.ShipmentNotice:
    """A shipment as the tpl-adapter reports it."""
    shipment = shipments_pb2.ShipmentNotice(
        order_id=order_id,
        release_id=f"{order_id}-EAST",
        location_id="EAST",
        warehouse_shipment=common_pb2.ExternalRef(system=common_pb2.SOURCE_SYSTEM_TPL, id=warehouse_id),
        partial=partial,
    )
    shipment.shipped_at.FromDatetime(SHIPPED_AT)
    for n in range(1, packages + 1):
        shipment.packages.add(
            package_id=f"PKG-{warehouse_id}-{n}",
            tracking_number=f"1Z{warehouse_id}{n}",
            carrier="UPS",
            tracking_url=f"https://www.ups.com/track?tracknum=1Z{warehouse_id}{n}",
            lines=[shipments_pb2.ShipmentLine(line_id=f"L{n}", sku="SKU-1001", quantity=1)],
        )
    return shipment


async def staged(db: Database, event_type: str) -> list:
    """Events of one type staged in the outbox, parsed as that type."""
    cls = {
        "retail.shipments.v1.ShipmentConfirmed": events_pb2.ShipmentConfirmed,
        "retail.shipments.v1.ShipmentTrackingUpdated": events_pb2.ShipmentTrackingUpdated,
        "retail.shipments.v1.ShipmentDelivered": events_pb2.ShipmentDelivered,
    }[event_type]
    async with db.read() as session:
        rows = (await session.execute(select(OutboxRow).where(OutboxRow.event_type == event_type))).scalars()
        return [cls.FromString(r.payload) for r in rows]


def tracking(
    shipment_id: str, request_id: str, status: int, *, package_id: str = "", at: datetime | None = None
) -> shipments_service_pb2.RecordTrackingUpdateRequest:
    """A carrier update."""
    request = shipments_service_pb2.RecordTrackingUpdateRequest(
        request_id=request_id, shipment_id=shipment_id, package_id=package_id, status=status
    )
    request.occurred_at.FromDatetime(at or SHIPPED_AT + timedelta(hours=1))
    return request


async def test_recording_a_shipment_stores_it_and_publishes_shipment_confirmed(served: Served):
    reply = await served.stub.RecordShipment(
        shipments_service_pb2.RecordShipmentRequest(request_id="200001", shipment=notice(packages=2))
    )

    (event,) = await staged(served.db, "retail.shipments.v1.ShipmentConfirmed")
    assert reply.created
    assert reply.shipment.shipment_id
    assert reply.shipment.status == shipments_pb2.SHIPMENT_STATUS_CONFIRMED
    assert event.shipment == reply.shipment
    assert event.meta.key == "ord-1"
    assert event.meta.source_system == common_pb2.SOURCE_SYSTEM_TPL
    assert [p.tracking_number for p in event.shipment.packages] == ["1Z2000011", "1Z2000012"]


async def test_repeating_a_request_id_returns_the_first_result_and_publishes_nothing_more(served: Served):
    request = shipments_service_pb2.RecordShipmentRequest(request_id="200001", shipment=notice())

    first = await served.stub.RecordShipment(request)
    second = await served.stub.RecordShipment(request)

    assert second == first
    assert len(await staged(served.db, "retail.shipments.v1.ShipmentConfirmed")) == 1


async def test_the_same_warehouse_shipment_under_another_request_id_is_recorded_once(served: Served):
    first = await served.stub.RecordShipment(
        shipments_service_pb2.RecordShipmentRequest(request_id="webhook-msg_1", shipment=notice())
    )

    again = await served.stub.RecordShipment(
        shipments_service_pb2.RecordShipmentRequest(request_id="edi-945-000000017", shipment=notice())
    )

    assert not again.created
    assert again.shipment.shipment_id == first.shipment.shipment_id
    assert len(await staged(served.db, "retail.shipments.v1.ShipmentConfirmed")) == 1


async def test_the_same_warehouse_shipment_reported_twice_at_once_is_recorded_once(served: Served):
    # On PostgreSQL both transactions insert; the second fails on the unique warehouse shipment
    # and answers from the first one's committed row.
    first, second = await asyncio.gather(
        served.stub.RecordShipment(
            shipments_service_pb2.RecordShipmentRequest(request_id="webhook-msg_1", shipment=notice())
        ),
        served.stub.RecordShipment(
            shipments_service_pb2.RecordShipmentRequest(request_id="edi-945-000000017", shipment=notice())
        ),
    )

    assert sorted([first.created, second.created]) == [False, True]
    assert first.shipment.shipment_id == second.shipment.shipment_id
    assert len(await staged(served.db, "retail.shipments.v1.ShipmentConfirmed")) == 1


async def test_a_shipment_without_packages_is_refused_naming_the_field(served: Served):
    shipment = notice()
    del shipment.packages[:]

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await served.stub.RecordShipment(
            shipments_service_pb2.RecordShipmentRequest(request_id="x", shipment=shipment)
        )

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "packages" in error.value.details()


async def test_get_shipment_finds_it_by_mesh_id_and_by_warehouse_record(served: Served):
    recorded = (
        await served.stub.RecordShipment(
            shipments_service_pb2.RecordShipmentRequest(request_id="200001", shipment=notice())
        )
    ).shipment

    by_id = await served.stub.GetShipment(
        shipments_service_pb2.GetShipmentRequest(shipment_id=recorded.shipment_id)
    )
    by_ref = await served.stub.GetShipment(
        shipments_service_pb2.GetShipmentRequest(warehouse_shipment=recorded.warehouse_shipment)
    )

    assert by_id.shipment == recorded
    assert by_ref.shipment == recorded


async def test_get_shipment_of_an_unknown_id_is_not_found(served: Served):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await served.stub.GetShipment(shipments_service_pb2.GetShipmentRequest(shipment_id="shp-nope"))

    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_shipments_filters_by_order_and_pages(served: Served):
    for n in range(3):
        await served.stub.RecordShipment(
            shipments_service_pb2.RecordShipmentRequest(
                request_id=f"r{n}", shipment=notice(f"20000{n}", order_id="ord-A")
            )
        )
    await served.stub.RecordShipment(
        shipments_service_pb2.RecordShipmentRequest(
            request_id="other", shipment=notice("299999", order_id="ord-B")
        )
    )

    first = await served.stub.ListShipments(
        shipments_service_pb2.ListShipmentsRequest(order_id="ord-A", page=common_pb2.PageRequest(page_size=2))
    )
    rest = await served.stub.ListShipments(
        shipments_service_pb2.ListShipmentsRequest(
            order_id="ord-A", page=common_pb2.PageRequest(page_size=2, page_token=first.page.next_page_token)
        )
    )

    assert len(first.shipments) == 2
    assert len(rest.shipments) == 1
    assert not rest.page.next_page_token
    ids = {s.warehouse_shipment.id for s in [*first.shipments, *rest.shipments]}
    assert ids == {"200000", "200001", "200002"}


async def test_delivery_of_every_package_publishes_shipment_delivered_once(served: Served):
    recorded = (
        await served.stub.RecordShipment(
            shipments_service_pb2.RecordShipmentRequest(request_id="200001", shipment=notice(packages=2))
        )
    ).shipment
    first_pkg, second_pkg = (p.package_id for p in recorded.packages)
    delivered = shipments_pb2.SHIPMENT_STATUS_DELIVERED

    one = await served.stub.RecordTrackingUpdate(
        tracking(recorded.shipment_id, "t1", delivered, package_id=first_pkg)
    )
    both = await served.stub.RecordTrackingUpdate(
        tracking(
            recorded.shipment_id, "t2", delivered, package_id=second_pkg, at=SHIPPED_AT + timedelta(hours=2)
        )
    )
    await served.stub.RecordTrackingUpdate(
        tracking(
            recorded.shipment_id, "t2", delivered, package_id=second_pkg, at=SHIPPED_AT + timedelta(hours=2)
        )
    )

    assert one.shipment.status == shipments_pb2.SHIPMENT_STATUS_IN_TRANSIT
    assert both.shipment.status == delivered
    assert both.shipment.delivered_at.ToDatetime(tzinfo=UTC) == SHIPPED_AT + timedelta(hours=2)
    assert len(await staged(served.db, "retail.shipments.v1.ShipmentTrackingUpdated")) == 2
    (event,) = await staged(served.db, "retail.shipments.v1.ShipmentDelivered")
    assert event.shipment_id == recorded.shipment_id


async def test_a_tracking_update_older_than_the_applied_one_changes_nothing(served: Served):
    recorded = (
        await served.stub.RecordShipment(
            shipments_service_pb2.RecordShipmentRequest(request_id="200001", shipment=notice())
        )
    ).shipment
    await served.stub.RecordTrackingUpdate(
        tracking(
            recorded.shipment_id,
            "late",
            shipments_pb2.SHIPMENT_STATUS_EXCEPTION,
            at=SHIPPED_AT + timedelta(hours=5),
        )
    )

    stale = await served.stub.RecordTrackingUpdate(
        tracking(recorded.shipment_id, "early", shipments_pb2.SHIPMENT_STATUS_IN_TRANSIT)
    )

    assert stale.shipment.status == shipments_pb2.SHIPMENT_STATUS_EXCEPTION
    assert len(await staged(served.db, "retail.shipments.v1.ShipmentTrackingUpdated")) == 1


async def test_a_tracking_update_for_an_unknown_shipment_is_not_found(served: Served):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await served.stub.RecordTrackingUpdate(
            tracking("shp-nope", "t", shipments_pb2.SHIPMENT_STATUS_IN_TRANSIT)
        )

    assert error.value.code() == grpc.StatusCode.NOT_FOUND
