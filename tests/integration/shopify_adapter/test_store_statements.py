"""The adapter's per-order statements (built once, on the tables) on SQLite and PostgreSQL: a webhook
stored once and answered after its commit, a delivery backed off and then ingested with its channel
order remembered (newest version kept), a fulfillment job recorded and done with its event, a push
recorded or deferred, our own write recognised as an echo; and the delivery worker holding back
while a burst of webhooks is being answered (decision 0035)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

from libs import bus
from libs.bus import MessageContext, Outbox
from libs.bus.tables import OutboxRow
from libs.store import Database, migrated
from retail.common.v1 import common_pb2
from retail.orders.v1 import orders_service_pb2
from retail.shipments.v1 import events_pb2 as shipment_events
from retail.shipments.v1 import shipments_pb2
from services.shopify_adapter.api.webhook import WebhookIngress
from services.shopify_adapter.clients.admin import ConnectionState
from services.shopify_adapter.clients.orders import OrdersUnavailable
from services.shopify_adapter.events.shipments import DURABLE, shipment_subscription
from services.shopify_adapter.store import MIGRATIONS, tables
from services.shopify_adapter.sync.deliveries import DeliveryWorker
from services.shopify_adapter.sync.fulfillments import FulfillmentWorker
from services.shopify_adapter.sync.ingest import OrderIngestor
from services.shopify_adapter.sync.inventory import InventoryEchoFilter, InventoryPusher
from services.shopify_adapter.translate.order import order_from_webhook

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "shopify_adapter" / "webhooks"
SECRET = "webhook_secret"
SHOP = "retail-mesh-demo.myshopify.com"
ITEM = "gid://shopify/InventoryItem/1"
LOCATION = "gid://shopify/Location/1"


class Orders:
    """The orders client, answering in-process: IngestOrder gives `ord-1`, or fails while unavailable."""

    def __init__(self) -> None:
        self.unavailable = False
        self.calls = 0

    async def ingest(self, order: Any, request_id: str) -> orders_service_pb2.IngestOrderResponse:
        self.calls += 1
        if self.unavailable:
            raise OrdersUnavailable("UNAVAILABLE: orders is restarting")
        return orders_service_pb2.IngestOrderResponse(order_id="ord-1")

    async def channel_order(self, order_id: str) -> None:
        return None


class Admin:
    """Admin API answers for the fulfillment worker and the inventory pusher."""

    def __init__(self) -> None:
        self.state = ConnectionState()
        self.during_set: Any = None

    async def fulfillment_orders(self, order_gid: str) -> dict[str, Any]:
        fulfillment = {
            "id": "gid://shopify/Fulfillment/1",
            "name": "#1001-F1",
            "trackingInfo": [{"number": "TN-1"}],
        }
        return {"fulfillments": [fulfillment]}

    async def locations(self, *, keep_free: float = 0.0) -> dict[str, str]:
        return {LOCATION: "East Warehouse"}

    async def inventory_items_by_sku(self, skus: list[str], *, keep_free: float = 0.0) -> dict[str, str]:
        return {"SKU-1": ITEM, "SKU-3": "gid://shopify/InventoryItem/3"} if skus else {}

    async def available_at(self, location_gid: str, item_gids: list[str], **_lane: Any) -> dict:
        return {gid: 3 for gid in item_gids}

    async def set_quantities(self, quantities: Any, key: str, **_lane: Any) -> dict[str, Any]:
        if self.during_set is not None:
            await self.during_set()
        return {"userErrors": []}


def _signed(body: bytes, event_id: str) -> dict[str, str]:
    return {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Hmac-Sha256": base64.b64encode(
            hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
        ).decode(),
    }


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _one(db: Database, entity: Any, *where: Any) -> Any:
    async with db.read() as session:
        return (await session.execute(select(entity).where(*where))).scalar_one()


async def test_a_webhook_is_stored_once_then_worked_and_its_newest_order_version_remembered(database_url):
    orders = Orders()
    body = json.dumps(json.loads((FIXTURES / "orders_create.json").read_text())["response"]).encode()
    older = json.loads(body)
    older["updated_at"] = "2021-12-31T18:00:00-05:00"

    async with migrated(database_url, [bus.MIGRATIONS, MIGRATIONS]) as db:
        ingress = WebhookIngress(
            db, secrets=lambda: [SECRET], shop_domains=lambda: frozenset({SHOP}), max_body_bytes=1 << 20
        )
        transport = httpx.ASGITransport(app=ingress.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://adapter") as http:
            replies = await asyncio.gather(
                *(
                    http.post("/webhooks/shopify", content=body, headers=_signed(body, "evt-1"))
                    for _ in range(3)
                )
            )
        worker = DeliveryWorker(db, OrderIngestor(db, orders), orders, admin=None)

        orders.unavailable = True
        await worker.step()
        await worker.close()
        backing_off = await _one(db, tables.WebhookDelivery)
        await worker.step()  # not due yet
        await worker.close()
        calls_while_backing_off = orders.calls

        orders.unavailable = False
        async with db.transaction() as session:
            await session.execute(update(tables.WebhookDelivery).values(next_attempt_at=datetime.now(UTC)))
        await worker.step()
        await worker.close()
        worked = await _one(db, tables.WebhookDelivery)
        await OrderIngestor(db, orders).ingest(order_from_webhook(older))  # an older version, late
        remembered = await _one(db, tables.ChannelOrder)

    assert [r.status_code for r in replies] == [200] * 3
    assert sorted(r.json()["status"] for r in replies) == ["duplicate", "duplicate", "stored"]
    assert (backing_off.status, backing_off.attempts) == (tables.PENDING, 1)
    assert backing_off.last_error.startswith("UNAVAILABLE")
    assert _utc(backing_off.next_attempt_at) > datetime.now(UTC) - timedelta(seconds=1)
    assert calls_while_backing_off == 1
    assert (worked.status, worked.attempts, worked.last_error) == (tables.PROCESSED, 2, None)
    assert worked.order_gid == "gid://shopify/Order/820982911946154508"
    assert worked.processed_at is not None
    assert (remembered.order_gid, remembered.order_id) == (worked.order_gid, "ord-1")
    assert remembered.channel_updated_at == "2022-01-01T00:00:00Z"  # the newest version stays


async def test_a_confirmed_shipment_becomes_a_job_once_and_is_done_with_its_event(database_url):
    notice = shipments_pb2.ShipmentNotice(
        shipment_id="shp-1",
        order_id="ord-1",
        location_id="EAST",
        packages=[shipments_pb2.Package(package_id="pkg-1", tracking_number="TN-1", carrier="UPS")],
    )
    event = shipment_events.ShipmentConfirmed(
        meta=common_pb2.EventMeta(event_id="evt-shp-1"), shipment=notice
    )
    handler = shipment_subscription().handler

    async with migrated(database_url, [bus.MIGRATIONS, MIGRATIONS]) as db:
        for delivery in (1, 2):  # the same shipment twice: one job
            async with db.transaction() as session:
                ctx = MessageContext(
                    session=session,
                    event_id=f"evt-shp-{delivery}",
                    event_type=event.DESCRIPTOR.full_name,
                    subject=event.DESCRIPTOR.full_name,
                    headers={},
                    correlation_id="corr-1",
                    causation_id=None,
                    delivery=1,
                    stream_seq=delivery,
                    consumer=DURABLE,
                )
                await handler(event, ctx)
        async with db.transaction() as session:
            session.add(
                tables.ChannelOrder(
                    order_gid="gid://shopify/Order/1", order_id="ord-1", ingested_at=datetime.now(UTC)
                )
            )
        worker = FulfillmentWorker(db, Admin(), Orders(), Outbox(producer="shopify-adapter").add)
        more = await worker.step()
        await asyncio.wait_for(worker.idle(), 10)
        job = await _one(db, tables.FulfillmentJob)
        published = await _one(db, OutboxRow)

    assert more is False
    assert (job.status, job.attempts, job.causation_id) == (tables.DONE, 1, "evt-shp-1")
    assert job.fulfillment_gid == "gid://shopify/Fulfillment/1"
    assert job.done_at is not None
    assert published.event_type == "retail.shipments.v1.ChannelFulfillmentCreated"
    sent = shipment_events.ChannelFulfillmentCreated.FromString(published.payload)
    assert (sent.shipment_id, sent.order_id, sent.channel_fulfillment.id) == (
        "shp-1",
        "ord-1",
        job.fulfillment_gid,
    )


async def test_pushes_are_recorded_or_deferred_and_our_own_write_is_an_echo(database_url):
    admin = Admin()
    past = datetime.now(UTC) - timedelta(seconds=5)

    def due(sku: str, **values: Any) -> tables.InventoryPush:
        return tables.InventoryPush(
            sku=sku,
            location_id="EAST",
            wanted_quantity=7,
            wanted_version=2,
            wanted_at=past,
            pending_since=past,
            correlation_id="corr-1",
            pushed_version=-1,
            attempts=0,
            next_attempt_at=past,
            **values,
        )

    async with migrated(database_url, [bus.MIGRATIONS, MIGRATIONS]) as db:
        async with db.transaction() as session:
            session.add_all([due("SKU-1", held_quantity=9), due("SKU-2"), due("SKU-3")])

        async def newer_change_to_sku_3() -> None:  # arrives while Shopify is being told
            async with db.transaction() as session:
                await session.execute(
                    update(tables.InventoryPush)
                    .where(tables.InventoryPush.sku == "SKU-3")
                    .values(wanted_quantity=6, wanted_version=3, wanted_at=datetime.now(UTC))
                )

        admin.during_set = newer_change_to_sku_3
        more = await InventoryPusher(db, admin, inventory=None).step()
        rows = {
            sku: await _one(db, tables.InventoryPush, tables.InventoryPush.sku == sku)
            for sku in ("SKU-1", "SKU-2", "SKU-3")
        }
        echo = InventoryEchoFilter(db)
        kinds = [
            await echo.classify({"inventory_item_id": 1, "location_id": 1, "available": 7}),
            await echo.classify({"inventory_item_id": 1, "location_id": 1, "available": 6}),
        ]

    pushed, unknown, moved_on = rows["SKU-1"], rows["SKU-2"], rows["SKU-3"]
    assert more is False
    assert (
        pushed.pushed_version,
        pushed.pushed_quantity,
        pushed.shopify_available,
        pushed.base_quantity,
    ) == (
        2,
        7,
        7,
        7,
    )
    assert (pushed.item_gid, pushed.location_gid, pushed.attempts, pushed.last_error) == (
        ITEM,
        LOCATION,
        0,
        None,
    )
    assert pushed.held_quantity is None  # the mesh's figure fell to the hold: it ends
    assert pushed.pending_since is None
    assert (unknown.pushed_version, unknown.attempts) == (-1, 1)
    assert unknown.last_error.startswith("UNKNOWN_SKU")
    assert _utc(unknown.next_attempt_at) > past
    assert (moved_on.pushed_version, moved_on.wanted_version) == (2, 3)  # still due
    assert _utc(moved_on.pending_since) == _utc(moved_on.wanted_at)
    assert kinds == ["echo", "external"]


async def test_the_worker_waits_while_a_burst_is_received_unless_its_delivery_waited_long_enough(
    database_url,
):
    orders = Orders()
    body = json.dumps(json.loads((FIXTURES / "orders_create.json").read_text())["response"]).encode()

    async with migrated(database_url, [bus.MIGRATIONS, MIGRATIONS]) as db:
        # More than one request in flight is a burst here (16 by default).
        ingress = WebhookIngress(
            db,
            secrets=lambda: [SECRET],
            shop_domains=lambda: frozenset({SHOP}),
            max_body_bytes=1 << 20,
            busy_above=1,
        )
        store, release, arrived = ingress.store, asyncio.Event(), asyncio.Queue[str]()

        async def held_store(row: dict[str, Any]) -> bool:
            if row["event_id"].startswith("held"):
                arrived.put_nowait(row["event_id"])  # counted in flight by now
                await release.wait()  # a webhook still being received
            return await store(row)

        ingress.store = held_store  # type: ignore[method-assign]
        worker = DeliveryWorker(
            db,
            OrderIngestor(db, orders),
            orders,
            admin=None,
            ingress_quiet=ingress.quiet,
            ingress_first_s=30.0,
        )
        transport = httpx.ASGITransport(app=ingress.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://adapter") as http:

            async def post(event_id: str) -> httpx.Response:
                return await http.post("/webhooks/shopify", content=body, headers=_signed(body, event_id))

            def receiving(event_id: str) -> asyncio.Task[httpx.Response]:
                return asyncio.create_task(post(event_id))

            async def until_held(n: int) -> None:
                for _ in range(n):
                    await asyncio.wait_for(arrived.get(), 10)

            # One webhook being received is no burst: a fresh delivery starts at once.
            assert (await post("evt-1")).status_code == 200
            first = receiving("held-1")
            await until_held(1)
            await asyncio.wait_for(worker.step(), 10)
            await worker.close()
            calls_with_one_in_flight = orders.calls

            # Two are: a fresh delivery waits until the burst is answered.
            assert (await post("evt-2")).status_code == 200
            second = receiving("held-2")
            await until_held(1)  # held-1 is still being received
            step = asyncio.create_task(worker.step())
            _done, pending = await asyncio.wait({step}, timeout=0.5)
            held_during_burst = step in pending and orders.calls == calls_with_one_in_flight
            release.set()
            await asyncio.wait_for(step, 10)
            await worker.close()
            answered = [r.status_code for r in await asyncio.wait_for(asyncio.gather(first, second), 10)]
            calls_once_answered = orders.calls

            # A delivery that already waited ingress_first_s starts during a burst.
            release.clear()
            async with db.transaction() as session:
                await session.execute(
                    update(tables.WebhookDelivery)
                    .where(tables.WebhookDelivery.status == tables.PENDING)
                    .values(received_at=datetime.now(UTC) - timedelta(seconds=60))
                )
            burst = [receiving("held-3"), receiving("held-4")]
            await until_held(2)
            await asyncio.wait_for(worker.step(), 10)
            await worker.close()
            calls_during_burst = orders.calls
            release.set()
            await asyncio.wait_for(asyncio.gather(*burst), 10)

    assert calls_with_one_in_flight == 1
    assert held_during_burst
    assert answered == [200, 200]
    assert calls_once_answered == 2
    assert calls_during_burst == 4  # held-1 and held-2, stored once answered, waited long enough
