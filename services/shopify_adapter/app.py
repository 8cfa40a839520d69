"""Wiring of the shopify-adapter service, in order: metrics, database, Admin API client, orders
and inventory channels, the inventory pusher and the webhook ingress (built before the consumers
that call them), event bus (ShipmentConfirmed and AvailabilityChanged consumers, and
OrderReleasedToWarehouse with MOVE_FULFILLMENT_ORDERS), worker loops (fulfillments, inventory
pusher and its verification, deliveries), webhook subscriptions and reconciliation loops, the
webhook HTTP listener, and last the gRPC server.

Torn down in reverse on SIGTERM or SIGINT: gRPC goes NOT_SERVING and drains, the HTTP listener
stops accepting and finishes in-flight webhooks, the loops stop, NATS drains, the database closes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from libs import bus
from libs.config import read_secret
from libs.http import HttpListener
from libs.lifecycle import Loop, shutdown_requested
from libs.rpc import RpcServer, channel
from libs.store import Database, migrated
from libs.telemetry import start_metrics_server
from retail.integration.v1 import integration_service_pb2, integration_service_pb2_grpc
from retail.inventory.v1 import inventory_service_pb2_grpc
from services.shopify_adapter.api.servicer import IntegrationServiceServicer
from services.shopify_adapter.api.webhook import WebhookIngress
from services.shopify_adapter.clients.admin import ShopifyAdmin
from services.shopify_adapter.clients.orders import OrdersClient
from services.shopify_adapter.config import ShopifyAdapterSettings
from services.shopify_adapter.events.availability import availability_subscription
from services.shopify_adapter.events.routing import FulfillmentOrderRouter
from services.shopify_adapter.events.shipments import shipment_subscription
from services.shopify_adapter.store import MIGRATIONS
from services.shopify_adapter.sync.deliveries import DeliveryWorker
from services.shopify_adapter.sync.fulfillments import FulfillmentWorker
from services.shopify_adapter.sync.ingest import OrderIngestor
from services.shopify_adapter.sync.inventory import InventoryEchoFilter, InventoryPusher
from services.shopify_adapter.sync.reconciler import OrderReconciler
from services.shopify_adapter.sync.subscriptions import SubscriptionKeeper

SERVICE = integration_service_pb2.DESCRIPTOR.services_by_name["IntegrationService"].full_name

log = logging.getLogger(__name__)


@dataclass
class Adapter:
    """The running parts, for tests and tools that drive the adapter in-process."""

    db: Database
    bus: bus.EventBus
    admin: ShopifyAdmin
    ingress: WebhookIngress
    http: HttpListener
    deliveries: DeliveryWorker
    fulfillments: FulfillmentWorker
    reconciler: OrderReconciler
    subscriptions: SubscriptionKeeper
    servicer: IntegrationServiceServicer
    rpc: RpcServer
    inventory: InventoryPusher | None = None


@asynccontextmanager
async def running(settings: ShopifyAdapterSettings) -> AsyncIterator[Adapter]:
    """Start every part of the adapter in order; stop them in reverse on exit."""
    async with AsyncExitStack() as stack:
        metrics = start_metrics_server(settings.metrics_port, settings.metrics_host)
        stack.callback(metrics.close)
        db = await stack.enter_async_context(migrated(settings.database_url, [bus.MIGRATIONS, MIGRATIONS]))
        admin = ShopifyAdmin(
            settings.shopify_base_url,
            settings.shopify_api_version,
            lambda: read_secret(settings, "shopify_access_token"),
            timeout_s=settings.shopify_http_timeout_s,
        )
        stack.push_async_callback(admin.close)
        orders_channel = channel(settings.orders_addr, settings=settings, audience="orders")
        stack.push_async_callback(orders_channel.close)
        orders = OrdersClient(orders_channel, timeout_s=settings.grpc_client_timeout_s)
        inventory_channel = channel(settings.inventory_addr, settings=settings, audience="inventory")
        stack.push_async_callback(inventory_channel.close)
        ingestor = OrderIngestor(db, orders)

        fulfillment_loop_ref: list[Loop] = []
        inventory_loop_ref: list[Loop] = []

        def wake_inventory() -> None:
            if inventory_loop_ref:
                inventory_loop_ref[0].wake()

        inventory = InventoryPusher(
            db,
            admin,
            batch=settings.inventory_push_batch,
            keep_free=settings.inventory_push_keep_free,
            urgent_after_s=settings.inventory_push_urgent_after_s,
            retry_max_s=settings.webhook_retry_max_s,
            inventory=inventory_service_pb2_grpc.InventoryServiceStub(inventory_channel),
            channel=settings.inventory_channel,
            timeout_s=settings.grpc_client_timeout_s,
            lower_grace_s=settings.inventory_lower_grace_s,
        )
        delivery_loop_ref: list[Loop] = []
        ingress = WebhookIngress(
            db,
            secrets=settings.webhook_secrets,
            shop_domains=settings.shop_domains,
            max_body_bytes=settings.webhook_max_body_bytes,
            on_stored=lambda: delivery_loop_ref[0].wake() if delivery_loop_ref else None,
        )

        def moves_recorded() -> None:
            inventory.moves_recorded()
            wake_inventory()

        subscriptions = [
            shipment_subscription(lambda: fulfillment_loop_ref[0].wake() if fulfillment_loop_ref else None),
            availability_subscription(
                settings.inventory_channel,
                coalesce_s=settings.inventory_push_coalesce_s,
                on_recorded=wake_inventory,
            ),
        ]
        if settings.move_fulfillment_orders:
            router = FulfillmentOrderRouter(
                admin,
                on_recorded=moves_recorded,
                ingress_quiet=ingress.quiet,
                ingress_first_s=settings.webhook_worker_ingress_first_s,
            )
            subscriptions.append(router.subscription())
        event_bus = await stack.enter_async_context(
            bus.EventBus.for_service(db, settings, owns=("INTEGRATION",), subscriptions=subscriptions)
        )
        fulfillments = FulfillmentWorker(
            db, admin, orders, event_bus.outbox.add, retry_max_s=settings.webhook_retry_max_s
        )
        stack.push_async_callback(fulfillments.close)  # after the loop below has stopped
        fulfillment_loop = await stack.enter_async_context(
            Loop("shopify-fulfillments", fulfillments.step, settings.webhook_worker_poll_s)
        )
        fulfillment_loop_ref.append(fulfillment_loop)
        inventory_loop = await stack.enter_async_context(
            Loop("shopify-inventory", inventory.step, settings.inventory_push_poll_s)
        )
        inventory_loop_ref.append(inventory_loop)
        await stack.enter_async_context(
            Loop(
                "shopify-inventory-verify", inventory.verify, settings.inventory_verify_s, run_at_start=False
            ),
        )
        deliveries = DeliveryWorker(
            db,
            ingestor,
            orders,
            admin,
            concurrency=settings.webhook_worker_concurrency,
            retry_max_s=settings.webhook_retry_max_s,
            inventory_echo=InventoryEchoFilter(db),
            ingress_quiet=ingress.quiet,
            ingress_first_s=settings.webhook_worker_ingress_first_s,
        )
        stack.push_async_callback(deliveries.close)  # after the loop below has stopped
        delivery_loop = await stack.enter_async_context(
            Loop("shopify-deliveries", deliveries.step, settings.webhook_worker_poll_s)
        )
        delivery_loop_ref.append(delivery_loop)
        keeper = SubscriptionKeeper(admin, settings.shopify_webhook_callback_url)
        await stack.enter_async_context(
            Loop("shopify-subscriptions", keeper.step, settings.subscription_check_interval_s)
        )
        reconciler = OrderReconciler(
            db,
            admin,
            ingestor,
            outbox_add=event_bus.outbox.add,
            overlap_s=settings.reconcile_overlap_s,
            initial_lookback_minutes=settings.reconcile_initial_lookback_minutes,
        )
        if settings.reconcile_interval_s > 0:
            await stack.enter_async_context(
                Loop("shopify-reconcile", reconciler.step, settings.reconcile_interval_s, run_at_start=False)
            )
        http = await stack.enter_async_context(
            HttpListener(
                ingress.app, settings.http_host, settings.http_port or 0, grace_s=settings.shutdown_grace_s
            )
        )
        servicer = IntegrationServiceServicer(admin.state, db=db, reconciler=reconciler, subscriptions=keeper)
        rpc = await stack.enter_async_context(
            RpcServer(
                settings,
                servicers=[(integration_service_pb2_grpc.add_IntegrationServiceServicer_to_server, servicer)],
                service_names=[SERVICE],
            )
        )
        yield Adapter(
            db,
            event_bus,
            admin,
            ingress,
            http,
            deliveries,
            fulfillments,
            reconciler,
            keeper,
            servicer,
            rpc,
            inventory,
        )


async def serve(settings: ShopifyAdapterSettings) -> None:
    """Run the shopify-adapter service until SIGTERM or SIGINT."""
    shutdown = shutdown_requested()
    async with running(settings):
        await shutdown.wait()
