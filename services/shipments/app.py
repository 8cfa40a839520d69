"""Wiring of the shipments service, in order: metrics, database, event bus, gRPC server.

Torn down in reverse on SIGTERM or SIGINT: gRPC goes NOT_SERVING and drains, NATS drains,
the database closes. `running` is the wiring itself (tests enter it with port 0); `serve` runs
it until a signal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from libs import bus
from libs.lifecycle import shutdown_requested
from libs.rpc import RpcServer
from libs.store import Database, migrated
from libs.telemetry import start_metrics_server
from retail.shipments.v1 import shipments_service_pb2, shipments_service_pb2_grpc
from services.shipments import store
from services.shipments.api.servicer import ShipmentsServiceServicer
from services.shipments.config import ShipmentsSettings

SERVICE = shipments_service_pb2.DESCRIPTOR.services_by_name["ShipmentsService"].full_name


@dataclass
class Running:
    """The parts of a running shipments service."""

    db: Database
    events: bus.EventBus
    grpc_port: int


@asynccontextmanager
async def running(settings: ShipmentsSettings) -> AsyncIterator[Running]:
    """Start every part of the service in order; stop them in reverse on exit."""
    async with AsyncExitStack() as stack:
        metrics = start_metrics_server(settings.metrics_port, settings.metrics_host)
        stack.callback(metrics.close)
        db = await stack.enter_async_context(
            migrated(settings.database_url, [bus.MIGRATIONS, store.MIGRATIONS])
        )
        events = await stack.enter_async_context(bus.EventBus.for_service(db, settings, owns=("SHIPMENTS",)))
        servicer = ShipmentsServiceServicer(db, events.outbox)
        server = await stack.enter_async_context(
            RpcServer(
                settings,
                servicers=[(shipments_service_pb2_grpc.add_ShipmentsServiceServicer_to_server, servicer)],
                service_names=[SERVICE],
            )
        )
        yield Running(db=db, events=events, grpc_port=server.port)


async def serve(settings: ShipmentsSettings) -> None:
    """Run the shipments service until SIGTERM or SIGINT."""
    shutdown = shutdown_requested()
    async with running(settings):
        await shutdown.wait()
