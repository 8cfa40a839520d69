"""Wiring of the orders service, in order: metrics, database, event bus, gRPC server.

Torn down in reverse on SIGTERM or SIGINT: gRPC goes NOT_SERVING and drains, NATS drains,
the database closes.
"""

from contextlib import AsyncExitStack

from libs import bus
from libs.lifecycle import shutdown_requested
from libs.rpc import RpcServer
from libs.store import migrated
from libs.telemetry import start_metrics_server
from retail.orders.v1 import orders_service_pb2, orders_service_pb2_grpc
from services.orders.api.servicer import OrdersServiceServicer
from services.orders.config import OrdersSettings

SERVICE = orders_service_pb2.DESCRIPTOR.services_by_name["OrdersService"].full_name


async def serve(settings: OrdersSettings) -> None:
    """Run the orders service until SIGTERM or SIGINT."""
    shutdown = shutdown_requested()
    async with AsyncExitStack() as stack:
        metrics = start_metrics_server(settings.metrics_port, settings.metrics_host)
        stack.callback(metrics.close)
        db = await stack.enter_async_context(migrated(settings.database_url, [bus.MIGRATIONS]))
        await stack.enter_async_context(bus.EventBus.for_service(db, settings, owns=("ORDERS",)))
        servicer = OrdersServiceServicer()
        await stack.enter_async_context(
            RpcServer(
                settings,
                servicers=[(orders_service_pb2_grpc.add_OrdersServiceServicer_to_server, servicer)],
                service_names=[SERVICE],
            )
        )
        await shutdown.wait()
