"""The erp-adapter wired as in app.py against a real Business Central stand-in over HTTP, a real
nats-server and a real database; a test publisher plays the orders and shipments services."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message

from libs.bus import MIGRATIONS, EventBus, Inbox, context_streams
from libs.bus.envelope import decode
from libs.http.answer import Answer
from libs.store import migrated
from retail.common.v1 import common_pb2
from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2
from retail.shipments.v1 import events_pb2 as shipment_events
from retail.shipments.v1 import shipments_pb2
from sandbox.business_central.app import create_app
from sandbox.business_central.config import BusinessCentralSettings
from sandbox.common.server import serve_in_thread
from services.erp_adapter import store
from services.erp_adapter.app import business_central
from services.erp_adapter.config import ErpAdapterSettings
from services.erp_adapter.events import ErpHandlers, subscriptions

DEADLINE_S = 20.0


@dataclass
class Exchange:
    """One HTTP answer the adapter received from Business Central."""

    at: float
    method: str
    path: str
    status: int
    retry_after: float | None


@dataclass
class Erp:
    """The running adapter, the stand-in's control API and what was published."""

    control: httpx.AsyncClient
    publisher: EventBus
    handlers: ErpHandlers
    exchanges: list[Exchange]
    inbox: Inbox
    events: list[Message] = field(default_factory=list)

    async def handled(self, event_id: str) -> None:
        """Wait until the adapter has committed the handling of `event_id`."""
        deadline = time.monotonic() + DEADLINE_S
        while not await self.inbox.seen("erp-adapter", event_id):
            assert time.monotonic() < deadline, f"event {event_id} not handled before the deadline"
            await asyncio.sleep(0.02)

    async def publish(self, event: Message, key: str) -> str:
        """Publish `event` through the test publisher's outbox (as the orders service does)."""
        async with self.publisher.db.transaction() as session:
            return await self.publisher.outbox.add(session, event, key=key)

    async def wait_for(self, kind: type[Message], count: int = 1, **fields: Any) -> list[Message]:
        """The published events of `kind` matching `fields`, once `count` of them exist."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            found = [
                e
                for e in self.events
                if isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())
            ]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} x {kind.__name__} not published; saw {self.events}")
            await asyncio.sleep(0.02)

    async def created(self, external: str) -> int:
        """Sales orders the stand-in created for an external document number."""
        counts = (await self.control.get("/_sandbox/counts")).json()["created"]
        return int(counts.get("salesOrders", {}).get(external, 0))

    async def state(self) -> dict[str, Any]:
        """The stand-in's state snapshot."""
        return (await self.control.get("/_sandbox/state")).json()


@pytest.fixture
def bc_settings() -> dict[str, Any]:
    """Settings of the Business Central stand-in a test module wants (seed 0 by default)."""
    return {}


@pytest.fixture
def bc_url(bc_settings: dict[str, Any]) -> Iterator[str]:
    """The Business Central stand-in on a free loopback port."""
    server = serve_in_thread(create_app(BusinessCentralSettings(**bc_settings)))
    yield server.__enter__()
    server.__exit__(None, None, None)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Extra adapter settings a test module wants."""
    return {}


@pytest.fixture
async def erp(
    nats_server: Any, database_url: str, tmp_path: Path, bc_url: str, settings_overrides: dict[str, Any]
) -> AsyncIterator[Erp]:
    """The erp-adapter's bus, handlers and BC client; a publisher bus; a collector of ERP facts."""
    settings = ErpAdapterSettings(
        nats_url=nats_server.url,
        database_url=database_url,
        bc_base_url=bc_url,
        bc_client_secret="sandbox-secret",
        bc_transient_retry_s=0.2,
        **settings_overrides,
    )
    exchanges: list[Exchange] = []

    async def record(response: Answer) -> None:
        value = response.headers.get("Retry-After")
        exchanges.append(
            Exchange(
                time.monotonic(),
                response.method,
                response.path,
                response.status_code,
                float(value) if value else None,
            )
        )

    async with AsyncExitStack() as stack:
        db = await stack.enter_async_context(migrated(database_url, [MIGRATIONS, store.MIGRATIONS]))
        publisher_db = await stack.enter_async_context(
            migrated(f"sqlite+aiosqlite:///{tmp_path / 'publisher.db'}", [MIGRATIONS])
        )
        publisher = await stack.enter_async_context(
            EventBus(
                publisher_db,
                nats_server.url,
                name="orders",
                streams=context_streams(1),
                provision_streams=True,
            )
        )
        client = await stack.enter_async_context(business_central(settings, on_response=[record]))
        handlers = ErpHandlers(client, transient_retry_s=settings.bc_transient_retry_s)
        control = await stack.enter_async_context(httpx.AsyncClient(base_url=bc_url, timeout=10))
        harness = Erp(control, publisher, handlers, exchanges, Inbox(db))

        async def collect(msg: Any) -> None:
            harness.events.append(decode(msg.headers or {}, msg.data))

        js = publisher.nc.jetstream()
        for subject in (
            "retail.orders.v1.ErpSalesOrderCreated",
            "retail.orders.v1.ErpOrderRejected",
            "retail.orders.v1.ErpInvoicePosted",
            "retail.shipments.v1.ErpShipmentPosted",
        ):
            sub = await js.subscribe(subject, cb=collect, ordered_consumer=True)
            stack.push_async_callback(sub.unsubscribe)
        await stack.enter_async_context(
            EventBus.for_service(db, settings, subscriptions=subscriptions(handlers))
        )
        yield harness


def sales_order(
    order_id: str,
    name: str,
    *,
    customer: str = "",
    lines: list[tuple[str, str, int]] | None = None,
    location: str = "EAST",
) -> orders_pb2.SalesOrder:
    """An accepted canonical order: lines are (line_id, sku, quantity) at 10.00 USD each."""
    order = orders_pb2.SalesOrder(
        order_id=order_id,
        channel="online-store",
        channel_order=common_pb2.ExternalRef(
            system=common_pb2.SOURCE_SYSTEM_SHOPIFY, id=f"gid://shopify/Order/{order_id}", name=name
        ),
        customer=orders_pb2.CustomerRef(erp_customer_number=customer),
        shipping_address=common_pb2.Address(
            name="Ada Buyer",
            lines=["1 Main St"],
            city="Albany",
            province_code="NY",
            postal_code="12207",
            country_code="US",
        ),
        status=orders_pb2.ORDER_STATUS_ACCEPTED,
    )
    for line_id, sku, quantity in lines or [("L1", "SKU-1001", 2), ("L2", "SKU-1002", 1)]:
        order.lines.add(
            line_id=line_id,
            sku=sku,
            quantity=quantity,
            unit_price=common_pb2.Money(minor_units=1000, currency="USD"),
            fulfillment_location_id=location,
            status=orders_pb2.LINE_STATUS_RESERVED,
        )
    order.totals.grand_total.CopyFrom(common_pb2.Money(minor_units=3000, currency="USD"))
    return order


def accepted(order: orders_pb2.SalesOrder) -> order_events.OrderAccepted:
    """The OrderAccepted event of an order."""
    return order_events.OrderAccepted(meta=common_pb2.EventMeta(), order=order)


def shipment_confirmed(
    shipment_id: str,
    order_id: str,
    lines: list[tuple[str, str, int]],
    *,
    partial: bool,
    location: str = "EAST",
) -> shipment_events.ShipmentConfirmed:
    """A ShipmentConfirmed with one package holding `lines` (line_id, sku, quantity)."""
    notice = shipments_pb2.ShipmentNotice(
        shipment_id=shipment_id,
        order_id=order_id,
        release_id=f"{order_id}-R1",
        location_id=location,
        warehouse_shipment=common_pb2.ExternalRef(
            system=common_pb2.SOURCE_SYSTEM_TPL, id=f"wh-{shipment_id}"
        ),
        partial=partial,
        status=shipments_pb2.SHIPMENT_STATUS_CONFIRMED,
    )
    notice.shipped_at.GetCurrentTime()
    package = notice.packages.add(
        package_id=f"P-{shipment_id}", tracking_number=f"1Z{shipment_id}", carrier="UPS"
    )
    for line_id, sku, quantity in lines:
        package.lines.add(line_id=line_id, sku=sku, quantity=quantity)
    return shipment_events.ShipmentConfirmed(meta=common_pb2.EventMeta(), shipment=notice)


WaitFor = Callable[..., Any]
