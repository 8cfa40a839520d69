"""The tpl-adapter wired for real: a real nats-server, the real 3PL stand-in over HTTP, the real
shipments service, and a minimal in-process inventory stand-in (ApplySnapshot recorder) until the
inventory service serves ApplySnapshot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message

from libs import bus
from libs.rpc import RpcServer
from libs.store import Database, upgrade
from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_service_pb2, inventory_service_pb2_grpc
from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2
from retail.shipments.v1 import events_pb2 as shipment_events
from sandbox.common.server import serve_in_thread
from sandbox.tpl.app import create_app
from sandbox.tpl.config import API_VERSION, DEFAULT_TOKEN, TplSettings
from services.shipments.app import running as shipments_running
from services.shipments.config import ShipmentsSettings
from services.tpl_adapter.app import Running
from services.tpl_adapter.app import running as tpl_running
from services.tpl_adapter.config import TplAdapterSettings
from tools.topology import free_port

INVENTORY_SERVICE = inventory_service_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name


async def wait_until(condition: Callable[[], Awaitable[Any]], *, within: float = 20.0, what: str = "") -> Any:
    """Poll `condition` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


class InventoryStandIn(inventory_service_pb2_grpc.InventoryServiceServicer):
    """Test-only stand-in for the inventory service: records ApplySnapshot requests."""

    def __init__(self) -> None:
        self.snapshots: list[inventory_service_pb2.ApplySnapshotRequest] = []

    async def ApplySnapshot(self, request, context):
        self.snapshots.append(request)
        return inventory_service_pb2.ApplySnapshotResponse(applied=True, positions_changed=len(request.lines))


@dataclass
class Observer:
    """The rest of the mesh as the test sees it: publishes order events, records what comes back."""

    events: bus.EventBus
    db: Database
    seen: list[Message] = field(default_factory=list)

    async def publish(self, event: Message, key: str) -> None:
        async with self.db.transaction() as session:
            await self.events.outbox.add(session, event, key=key)

    def of(self, cls: type[Message]) -> list[Any]:
        return [e for e in self.seen if isinstance(e, cls)]


@dataclass
class Mesh:
    """Everything one test runs against."""

    tpl_url: str
    tpl_http: httpx.AsyncClient
    adapter: Running
    observer: Observer
    inventory: InventoryStandIn
    edi_dir: Path

    async def counts(self) -> dict[str, Any]:
        return (await self.tpl_http.get("/_sandbox/counts")).json()

    async def tpl_orders(self, reference_id: str) -> list[dict[str, Any]]:
        reply = await self.tpl_http.get(
            f"/{API_VERSION}/order",
            params={"ReferenceIds": reference_id},
            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        )
        return reply.json()

    async def ship(self, tpl_order_id: int | str, *, split: bool = False) -> dict[str, Any]:
        return (
            await self.tpl_http.post(f"/_sandbox/orders/{tpl_order_id}/ship", json={"split": split})
        ).json()


def release(
    order_id: str = "ord-1",
    location: str = "EAST",
    lines: tuple[tuple[str, str, int], ...] = (("L1", "SKU-1001", 2),),
) -> order_events.OrderReleasedToWarehouse:
    """An OrderReleasedToWarehouse as the orders service publishes it."""
    event = order_events.OrderReleasedToWarehouse(
        order_id=order_id,
        release_id=f"{order_id}-{location}",
        location_id=location,
        lines=[orders_pb2.LineQuantity(line_id=lid, sku=sku, quantity=q) for lid, sku, q in lines],
        shipping_address=common_pb2.Address(
            name="Ada Lovelace",
            lines=["1 Main St"],
            city="Springfield",
            province_code="IL",
            postal_code="62701",
            country_code="US",
        ),
        shipping_method="GROUND",
        channel_order=common_pb2.ExternalRef(
            system=common_pb2.SOURCE_SYSTEM_SHOPIFY, id="gid://shopify/Order/1", name="#1001"
        ),
    )
    event.meta.source_system = common_pb2.SOURCE_SYSTEM_MESH
    return event


@pytest.fixture
def tpl_sandbox(tmp_path: Path) -> Iterator[str]:
    """The 3PL stand-in (simulation off: tests ship on demand) with an EDI folder."""
    settings = TplSettings(simulate=False, edi_dir=tmp_path / "edi", webhook_backoff_s=0.2, time_scale=1.0)
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture(params=["api"])
def tpl_mode(request: pytest.FixtureRequest) -> str:
    """How the adapter talks to the 3PL."""
    return request.param


@pytest.fixture
async def mesh(nats_server, tpl_sandbox: str, tmp_path: Path, tpl_mode: str) -> AsyncIterator[Mesh]:
    """Shipments, an inventory stand-in, the tpl-adapter and an observer on one nats-server."""
    async with AsyncExitStack() as stack:
        common = {"nats_url": nats_server.url, "metrics_port": 0, "grpc_port": 0}
        shipments = await stack.enter_async_context(
            shipments_running(
                ShipmentsSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'shipments.db'}", **common)
            )
        )
        inventory = InventoryStandIn()
        inventory_server = RpcServer(
            ShipmentsSettings(grpc_port=0, metrics_port=0),
            servicers=[(inventory_service_pb2_grpc.add_InventoryServiceServicer_to_server, inventory)],
            service_names=[INVENTORY_SERVICE],
        )
        inventory_port = await inventory_server.start()
        stack.push_async_callback(inventory_server.stop, 0)
        http_port = free_port()
        settings = TplAdapterSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'tpl.db'}",
            http_port=http_port,
            shipments_addr=f"127.0.0.1:{shipments.grpc_port}",
            inventory_addr=f"127.0.0.1:{inventory_port}",
            tpl_base_url=tpl_sandbox,
            tpl_api_token=DEFAULT_TOKEN,
            tpl_mode=tpl_mode,
            tpl_edi_dir=str(tmp_path / "edi"),
            tpl_edi_poll_s=0.2,
            tpl_webhook_callback_url=f"http://127.0.0.1:{http_port}/webhooks/tpl",
            tpl_inventory_interval_s=0,
            tpl_retry_interval_s=0.2,
            **common,
        )
        adapter = await stack.enter_async_context(tpl_running(settings))
        observer_db = Database(f"sqlite+aiosqlite:///{tmp_path / 'observer.db'}")
        await upgrade(observer_db, [bus.MIGRATIONS])
        stack.push_async_callback(observer_db.dispose)
        seen: list[Message] = []

        async def record(event: Message, ctx: bus.MessageContext) -> None:
            seen.append(event)

        observer_bus = await stack.enter_async_context(
            bus.EventBus(
                observer_db,
                nats_server.url,
                name="orders",
                subscriptions=[
                    bus.Subscription(
                        "observer",
                        [
                            order_events.WarehouseReleaseAccepted,
                            order_events.WarehouseReleaseRejected,
                            order_events.WarehouseCancellationAccepted,
                            order_events.WarehouseCancellationRejected,
                            order_events.WarehouseAddressUpdated,
                            order_events.WarehouseAddressUpdateRejected,
                        ],
                        record,
                    ),
                    bus.Subscription(
                        "observer-shipments",
                        [shipment_events.ShipmentConfirmed, shipment_events.ShipmentDelivered],
                        record,
                    ),
                ],
                poll_interval=0.05,
            )
        )
        tpl_http = await stack.enter_async_context(httpx.AsyncClient(base_url=tpl_sandbox))
        yield Mesh(
            tpl_url=tpl_sandbox,
            tpl_http=tpl_http,
            adapter=adapter,
            observer=Observer(observer_bus, observer_db, seen),
            inventory=inventory,
            edi_dir=tmp_path / "edi",
        )
