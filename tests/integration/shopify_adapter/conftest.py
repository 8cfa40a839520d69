"""Fixtures for the shopify-adapter integration tests: the real Shopify stand-in, a real nats-server,
a real database, the adapter running in-process, and a recording stand-in of the orders service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest

from libs.bus.embedded import free_port
from retail.orders.v1 import orders_pb2, orders_service_pb2, orders_service_pb2_grpc
from sandbox.common.server import serve_in_thread
from sandbox.shopify.app import create_app
from sandbox.shopify.config import ShopifySettings
from services.shopify_adapter.app import Adapter, running
from services.shopify_adapter.config import ShopifyAdapterSettings

TOKEN = "shpat_adapter_test"
OLD_SECRET = "old_webhook_secret"
NEW_SECRET = "new_webhook_secret"
SHOP = "retail-mesh-demo.myshopify.com"


class RecordingOrdersService(orders_service_pb2_grpc.OrdersServiceServicer):
    """A stand-in for the orders service, for these tests only: records IngestOrder and CancelOrder,
    answers a repeated request_id with its first result, and knows the orders it ingested."""

    def __init__(self) -> None:
        self.ingests: list[orders_service_pb2.IngestOrderRequest] = []
        self.cancels: list[orders_service_pb2.CancelOrderRequest] = []
        self.first_replies: dict[str, orders_service_pb2.IngestOrderResponse] = {}
        self.orders: dict[str, orders_pb2.SalesOrder] = {}
        self.refuse_skus: set[str] = set()
        #: While set to an unset event, every IngestOrder waits for it (to see calls overlap).
        self.gate: asyncio.Event | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    async def IngestOrder(self, request, context):
        self.ingests.append(request)
        if self.gate is not None:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.wait_for(self.gate.wait(), timeout=30)
            finally:
                self.in_flight -= 1
        if request.request_id in self.first_replies:
            return self.first_replies[request.request_id]
        if any(line.sku in self.refuse_skus for line in request.order.lines):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "order.lines[0].sku: unknown SKU")
        gid = request.order.channel_order.id
        order_id = next((oid for oid, o in self.orders.items() if o.channel_order.id == gid), None)
        outcome = (
            orders_service_pb2.INGEST_OUTCOME_UPDATED
            if order_id
            else orders_service_pb2.INGEST_OUTCOME_CREATED
        )
        order_id = order_id or f"ord-{len(self.orders) + 1}"
        stored = orders_pb2.SalesOrder()
        stored.CopyFrom(request.order)
        stored.order_id = order_id
        self.orders[order_id] = stored
        reply = orders_service_pb2.IngestOrderResponse(
            order_id=order_id, outcome=outcome, status=orders_pb2.ORDER_STATUS_RECEIVED, version=1
        )
        self.first_replies[request.request_id] = reply
        return reply

    async def CancelOrder(self, request, context):
        self.cancels.append(request)
        return orders_service_pb2.CancelOrderResponse(order=self.orders.get(request.order_id))

    async def GetOrder(self, request, context):
        order = self.orders.get(request.order_id)
        if order is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "order not found")
        return orders_service_pb2.GetOrderResponse(order=order)

    def ingested_request_ids(self) -> set[str]:
        return {r.request_id for r in self.ingests}


@pytest.fixture
async def orders_service() -> AsyncIterator[tuple[RecordingOrdersService, str]]:
    """The recording orders stand-in on a free port: (servicer, address)."""
    servicer = RecordingOrdersService()
    server = grpc.aio.server()
    orders_service_pb2_grpc.add_OrdersServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(0)


@dataclass
class Shop:
    """The running Shopify stand-in and a client for its control routes and Admin API."""

    base_url: str
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, timeout=10.0, trust_env=False)

    def checkout(self, *lines: tuple[str, int]) -> dict[str, Any]:
        response = self.http.post(
            "/_sandbox/checkout", json={"lines": [{"sku": s, "quantity": q} for s, q in lines]}
        )
        assert response.status_code == 201, response.text
        return response.json()["order"]

    def gql(self, query: str, variables: dict | None = None) -> dict[str, Any]:
        response = self.http.post(
            "/admin/api/2026-04/graphql.json",
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": TOKEN},
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def webhook_faults(self, **faults: Any) -> None:
        response = self.http.put("/_sandbox/webhook-faults", json=faults)
        assert response.status_code in (200, 204), response.text

    def deliveries(self, topic: str | None = None) -> list[dict[str, Any]]:
        return self.http.get("/_sandbox/deliveries", params={"topic": topic} if topic else {}).json()[
            "deliveries"
        ]

    def counts(self) -> dict[str, Any]:
        return self.http.get("/_sandbox/counts").json()

    def state(self) -> dict[str, Any]:
        return self.http.get("/_sandbox/state").json()


@pytest.fixture
def shop() -> Iterator[Shop]:
    """The Shopify stand-in, signing webhooks with the OLD secret (the adapter is mid-rotation)."""
    settings = ShopifySettings(
        access_token=TOKEN, webhook_secret=OLD_SECRET, webhook_time_scale=1e-5, webhook_timeout_s=4.0
    )
    with serve_in_thread(create_app(settings)) as base_url:
        stand_in = Shop(base_url)
        yield stand_in
        stand_in.http.close()


@pytest.fixture
def adapter_settings(shop: Shop, nats_server, sqlite_url: str, orders_service) -> ShopifyAdapterSettings:
    """Settings of an adapter talking to the stand-in, the nats-server and the orders stand-in."""
    port = free_port()
    return ShopifyAdapterSettings(
        grpc_port=0,
        metrics_port=0,
        http_port=port,
        nats_url=nats_server.url,
        database_url=sqlite_url,
        orders_addr=orders_service[1],
        shopify_base_url=shop.base_url,
        shopify_access_token=TOKEN,
        shopify_webhook_secrets=f"{NEW_SECRET},{OLD_SECRET}",
        shopify_shop_domains=SHOP,
        shopify_webhook_callback_url=f"http://127.0.0.1:{port}/webhooks/shopify",
        webhook_worker_poll_s=0.2,
        reconcile_interval_s=0,
        subscription_check_interval_s=0,
        webhook_max_body_bytes=64 * 1024,
    )


@pytest.fixture
async def adapter(adapter_settings: ShopifyAdapterSettings) -> AsyncIterator[Adapter]:
    """The shopify-adapter running in this process, with its subscriptions registered."""
    async with running(adapter_settings) as parts:
        await eventually(lambda: _subscribed(parts), what="webhook subscriptions registered")
        yield parts


async def _subscribed(parts: Adapter) -> bool:
    subs = await parts.admin.subscriptions()
    return {"ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED"} <= {s["topic"] for s in subs}


async def eventually(condition: Callable[[], Any], timeout_s: float = 15.0, what: str = "condition") -> Any:
    """Poll `condition` (sync or async) until truthy, or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
