"""Reconciliation of a dropped webhook, and ShipmentConfirmed → one Shopify fulfillment with tracking."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import nats
from sqlalchemy import select, update

from libs.bus.envelope import publish_headers
from libs.bus.streams import subject_for
from libs.bus.tables import OutboxRow
from retail.common.v1 import common_pb2
from retail.integration.v1 import integration_pb2, integration_service_pb2, integration_service_pb2_grpc
from retail.shipments.v1 import events_pb2 as shipment_events
from retail.shipments.v1 import shipments_pb2
from services.shopify_adapter.store import tables
from services.shopify_adapter.translate.fulfillment import location_code
from tests.integration.shopify_adapter.conftest import eventually


async def test_a_webhook_that_never_arrives_is_found_by_the_reconciliation_poll(
    shop, adapter, orders_service
):
    recorder, _ = orders_service
    shop.webhook_faults(drop_rate=1.0, topics=["orders/create"])
    order = shop.checkout(("SKU-1005", 3))
    await eventually(lambda: shop.deliveries("orders/create"), what="the stand-in dropped the webhook")
    assert recorder.ingests == []

    async with grpc.aio.insecure_channel(f"127.0.0.1:{adapter.rpc.port}") as channel:
        stub = integration_service_pb2_grpc.IntegrationServiceStub(channel)
        request = integration_service_pb2.RunReconciliationRequest(
            request_id="recon-1", kind=integration_pb2.RECONCILIATION_KIND_ORDERS, lookback_minutes=60
        )
        first = await stub.RunReconciliation(request)
        again = await stub.RunReconciliation(request)
        connection = (await stub.GetConnection(integration_service_pb2.GetConnectionRequest())).connection

    assert first.run.repaired >= 1
    assert again.run == first.run
    assert [r.order.channel_order.id for r in recorder.ingests] == [order["admin_graphql_api_id"]]
    assert recorder.ingests[0].request_id.startswith(f"shopify:order:{order['id']}@")
    assert [(line.sku, line.quantity) for line in recorder.ingests[0].order.lines] == [("SKU-1005", 3)]
    assert connection.base_url == shop.base_url
    assert connection.HasField("last_success_at")
    assert 0.0 < connection.budget_available <= 1.0
    async with adapter.db.read() as session:
        mark = await session.get(tables.Watermark, "orders")
    assert mark is not None and mark.last_id == order["admin_graphql_api_id"]


def _shipment_confirmed(
    event_id: str, order_id: str, shop_order: dict, location: str
) -> shipment_events.ShipmentConfirmed:
    lines = [
        shipments_pb2.ShipmentLine(line_id=str(li["id"]), sku=li["sku"], quantity=li["quantity"])
        for li in shop_order["line_items"]
    ]
    event = shipment_events.ShipmentConfirmed(
        meta=common_pb2.EventMeta(
            event_id=event_id,
            correlation_id="corr-ship-1",
            source_system=common_pb2.SOURCE_SYSTEM_TPL,
            producer="shipments",
            key=order_id,
        ),
        shipment=shipments_pb2.ShipmentNotice(
            shipment_id="shp-1",
            order_id=order_id,
            release_id="rel-1",
            location_id=location,
            warehouse_shipment=common_pb2.ExternalRef(system=common_pb2.SOURCE_SYSTEM_TPL, id="3pl-77"),
            packages=[
                shipments_pb2.Package(
                    package_id="pkg-1",
                    tracking_number="1Z999AA10123456784",
                    carrier="UPS",
                    tracking_url="https://www.ups.com/track?tracknum=1Z999AA10123456784",
                    lines=lines,
                )
            ],
            status=shipments_pb2.SHIPMENT_STATUS_CONFIRMED,
        ),
    )
    event.meta.occurred_at.FromDatetime(datetime.now(UTC))
    event.shipment.shipped_at.FromDatetime(datetime.now(UTC))
    return event


async def test_a_shipment_confirmed_twice_makes_exactly_one_fulfillment_with_tracking(
    shop, adapter, orders_service, nats_server
):
    recorder, _ = orders_service
    shop_order = shop.checkout(("SKU-1006", 2), ("SKU-1007", 1))
    await eventually(lambda: recorder.ingests, what="order ingested")
    order_id = recorder.ingests[0]  # the stand-in assigned ord-1
    fos = shop.gql(
        "query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 5) { nodes { id"
        " assignedLocation { location { name } } } } } }",
        {"id": shop_order["admin_graphql_api_id"]},
    )["order"]["fulfillmentOrders"]["nodes"]
    location = location_code(fos[0]["assignedLocation"]["location"]["name"])
    first = _shipment_confirmed("evt-ship-1", "ord-1", shop_order, location)
    second = _shipment_confirmed("evt-ship-2", "ord-1", shop_order, location)  # another copy, same shipment
    subject = subject_for(first)
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        for event in (first, first, second):
            headers = publish_headers(event.DESCRIPTOR.full_name, event.meta.event_id, "corr-ship-1", None)
            headers["Nats-Msg-Id"] = (
                f"{event.meta.event_id}:{id(event)}:{len(headers)}"  # not deduplicated by NATS
            )
            await js.publish(subject, event.SerializeToString(), headers=headers)
    finally:
        await nc.close()

    async def done():
        async with adapter.db.read() as session:
            job = await session.get(tables.FulfillmentJob, "shp-1")
        return job if job is not None and job.status == tables.DONE else None

    job = await eventually(done, what="fulfillment job done")
    fo_id = fos[0]["id"].rsplit("/", 1)[1]
    created = shop.counts()["created"]["fulfillments"]
    assert created == {f"{shop_order['id']}:{fo_id}": 1}
    made = shop.gql(
        "query($id: ID!) { fulfillment(id: $id) { trackingInfo(first: 5) { company number url }"
        " fulfillmentLineItems(first: 10) { nodes { quantity lineItem { sku } } } } }",
        {"id": job.fulfillment_gid},
    )["fulfillment"]
    assert made["trackingInfo"] == [
        {
            "company": "UPS",
            "number": "1Z999AA10123456784",
            "url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
        }
    ]
    assert sorted((n["lineItem"]["sku"], n["quantity"]) for n in made["fulfillmentLineItems"]["nodes"]) == [
        ("SKU-1006", 2),
        ("SKU-1007", 1),
    ]

    async def published():
        async with adapter.db.read() as session:
            rows = (
                (
                    await session.execute(
                        select(OutboxRow).where(
                            OutboxRow.event_type == "retail.shipments.v1.ChannelFulfillmentCreated"
                        )
                    )
                )
                .scalars()
                .all()
            )
        return rows

    [row] = await eventually(published, what="ChannelFulfillmentCreated in the outbox")
    event = shipment_events.ChannelFulfillmentCreated.FromString(row.payload)
    assert (event.shipment_id, event.order_id, event.channel_fulfillment.id) == (
        "shp-1",
        "ord-1",
        job.fulfillment_gid,
    )
    assert event.meta.correlation_id == "corr-ship-1"
    assert order_id.order.channel_order.id == shop_order["admin_graphql_api_id"]

    # A crash after Shopify created the fulfillment and before the job was marked done: the job
    # is worked again and finds the fulfillment by its tracking number instead of creating another.
    async with adapter.db.transaction() as session:
        await session.execute(
            update(tables.FulfillmentJob)
            .where(tables.FulfillmentJob.shipment_id == "shp-1")
            .values(status="pending")
        )
    assert await adapter.fulfillments.work("shp-1") == tables.DONE
    assert shop.counts()["created"]["fulfillments"] == {f"{shop_order['id']}:{fo_id}": 1}
