"""Starts the real orders service stack (database, actors, event bus, gRPC on port 0) for tests,
with the InventoryService stand-in, and publishes the facts other services would publish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import nats
from google.protobuf.message import Message

from libs.bus.envelope import MSG_ID, new_event_id, publish_headers, stamp_meta
from libs.bus.streams import subject_for
from retail.common.v1 import common_pb2
from retail.orders.v1 import orders_pb2, orders_service_pb2, orders_service_pb2_grpc
from services.orders.app import Running, running
from services.orders.config import OrdersSettings
from tests.contract.orders.inventory_standin import InventoryStandIn, serve_standin

pb = orders_service_pb2


@dataclass
class Stack:
    """A running orders service, its client stub, the inventory stand-in and a publisher."""

    app: Running
    stub: orders_service_pb2_grpc.OrdersServiceStub
    inventory: InventoryStandIn
    nc: nats.NATS

    async def publish(
        self,
        event: Message,
        *,
        source: int = common_pb2.SOURCE_SYSTEM_ERP,
        event_id: str | None = None,
        msg_id: str | None = None,
    ) -> str:
        """Publish a fact as its owning adapter would (meta stamped, Nats-Msg-Id = event id).

        `event_id` publishes a copy of an event already published (an outbox republish) and
        `msg_id` gives that copy another Nats-Msg-Id, so JetStream's duplicate window keeps it."""
        event_id = event_id or new_event_id()
        event.meta.source_system = source
        stamp_meta(event, event_id=event_id, correlation_id=event_id, key="test", producer="test-adapter")
        headers = publish_headers(event.DESCRIPTOR.full_name, event_id, event_id, None)
        if msg_id is not None:
            headers[MSG_ID] = msg_id
        await self.nc.jetstream().publish(subject_for(event), event.SerializeToString(), headers=headers)
        return event_id

    async def order(self, order_id: str) -> orders_pb2.SalesOrder:
        """The order as GetOrder returns it."""
        return (await self.stub.GetOrder(pb.GetOrderRequest(order_id=order_id), timeout=10)).order

    async def wait_status(self, order_id: str, status: int, timeout: float = 20.0) -> orders_pb2.SalesOrder:
        """Wait until the order reaches `status`; fail with the last status seen after `timeout`."""
        return await self.wait_for(
            order_id, lambda o: o.status == status, timeout, f"status {orders_pb2.OrderStatus.Name(status)}"
        )

    async def wait_for(
        self,
        order_id: str,
        condition: Callable[[orders_pb2.SalesOrder], bool],
        timeout: float = 20.0,
        what: str = "condition",
    ) -> orders_pb2.SalesOrder:
        """Wait until `condition(order)` holds."""
        last = None
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                last = await self.order(order_id)
                if condition(last):
                    return last
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            await asyncio.sleep(0.05)
        status = orders_pb2.OrderStatus.Name(last.status) if last else "absent"
        raise AssertionError(f"order {order_id} never reached {what}; last status {status}")


@asynccontextmanager
async def orders_stack(
    database_url: str, nats_url: str, stock: dict[tuple[str, str], int], **overrides: object
) -> AsyncIterator[Stack]:
    """The orders service on port 0 against a real database and nats-server, with the stand-in."""
    standin = InventoryStandIn(stock)
    server, port = await serve_standin(standin)
    settings = OrdersSettings(
        grpc_port=0,
        metrics_port=0,
        database_url=database_url,
        nats_url=nats_url,
        inventory_addr=f"127.0.0.1:{port}",
        reserve_retry_s=2.0,
        backorder_retry_s=30.0,
        inbound_sweep_s=0.5,
        reminder_poll_s=0.2,
        **overrides,
    )
    try:
        async with running(settings, with_metrics=False) as app:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.server.port}")
            nc = await nats.connect(nats_url)
            try:
                yield Stack(app, orders_service_pb2_grpc.OrdersServiceStub(channel), standin, nc)
            finally:
                await nc.drain()
                await channel.close()
    finally:
        await server.stop(0)


def money(units: int, currency: str = "USD") -> common_pb2.Money:
    """Money in minor units."""
    return common_pb2.Money(minor_units=units, currency=currency)


def channel_order(
    number: int,
    *,
    updated_at: datetime | None = None,
    lines: list[tuple[str, str, int]] | None = None,
    channel: str = "online-store",
) -> orders_pb2.SalesOrder:
    """A canonical order as the shopify-adapter maps it (Shopify order `number`)."""
    order = orders_pb2.SalesOrder(
        channel=channel,
        channel_order=common_pb2.ExternalRef(
            system=common_pb2.SOURCE_SYSTEM_SHOPIFY, id=f"gid://shopify/Order/{number}", name=f"#{number}"
        ),
        customer=orders_pb2.CustomerRef(erp_customer_number="WEB"),
        lines=[
            orders_pb2.OrderLine(line_id=lid, sku=sku, quantity=qty, unit_price=money(1500), title=sku)
            for lid, sku, qty in (lines or [("L1", "SKU-1001", 2), ("L2", "SKU-1002", 1)])
        ],
        shipping_address=common_pb2.Address(
            name="A Customer", lines=["1 Main St"], city="Springfield", country_code="US", postal_code="12345"
        ),
        shipping_method="STANDARD",
        payment_status=orders_pb2.PAYMENT_STATUS_PAID,
    )
    order.placed_at.FromDatetime(datetime(2026, 1, 1, 10, tzinfo=UTC))
    order.channel_updated_at.FromDatetime(updated_at or datetime(2026, 1, 1, 10, tzinfo=UTC))
    return order
