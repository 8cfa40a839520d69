"""Wiring of the ops service, in order: metrics, database, orders channel, worklists, event bus
(with the worklist consumers), gRPC server.

Torn down in reverse on SIGTERM or SIGINT: gRPC goes NOT_SERVING and drains, the consumers finish
their deliveries, NATS drains, the orders channel and the database close.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from libs import bus
from libs.lifecycle import shutdown_requested
from libs.rpc import RpcServer, channel
from libs.store import Database, migrated
from libs.telemetry import start_metrics_server
from retail.ops.v1 import ops_service_pb2, ops_service_pb2_grpc
from retail.orders.v1 import orders_service_pb2_grpc
from services.ops import store
from services.ops.api.servicer import OpsServiceServicer
from services.ops.config import OpsSettings
from services.ops.events.subscriptions import ExceptionEvents
from services.ops.worklist import Worklists

SERVICE = ops_service_pb2.DESCRIPTOR.services_by_name["OpsService"].full_name


@dataclass
class Running:
    """The parts of a running ops service (for tests and tools)."""

    db: Database
    worklists: Worklists
    bus: bus.EventBus
    server: RpcServer


@asynccontextmanager
async def running(settings: OpsSettings, *, with_metrics: bool = True) -> AsyncIterator[Running]:
    """Start every part of the ops service; stop them in reverse on exit."""
    async with AsyncExitStack() as stack:
        if with_metrics:
            metrics = start_metrics_server(settings.metrics_port, settings.metrics_host)
            stack.callback(metrics.close)
        db = await stack.enter_async_context(
            migrated(settings.database_url, [bus.MIGRATIONS, store.MIGRATIONS])
        )
        orders_channel = channel(settings.orders_addr, settings=settings, audience="orders")
        stack.push_async_callback(orders_channel.close)
        worklists = Worklists(db)
        events = ExceptionEvents(worklists)
        event_bus = await stack.enter_async_context(
            bus.EventBus.for_service(db, settings, owns=("OPS",), subscriptions=events.subscriptions())
        )
        servicer = OpsServiceServicer(
            db, worklists, event_bus.outbox, orders_service_pb2_grpc.OrdersServiceStub(orders_channel)
        )
        server = await stack.enter_async_context(
            RpcServer(
                settings,
                servicers=[(ops_service_pb2_grpc.add_OpsServiceServicer_to_server, servicer)],
                service_names=[SERVICE],
            )
        )
        yield Running(db, worklists, event_bus, server)


async def serve(settings: OpsSettings) -> None:
    """Run the ops service until SIGTERM or SIGINT."""
    shutdown = shutdown_requested()
    async with running(settings):
        await shutdown.wait()
