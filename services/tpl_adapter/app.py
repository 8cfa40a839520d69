"""Wiring of the tpl-adapter service, in order: metrics, database, 3PL clients, peers (shipments,
inventory), event bus with the warehouse subscription, webhook inbox and HTTP listener, webhook
registration, EDI poller (EDI mode), inventory snapshot puller, receiving-order puller, gRPC
server.

Torn down in reverse on SIGTERM or SIGINT: gRPC goes NOT_SERVING and drains, background loops
stop, the listener stops, NATS drains, the database closes. `running` is the wiring itself (tests
enter it with port 0); `serve` runs it until a signal.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from libs import bus
from libs.http import HttpListener
from libs.http.budget import RequestBudget
from libs.lifecycle import Loop, shutdown_requested
from libs.rpc import RpcServer, channel
from libs.store import Database, migrated
from libs.telemetry import start_metrics_server
from retail.integration.v1 import integration_service_pb2, integration_service_pb2_grpc
from retail.inventory.v1 import inventory_service_pb2_grpc
from retail.shipments.v1 import shipments_service_pb2_grpc
from services.tpl_adapter import store
from services.tpl_adapter.api.servicer import IntegrationServiceServicer
from services.tpl_adapter.clients.mailbox import EdiMailbox
from services.tpl_adapter.clients.tpl_api import TplApi, TplError
from services.tpl_adapter.config import TplAdapterSettings
from services.tpl_adapter.edi.poller import EdiPoller
from services.tpl_adapter.events.warehouse import WarehouseEvents
from services.tpl_adapter.receipts import ReceiptReporter, ReceivingPuller
from services.tpl_adapter.snapshots import InventoryPuller
from services.tpl_adapter.webhooks.inbox import WebhookInbox
from services.tpl_adapter.webhooks.listener import webhook_app
from services.tpl_adapter.webhooks.reporter import ShipmentReporter
from services.tpl_adapter.webhooks.subscriptions import WebhookSecrets, register

SERVICE = integration_service_pb2.DESCRIPTOR.services_by_name["IntegrationService"].full_name

log = logging.getLogger(__name__)


@dataclass
class Running:
    """The parts of a running tpl-adapter."""

    db: Database
    events: bus.EventBus
    api: TplApi
    inbox: WebhookInbox
    puller: InventoryPuller
    receiving: ReceivingPuller
    poller: EdiPoller | None
    http_port: int | None
    grpc_port: int


@asynccontextmanager
async def running(settings: TplAdapterSettings) -> AsyncIterator[Running]:
    """Start every part of the adapter in order; stop them in reverse on exit."""
    async with AsyncExitStack() as stack:
        metrics = start_metrics_server(settings.metrics_port, settings.metrics_host)
        stack.callback(metrics.close)
        db = await stack.enter_async_context(
            migrated(settings.database_url, [bus.MIGRATIONS, store.MIGRATIONS])
        )
        token = settings.tpl_api_token.get_secret_value() if settings.tpl_api_token else ""
        api = TplApi(
            settings.tpl_base_url,
            token,
            channel_id=settings.tpl_channel_id,
            version=settings.tpl_api_version,
            timeout_s=settings.tpl_timeout_s,
            budget=RequestBudget(
                settings.tpl_rate_limit, settings.tpl_rate_window_s, bulk_share=settings.tpl_bulk_share
            ),
            max_budget_wait_s=settings.tpl_max_budget_wait_s,
        )
        stack.push_async_callback(api.aclose)
        mailbox = None
        if settings.tpl_mode == "edi":
            mailbox = EdiMailbox(
                Path(settings.tpl_edi_dir) if settings.tpl_edi_dir else settings.data_dir / "edi"
            )
        shipments_channel = await stack.enter_async_context(
            channel(settings.shipments_addr, settings=settings, audience="shipments")
        )
        inventory_channel = await stack.enter_async_context(
            channel(settings.inventory_addr, settings=settings, audience="inventory")
        )
        shipments = shipments_service_pb2_grpc.ShipmentsServiceStub(shipments_channel)
        inventory = inventory_service_pb2_grpc.InventoryServiceStub(inventory_channel)
        warehouse = WarehouseEvents(
            api,
            mode=settings.tpl_mode,
            mailbox=mailbox,
            sender_id=settings.tpl_edi_sender_id,
            receiver_id=settings.tpl_edi_receiver_id,
        )
        events = await stack.enter_async_context(
            bus.EventBus.for_service(
                db, settings, owns=("INTEGRATION",), subscriptions=[warehouse.subscription()]
            )
        )
        reporter = ShipmentReporter(db, shipments)
        receipts = ReceiptReporter(inventory)
        inbox = WebhookInbox(db, reporter, retry_interval_s=settings.tpl_retry_interval_s, receipts=receipts)
        inbox.start()
        stack.push_async_callback(inbox.stop)
        secrets = WebhookSecrets(db)
        await secrets.load()
        http_port = None
        if settings.http_port is not None:
            listener = HttpListener(webhook_app(inbox, secrets), settings.http_host, settings.http_port)
            http_port = (await stack.enter_async_context(listener)).port

        async def register_webhooks() -> int | None:
            if not settings.tpl_webhook_callback_url:
                return None
            return await register(db, api, settings.tpl_webhook_callback_url, secrets)

        try:
            await register_webhooks()
        except TplError as error:
            # The adapter still serves; RunReconciliation(SUBSCRIPTIONS) registers them later.
            log.warning("3PL webhook registration failed at start", extra={"error": str(error)})
        poller = None
        if mailbox is not None:
            poller = EdiPoller(
                db,
                events.outbox,
                mailbox,
                reporter,
                inventory,
                sender_id=settings.tpl_edi_sender_id,
                receiver_id=settings.tpl_edi_receiver_id,
                interval_s=settings.tpl_edi_poll_s,
                receipts=receipts,
            )
            poller.start()
            stack.push_async_callback(poller.stop)
        puller = InventoryPuller(api, inventory, interval_s=settings.tpl_inventory_interval_s)
        puller.start()
        stack.push_async_callback(puller.stop)
        receiving = ReceivingPuller(api, receipts)
        if settings.tpl_receiving_interval_s > 0:
            await stack.enter_async_context(
                Loop("tpl-receiving-pull", receiving.step, settings.tpl_receiving_interval_s)
            )
        servicer = IntegrationServiceServicer(db, api, puller, register_webhooks)
        server = await stack.enter_async_context(
            RpcServer(
                settings,
                servicers=[(integration_service_pb2_grpc.add_IntegrationServiceServicer_to_server, servicer)],
                service_names=[SERVICE],
            )
        )
        yield Running(
            db=db,
            events=events,
            api=api,
            inbox=inbox,
            puller=puller,
            receiving=receiving,
            poller=poller,
            http_port=http_port,
            grpc_port=server.port,
        )


async def serve(settings: TplAdapterSettings) -> None:
    """Run the tpl-adapter service until SIGTERM or SIGINT."""
    shutdown = shutdown_requested()
    async with running(settings):
        await shutdown.wait()
