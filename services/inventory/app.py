"""Wiring of the inventory service, in order: policy, metrics, database, event bus, ledger, gRPC.

Torn down in reverse on SIGTERM or SIGINT: gRPC goes NOT_SERVING and drains, NATS drains,
the database closes. An invalid allocation policy stops the start before anything opens.
"""

from contextlib import AsyncExitStack

from libs import bus
from libs.lifecycle import shutdown_requested
from libs.rpc import RpcServer
from libs.store import migrated
from libs.telemetry import start_metrics_server
from retail.inventory.v1 import inventory_service_pb2, inventory_service_pb2_grpc
from services.inventory.api.servicer import InventoryServiceServicer
from services.inventory.config import InventorySettings
from services.inventory.domain.policy import load_policy
from services.inventory.events.subscriptions import StockEvents
from services.inventory.ledger import Ledger
from services.inventory.store import MIGRATIONS

SERVICE = inventory_service_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name


async def serve(settings: InventorySettings) -> None:
    """Run the inventory service until SIGTERM or SIGINT."""
    shutdown = shutdown_requested()
    policy = load_policy(settings.inventory_policy_file)
    async with AsyncExitStack() as stack:
        metrics = start_metrics_server(settings.metrics_port, settings.metrics_host)
        stack.callback(metrics.close)
        db = await stack.enter_async_context(migrated(settings.database_url, [bus.MIGRATIONS, MIGRATIONS]))
        events = StockEvents()
        event_bus = bus.EventBus.for_service(
            db, settings, owns=("INVENTORY",), subscriptions=events.subscriptions()
        )
        # the ledger writes to the bus's outbox (its commits wake the relay); the consumers,
        # created with the bus, reach the ledger through `events`
        events.ledger = ledger = Ledger(db, event_bus.outbox, policy)
        await stack.enter_async_context(event_bus)
        servicer = InventoryServiceServicer(ledger)
        await stack.enter_async_context(
            RpcServer(
                settings,
                servicers=[(inventory_service_pb2_grpc.add_InventoryServiceServicer_to_server, servicer)],
                service_names=[SERVICE],
            )
        )
        await shutdown.wait()
