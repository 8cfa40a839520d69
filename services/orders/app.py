"""Wiring of the orders service, in order: metrics, database, inventory channel, actors, event bus,
inbound hand-off, gRPC server.

Torn down in reverse on SIGTERM or SIGINT: gRPC goes NOT_SERVING and drains, the sweeper and the
consumers stop, the actor runtime finishes its turns, NATS drains, the database closes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from libs import actors, bus
from libs.actors import ActorRuntime
from libs.lifecycle import shutdown_requested
from libs.rpc import RpcServer, channel
from libs.store import Database, migrated
from libs.telemetry import start_metrics_server
from retail.orders.v1 import orders_service_pb2, orders_service_pb2_grpc
from services.orders import store
from services.orders.actors.order import KIND, Drain, OrderActor
from services.orders.api.inventory import InventoryClient
from services.orders.api.servicer import OrdersServiceServicer
from services.orders.config import OrdersSettings
from services.orders.events.subscriptions import Inbound, decode_fact

SERVICE = orders_service_pb2.DESCRIPTOR.services_by_name["OrdersService"].full_name


@dataclass
class Running:
    """The parts of a running orders service (for tests and tools)."""

    db: Database
    runtime: ActorRuntime
    bus: bus.EventBus
    inbound: Inbound
    server: RpcServer


@asynccontextmanager
async def running(settings: OrdersSettings, *, with_metrics: bool = True) -> AsyncIterator[Running]:
    """Start every part of the orders service; stop them in reverse on exit."""
    async with AsyncExitStack() as stack:
        if with_metrics:
            metrics = start_metrics_server(settings.metrics_port, settings.metrics_host)
            stack.callback(metrics.close)
        db = await stack.enter_async_context(
            migrated(settings.database_url, [bus.MIGRATIONS, actors.MIGRATIONS, store.MIGRATIONS])
        )
        inventory_channel = channel(settings.inventory_addr, settings=settings, audience="inventory")
        stack.push_async_callback(inventory_channel.close)
        inventory = InventoryClient(inventory_channel)
        outbox = bus.Outbox(producer=settings.service_name)
        actor = OrderActor(
            outbox,
            inventory.reserve,
            decode_fact,
            backorder_channels=settings.backorder_channel_set,
            reserve_retry_s=settings.reserve_retry_s,
            backorder_retry_s=settings.backorder_retry_s,
        )
        stack.push_async_callback(actor.close)
        runtime = await stack.enter_async_context(
            ActorRuntime(db, [actor], reminder_poll_s=settings.reminder_poll_s)
        )
        actor.bind(lambda key, message: runtime.ref(KIND, key).ask(message, timeout=30))

        async def tell(order_id: str) -> None:
            await runtime.ref(KIND, order_id).tell(Drain())

        async def ask(order_id: str, message: Any) -> Any:
            # A turn that outlasts this fails the delivery; its redelivery is then a duplicate.
            return await runtime.ref(KIND, order_id).ask(message, timeout=30)

        inbound = Inbound(db, tell, ask, sweep_s=settings.inbound_sweep_s)
        event_bus = await stack.enter_async_context(
            bus.EventBus.for_service(db, settings, owns=("ORDERS",), subscriptions=inbound.subscriptions())
        )
        # The actor stages events with the bus's outbox, so the relay is woken by their commits.
        actor.outbox = event_bus.outbox
        await stack.enter_async_context(inbound)
        servicer = OrdersServiceServicer(
            db, runtime, inventory, backorder_channels=settings.backorder_channel_set
        )
        server = await stack.enter_async_context(
            RpcServer(
                settings,
                servicers=[(orders_service_pb2_grpc.add_OrdersServiceServicer_to_server, servicer)],
                service_names=[SERVICE],
            )
        )
        yield Running(db, runtime, event_bus, inbound, server)


async def serve(settings: OrdersSettings) -> None:
    """Run the orders service until SIGTERM or SIGINT."""
    shutdown = shutdown_requested()
    async with running(settings):
        await shutdown.wait()
