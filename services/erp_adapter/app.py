"""Wiring of the erp-adapter service, in order: metrics, database, Business Central client and its
request budget, event bus with the subscriptions, the purchase-order poll (incoming stock to the
inventory service), gRPC server.

Torn down in reverse on SIGTERM or SIGINT: gRPC goes NOT_SERVING and drains, NATS drains, the
HTTP client closes, the database closes.
"""

from contextlib import AsyncExitStack

from libs import bus
from libs.config import read_secret
from libs.http.budget import RequestBudget
from libs.lifecycle import Loop, shutdown_requested
from libs.rpc import RpcServer, channel
from libs.store import migrated
from libs.telemetry import start_metrics_server
from retail.integration.v1 import integration_service_pb2, integration_service_pb2_grpc
from retail.inventory.v1 import inventory_service_pb2_grpc
from services.erp_adapter import store
from services.erp_adapter.api.servicer import IntegrationServiceServicer
from services.erp_adapter.clients import BusinessCentralClient
from services.erp_adapter.config import ErpAdapterSettings
from services.erp_adapter.events import ErpHandlers, subscriptions
from services.erp_adapter.inbound import PurchaseOrderPoller

SERVICE = integration_service_pb2.DESCRIPTOR.services_by_name["IntegrationService"].full_name


def business_central(settings: ErpAdapterSettings, **http: object) -> BusinessCentralClient:
    """The ERP client with its request budget, from the settings (`http`: `on_response`, for tests)."""
    budget = RequestBudget(
        settings.bc_rate_limit, settings.bc_rate_window_s, bulk_share=settings.bc_bulk_share
    )
    return BusinessCentralClient(
        base_url=settings.bc_base_url,
        tenant_id=settings.bc_tenant_id,
        client_id=settings.bc_client_id,
        client_secret=lambda: read_secret(settings, "bc_client_secret"),
        budget=budget,
        company_id=settings.bc_company_id,
        token_url=settings.bc_token_url,
        scope=settings.bc_scope,
        timeout_s=settings.bc_timeout_s,
        max_budget_wait_s=settings.bc_max_budget_wait_s,
        **http,  # type: ignore[arg-type]
    )


async def serve(settings: ErpAdapterSettings, **http: object) -> None:
    """Run the erp-adapter service until SIGTERM or SIGINT."""
    shutdown = shutdown_requested()
    async with AsyncExitStack() as stack:
        metrics = start_metrics_server(settings.metrics_port, settings.metrics_host)
        stack.callback(metrics.close)
        db = await stack.enter_async_context(
            migrated(settings.database_url, [bus.MIGRATIONS, store.MIGRATIONS])
        )
        client = await stack.enter_async_context(business_central(settings, **http))
        handlers = ErpHandlers(
            client,
            default_customer=settings.bc_default_customer,
            customer_map=settings.bc_customer_map,
            transient_retry_s=settings.bc_transient_retry_s,
        )
        await stack.enter_async_context(
            bus.EventBus.for_service(
                db, settings, owns=("INTEGRATION",), subscriptions=subscriptions(handlers)
            )
        )
        inventory_channel = await stack.enter_async_context(
            channel(settings.inventory_addr, settings=settings, audience="inventory")
        )
        purchase_orders = PurchaseOrderPoller(
            db, client, inventory_service_pb2_grpc.InventoryServiceStub(inventory_channel)
        )
        if settings.bc_inbound_poll_s > 0:
            await stack.enter_async_context(
                Loop("erp-purchase-order-poll", purchase_orders.step, settings.bc_inbound_poll_s)
            )
        servicer = IntegrationServiceServicer(client)
        await stack.enter_async_context(
            RpcServer(
                settings,
                servicers=[(integration_service_pb2_grpc.add_IntegrationServiceServicer_to_server, servicer)],
                service_names=[SERVICE],
            )
        )
        await shutdown.wait()
