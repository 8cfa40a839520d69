"""Wiring of the shopify-adapter service, in order: metrics, database, event bus, gRPC server.

Torn down in reverse on SIGTERM or SIGINT: gRPC goes NOT_SERVING and drains, NATS drains,
the database closes.
"""

from contextlib import AsyncExitStack

from libs import bus
from libs.lifecycle import shutdown_requested
from libs.rpc import RpcServer
from libs.store import migrated
from libs.telemetry import start_metrics_server
from retail.integration.v1 import integration_service_pb2, integration_service_pb2_grpc
from services.shopify_adapter.api.servicer import IntegrationServiceServicer
from services.shopify_adapter.config import ShopifyAdapterSettings

SERVICE = integration_service_pb2.DESCRIPTOR.services_by_name["IntegrationService"].full_name


async def serve(settings: ShopifyAdapterSettings) -> None:
    """Run the shopify-adapter service until SIGTERM or SIGINT."""
    shutdown = shutdown_requested()
    async with AsyncExitStack() as stack:
        metrics = start_metrics_server(settings.metrics_port, settings.metrics_host)
        stack.callback(metrics.close)
        db = await stack.enter_async_context(migrated(settings.database_url, [bus.MIGRATIONS]))
        await stack.enter_async_context(bus.EventBus.for_service(db, settings, owns=("INTEGRATION",)))
        servicer = IntegrationServiceServicer()
        await stack.enter_async_context(
            RpcServer(
                settings,
                servicers=[(integration_service_pb2_grpc.add_IntegrationServiceServicer_to_server, servicer)],
                service_names=[SERVICE],
            )
        )
        await shutdown.wait()
