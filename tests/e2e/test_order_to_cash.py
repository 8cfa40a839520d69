"""Order-to-cash through real processes: the Shopify stand-in's checkout to the ERP invoice.

The whole mesh runs as processes (NATS, every service, the three stand-ins), exporting traces to a
real OTLP collector. What is asserted is what a user would check in each system: the sales order
in Business Central, the order at the 3PL, the fulfillment with tracking in Shopify, the order's
status and timeline in the mesh, and one trace across the hops.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from libs.bus.embedded import free_port
from retail.common.v1 import common_pb2
from retail.orders.v1 import orders_pb2, orders_service_pb2, orders_service_pb2_grpc
from tests.support.otlp import OtlpCollector
from tools.supervisor import Mesh
from tools.topology import Topology

pytestmark = pytest.mark.e2e

Status = orders_pb2.OrderStatus
SourceSystem = common_pb2.SourceSystem
#: Services that consume this flow's events and so write transaction-log rows for it.
HOP_SERVICES = ("orders", "inventory", "erp-adapter", "tpl-adapter", "shopify-adapter")


class Running:
    """The running mesh with clients for the stand-ins and the orders service."""

    def __init__(self, mesh: Mesh, collector: OtlpCollector, http: httpx.AsyncClient) -> None:
        self.mesh = mesh
        self.collector = collector
        self.http = http
        topology = mesh.topology
        self.shopify = self._sandbox("shopify")
        self.bc = self._sandbox("business-central")
        self.tpl = self._sandbox("tpl")
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{topology.service('orders').grpc_port}")
        self.orders = orders_service_pb2_grpc.OrdersServiceStub(self.channel)

    def _sandbox(self, name: str) -> str:
        spec = next(s for s in self.mesh.topology.sandbox if s.name == name)
        return f"http://127.0.0.1:{spec.port}"

    async def order(self, order_id: str) -> orders_pb2.SalesOrder | None:
        try:
            reply = await self.orders.GetOrder(
                orders_service_pb2.GetOrderRequest(order_id=order_id, include_timeline=True), timeout=5
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply.order

    async def counts(self, base: str) -> dict[str, Any]:
        return (await self.http.get(f"{base}/_sandbox/counts")).json()

    async def timeline(self, order_id: str) -> list[common_pb2.TimelineEntry]:
        reply = await self.orders.GetOrder(
            orders_service_pb2.GetOrderRequest(order_id=order_id, include_timeline=True), timeout=5
        )
        return list(reply.timeline)

    def hop_rows(self, service: str, correlation_id: str) -> list[tuple[str, str, str, float]]:
        """The transaction log (V2) rows of one flow in one service's database."""
        path = self.mesh.topology.data_dir / f"{service}.db"
        with sqlite3.connect(path) as db:
            rows = db.execute(
                "SELECT hop, outcome, latency_ms FROM hop_log WHERE correlation_id = ?", (correlation_id,)
            ).fetchall()
        return [(service, hop, outcome, latency) for hop, outcome, latency in rows]


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


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """The mesh with its sandbox on free ports, exporting traces to a collector."""
    collector = OtlpCollector().start()
    topology = Topology.with_free_ports(
        tmp_path / "mesh",
        f"nats://127.0.0.1:{free_port()}",
        extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint},
    )
    mesh = Mesh(topology)
    try:
        await mesh.start(timeout=120)
        async with httpx.AsyncClient(timeout=10) as http:
            running = Running(mesh, collector, http)
            try:
                yield running
            finally:
                await running.channel.close()
    finally:
        await mesh.stop()
        collector.stop()


async def _stock_ready(running: Running) -> bool:
    """True once the 3PL's stock has reached the inventory service (the tpl-adapter's snapshot)."""
    from retail.inventory.v1 import inventory_service_pb2, inventory_service_pb2_grpc

    port = running.mesh.topology.service("inventory").grpc_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = inventory_service_pb2_grpc.InventoryServiceStub(channel)
        reply = await stub.ListPositions(inventory_service_pb2.ListPositionsRequest(), timeout=5)
    return len(reply.positions) > 0


async def _subscribed(running: Running) -> bool:
    """True once the shopify-adapter has registered its orders/create webhook at the stand-in."""
    state = (await running.http.get(f"{running.shopify}/_sandbox/state")).json()
    return any(
        "ORDERS_CREATE" in str(s) or "orders/create" in str(s) for s in state.get("webhook_subscriptions", [])
    )


async def test_one_order_flows_from_checkout_to_invoice_as_one_trace(running: Running):
    await until(lambda: _stock_ready(running), "3PL stock in the inventory service")
    await until(lambda: _subscribed(running), "the adapter's webhook subscription at Shopify")

    placed = await running.http.post(
        f"{running.shopify}/_sandbox/checkout",
        json={"lines": [{"sku": "SKU-1001", "quantity": 1}, {"sku": "SKU-1002", "quantity": 2}]},
    )
    assert placed.status_code == 201, placed.text
    shop_order = placed.json()["order"]
    order_id = f"shp-{shop_order['id']}"

    async def released() -> bool:
        order = await running.order(order_id)
        return order is not None and order.status == Status.ORDER_STATUS_RELEASED

    await until(released, "the order released to the warehouse")

    async def invoiced() -> orders_pb2.SalesOrder | None:
        # The 3PL's warehouse moves on when told; keep it moving until the ERP has invoiced.
        await running.http.post(f"{running.tpl}/_sandbox/advance", json={"steps": 5, "force": True})
        order = await running.order(order_id)
        return order if order is not None and order.status == Status.ORDER_STATUS_INVOICED else None

    order = await until(invoiced, "the order invoiced")

    bc_counts = await running.counts(running.bc)
    tpl_counts = await running.counts(running.tpl)
    shop_counts = await running.counts(running.shopify)
    assert list(bc_counts["created"].get("salesOrders", {}).values()) == [1]
    assert list(tpl_counts["created"].get("orders", {}).values()) == [1]
    assert sum(shop_counts["created"].get("fulfillments", {}).values()) == 1
    assert (
        bc_counts["duplicates"] == {} and tpl_counts["duplicates"] == {} and shop_counts["duplicates"] == {}
    )
    systems = {c.to_status: c.source_system for c in order.status_history}
    assert order.status_history[0].to_status == Status.ORDER_STATUS_RECEIVED
    assert systems[Status.ORDER_STATUS_ERP_CREATED] == SourceSystem.SOURCE_SYSTEM_ERP
    assert systems[Status.ORDER_STATUS_SHIPPED] == SourceSystem.SOURCE_SYSTEM_TPL
    assert systems[Status.ORDER_STATUS_INVOICED] == SourceSystem.SOURCE_SYSTEM_ERP

    timeline = await running.timeline(order_id)
    correlations = {entry.correlation_id for entry in timeline if entry.correlation_id}
    assert len(correlations) == 1, correlations
    (correlation_id,) = correlations
    hops = [row for service in HOP_SERVICES for row in running.hop_rows(service, correlation_id)]
    assert {service for service, *_ in hops} == set(HOP_SERVICES)
    assert all(outcome in ("ok", "duplicate") and latency >= 0 for _, _, outcome, latency in hops), hops

    def one_trace() -> bool:
        wanted = {"shopify-adapter", "orders", "inventory", "erp-adapter", "tpl-adapter", "shipments"}
        return any(wanted <= services for services in running.collector.services_by_trace().values())

    async def traced() -> bool:
        return one_trace()

    await until(traced, "one trace spanning every hop", timeout=30)
