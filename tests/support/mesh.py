"""The whole mesh as processes for end-to-end tests, with clients for its services and stand-ins."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx

from libs.bus.embedded import free_port
from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_pb2, inventory_service_pb2, inventory_service_pb2_grpc
from retail.orders.v1 import orders_pb2, orders_service_pb2, orders_service_pb2_grpc
from tests.support.otlp import OtlpCollector
from tools.supervisor import Mesh
from tools.topology import SANDBOX_CREDENTIALS, Topology

Status = orders_pb2.OrderStatus
TWO_LINES = [{"sku": "SKU-1001", "quantity": 1}, {"sku": "SKU-1002", "quantity": 2}]


class Running:
    """The running mesh with clients for the stand-ins and the mesh's gRPC services."""

    def __init__(self, mesh: Mesh, collector: OtlpCollector, http: httpx.AsyncClient) -> None:
        self.mesh = mesh
        self.collector = collector
        self.http = http
        self.shopify = self._sandbox("shopify")
        self.bc = self._sandbox("business-central")
        self.tpl = self._sandbox("tpl")
        topology = mesh.topology
        self.webhook_url = (
            f"http://127.0.0.1:{topology.service('shopify-adapter').http_port}/webhooks/shopify"
        )
        self._orders_channel = grpc.aio.insecure_channel(f"127.0.0.1:{topology.service('orders').grpc_port}")
        self._inventory_channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{topology.service('inventory').grpc_port}"
        )
        self.orders = orders_service_pb2_grpc.OrdersServiceStub(self._orders_channel)
        self.inventory = inventory_service_pb2_grpc.InventoryServiceStub(self._inventory_channel)

    def _sandbox(self, name: str) -> str:
        spec = next(s for s in self.mesh.topology.sandbox if s.name == name)
        return f"http://127.0.0.1:{spec.port}"

    async def close(self) -> None:
        await self._orders_channel.close()
        await self._inventory_channel.close()

    async def checkout(self, lines: list[dict[str, Any]] = TWO_LINES) -> dict[str, Any]:
        """Place an order as a customer would; returns Shopify's order JSON."""
        placed = await self.http.post(f"{self.shopify}/_sandbox/checkout", json={"lines": lines})
        assert placed.status_code == 201, placed.text
        return placed.json()["order"]

    async def order(self, order_id: str) -> orders_pb2.SalesOrder | None:
        try:
            reply = await self.orders.GetOrder(
                orders_service_pb2.GetOrderRequest(order_id=order_id), timeout=5
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                return None
            raise
        return reply.order

    async def timeline(self, order_id: str) -> list[common_pb2.TimelineEntry]:
        reply = await self.orders.GetOrder(
            orders_service_pb2.GetOrderRequest(order_id=order_id, include_timeline=True), timeout=5
        )
        return list(reply.timeline)

    async def reaches(self, order_id: str, status: int, *, ship: bool = False, timeout: float = 90) -> Any:
        """Wait until the order has `status`; with `ship`, keep the 3PL's warehouse moving meanwhile."""

        async def check() -> orders_pb2.SalesOrder | None:
            if ship:
                await self.http.post(f"{self.tpl}/_sandbox/advance", json={"steps": 5, "force": True})
            order = await self.order(order_id)
            return order if order is not None and order.status == status else None

        return await until(check, f"{order_id} {Status.Name(status)}", timeout=timeout)

    async def created(self, base: str, kind: str, needle: str) -> dict[str, int]:
        """The stand-in's create counts of `kind` whose external key contains `needle`."""
        counts = (await self.http.get(f"{base}/_sandbox/counts")).json()
        return {key: n for key, n in counts["created"].get(kind, {}).items() if needle in key}

    def hop_rows(self, service: str, correlation_id: str) -> list[tuple[str, str, str, float]]:
        """The transaction log (V2) rows of one flow in one service's database."""
        path = self.mesh.topology.data_dir / f"{service}.db"
        with sqlite3.connect(path) as db:
            rows = db.execute(
                "SELECT hop, outcome, latency_ms FROM hop_log WHERE correlation_id = ?", (correlation_id,)
            ).fetchall()
        return [(service, hop, outcome, latency) for hop, outcome, latency in rows]

    def adapter_rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.mesh.topology.data_dir / "shopify-adapter.db") as db:
            return db.execute(sql, args).fetchall()


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 90.0) -> Any:
    """Poll `check` until it returns something truthy, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


def signed(body: bytes, topic: str, event_id: str, secret: str | None = None) -> dict[str, str]:
    """The headers Shopify sends with a webhook, signed with the app secret (or `secret`)."""
    key = (secret or SANDBOX_CREDENTIALS["SHOPIFY_WEBHOOK_SECRETS"]).encode()
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode(),
        "X-Shopify-Shop-Domain": SANDBOX_CREDENTIALS["SHOPIFY_SHOP_DOMAINS"],
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": f"manual-{event_id}",
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Triggered-At": "2026-11-27T12:00:00Z",
    }


async def _stock_known(running: Running) -> bool:
    try:
        reply = await running.inventory.ListPositions(inventory_service_pb2.ListPositionsRequest(), timeout=5)
    except grpc.aio.AioRpcError:
        return False
    return len(reply.positions) > 0


async def _subscribed(running: Running) -> bool:
    state = (await running.http.get(f"{running.shopify}/_sandbox/state")).json()
    callback = running.webhook_url
    subscriptions = state["webhook_subscriptions"]
    return any(s["topic"] == "orders/create" and s["uri"] == callback for s in subscriptions)


@asynccontextmanager
async def running_mesh(
    data_dir: Path,
    database_urls: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> AsyncIterator[Running]:
    """The mesh with its sandbox on free ports, ready for orders: stock known, webhooks subscribed.

    `extra_env` is added to every service's environment (shorter poll intervals for a test).
    """
    collector = OtlpCollector().start()
    topology = Topology.with_free_ports(
        data_dir,
        f"nats://127.0.0.1:{free_port()}",
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "INVENTORY_VERIFY_S": "2",
            **dict(extra_env or {}),
        },
        database_urls=dict(database_urls or {}),
    )
    mesh = Mesh(topology)
    try:
        await mesh.start(timeout=120)
        async with httpx.AsyncClient(timeout=10) as http:
            running = Running(mesh, collector, http)
            try:
                await until(lambda: _stock_known(running), "3PL stock in the inventory service")
                await until(lambda: _subscribed(running), "the adapter's webhook subscription at Shopify")
                yield running
            finally:
                await running.close()
    finally:
        await mesh.stop()
        collector.stop()


async def no_active_reservation(running: Running, order_id: str) -> bool:
    reply = await running.inventory.ListReservations(
        inventory_service_pb2.ListReservationsRequest(order_id=order_id, include_closed=True), timeout=5
    )
    active = inventory_pb2.ReservationState.Value("RESERVATION_STATE_ACTIVE")
    return bool(reply.reservations) and all(r.state != active for r in reply.reservations)


async def bc_token(running: Running) -> str:
    reply = await running.http.post(
        f"{running.bc}/sandbox/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SANDBOX_CREDENTIALS["BC_CLIENT_ID"],
            "client_secret": SANDBOX_CREDENTIALS["BC_CLIENT_SECRET"],
            "scope": "https://api.businesscentral.dynamics.com/.default",
        },
    )
    return reply.json()["access_token"]


async def bc_customer(running: Running, token: str, number: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    companies = (await running.http.get(f"{running.bc}/api/v2.0/companies", headers=auth)).json()["value"]
    base = f"{running.bc}/api/v2.0/companies({companies[0]['id']})"
    found = await running.http.get(
        f"{base}/customers", params={"$filter": f"number eq '{number}'"}, headers=auth
    )
    customer = found.json()["value"][0]
    customer["_url"] = f"{base}/customers({customer['id']})"
    return customer


async def bc_patch_customer(
    running: Running, token: str, customer: dict[str, Any], change: dict[str, Any]
) -> None:
    reply = await running.http.patch(
        customer["_url"],
        json=change,
        headers={"Authorization": f"Bearer {token}", "If-Match": customer["@odata.etag"]},
    )
    assert reply.status_code == 200, reply.text
