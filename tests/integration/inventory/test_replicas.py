"""Two inventory processes on one PostgreSQL database and a real nats-server: the flash-sale race
(zero oversell across replicas) and the order and shipment events applied once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text

from libs import bus
from libs.bus.embedded import EmbeddedNats, free_port
from libs.bus.streams import context_streams
from libs.store import Database, migrated
from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from retail.inventory.v1 import inventory_service_pb2_grpc
from retail.orders.v1 import events_pb2 as orders
from retail.orders.v1 import orders_pb2
from retail.shipments.v1 import events_pb2 as shipments
from retail.shipments.v1 import shipments_pb2

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def replicas(postgres_url: str, nats_server: EmbeddedNats, tmp_path: Path) -> Iterator[list[str]]:
    """Two `python -m services.inventory` processes sharing one database; their gRPC addresses."""
    processes, addresses = [], []
    for index in range(2):
        port = free_port()
        env = {
            **os.environ,
            "GRPC_PORT": str(port),
            "METRICS_PORT": str(free_port()),
            "DATABASE_URL": postgres_url,
            "NATS_URL": nats_server.url,
            "DATA_DIR": str(tmp_path / f"replica-{index}"),
        }
        log = (tmp_path / f"replica-{index}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "services.inventory"], cwd=ROOT, env=env, stdout=log, stderr=log
            )
        )
        addresses.append(f"127.0.0.1:{port}")
    try:
        for address, process in zip(addresses, processes, strict=True):
            _wait_serving(address, process)
        yield addresses
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_serving(address: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"inventory replica exited with {process.returncode}"
        with grpc.insecure_channel(address) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
        time.sleep(0.2)
    raise TimeoutError(f"inventory at {address} never became SERVING")


@pytest.fixture
async def stubs(replicas: list[str]) -> AsyncIterator[list[inventory_service_pb2_grpc.InventoryServiceStub]]:
    """A stub per replica."""
    channels = [grpc.aio.insecure_channel(address) for address in replicas]
    try:
        yield [inventory_service_pb2_grpc.InventoryServiceStub(channel) for channel in channels]
    finally:
        for channel in channels:
            await channel.close()


async def _seed(stub, sku: str, on_hand: int, location: str = "EAST") -> None:
    await stub.ApplySnapshot(
        pb.ApplySnapshotRequest(
            request_id=f"seed-{sku}-{location}",
            location_id=location,
            source_system=common_pb2.SOURCE_SYSTEM_TPL,
            as_of=Timestamp(seconds=int(time.time())),
            lines=[pb.SnapshotLine(sku=sku, on_hand=on_hand)],
        ),
        timeout=30,
    )


async def test_two_hundred_concurrent_orders_for_fifty_units_on_two_replicas_reserve_exactly_fifty(stubs):
    await _seed(stubs[0], "SKU-1001", 50)

    async def order(i: int):
        request = pb.ReserveRequest(
            request_id=f"flash-{i}",
            order_id=f"flash-{i}",
            channel="online-store",
            lines=[pb.ReserveLine(line_id="1", sku="SKU-1001", quantity=1)],
        )
        return await stubs[i % 2].Reserve(request, timeout=120)

    replies = await asyncio.gather(*(order(i) for i in range(200)))
    position = (
        await stubs[1].GetPosition(pb.GetPositionRequest(sku="SKU-1001", location_id="EAST"))
    ).position

    reserved = [r for r in replies if r.outcome == pb.RESERVE_OUTCOME_RESERVED]
    refused = [r for r in replies if r.outcome == pb.RESERVE_OUTCOME_REJECTED]
    assert (len(reserved), len(refused)) == (50, 150)
    assert all(r.shortages[0].reason.code == "OUT_OF_STOCK" for r in refused)
    assert (position.reserved, position.available_to_sell, position.on_hand) == (50, 0, 50)


async def _publish(nats_url: str, tmp_path: Path, events: list[tuple[object, str]]) -> None:
    async with migrated(f"sqlite+aiosqlite:///{tmp_path / 'producer.db'}", [bus.MIGRATIONS]) as db:
        async with bus.EventBus(
            db, nats_url, name="orders", streams=context_streams(1), provision_streams=True
        ) as producer:
            async with db.transaction() as session:
                for event, key in events:
                    await producer.outbox.add(session, event, key=key)

            async def sent() -> bool:
                return not _unsent(await producer.relay.counts())

            assert await _eventually(sent)


async def _eventually(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_release_commit_and_shipment_events_are_applied_once_by_the_replicas(
    stubs, nats_server, tmp_path, postgres_url
):
    await _seed(stubs[0], "SKU-1002", 10)
    for order_id in ("o-1", "o-2"):
        await stubs[0].Reserve(
            pb.ReserveRequest(
                request_id=f"r-{order_id}",
                order_id=order_id,
                channel="online-store",
                lines=[pb.ReserveLine(line_id="1", sku="SKU-1002", quantity=3)],
            )
        )
    line = orders_pb2.LineQuantity(line_id="1", sku="SKU-1002", quantity=3)
    released = orders.OrderReleasedToWarehouse(
        order_id="o-1",
        release_id="o-1:EAST:1",
        location_id="EAST",
        lines=[line],
        shipping_address=common_pb2.Address(country_code="US", lines=["1 Main St"], city="Albany", name="A"),
    )
    shipped_at = Timestamp()
    shipped_at.FromDatetime(datetime.now(UTC))
    shipment = shipments.ShipmentConfirmed(
        shipment=shipments_pb2.ShipmentNotice(
            shipment_id="sh-1",
            order_id="o-1",
            release_id="o-1:EAST:1",
            location_id="EAST",
            warehouse_shipment=common_pb2.ExternalRef(system=common_pb2.SOURCE_SYSTEM_TPL, id="tpl-1"),
            shipped_at=shipped_at,
            packages=[
                shipments_pb2.Package(
                    package_id="p1",
                    lines=[shipments_pb2.ShipmentLine(line_id="1", sku="SKU-1002", quantity=3)],
                )
            ],
        )
    )
    cancelled = orders.OrderCancelled(order_id="o-2", reason=orders_pb2.CANCELLATION_REASON_CUSTOMER_REQUEST)

    await _publish(nats_server.url, tmp_path, [(released, "o-1"), (cancelled, "o-2")])

    async def committed_and_released():
        p = (await stubs[0].GetPosition(pb.GetPositionRequest(sku="SKU-1002", location_id="EAST"))).position
        return p if (p.committed, p.reserved) == (3, 0) else None

    assert await _eventually(committed_and_released)
    republished = shipments.ShipmentConfirmed()
    republished.CopyFrom(shipment)  # the same shipment again under a new event id
    await _publish(nats_server.url, tmp_path, [(shipment, "o-1"), (republished, "o-1")])

    async def shipped():
        p = (await stubs[1].GetPosition(pb.GetPositionRequest(sku="SKU-1002", location_id="EAST"))).position
        return p if p.committed == 0 else None

    async def all_four_handled():
        db = Database(postgres_url)
        try:
            async with db.read() as session:
                query = text("SELECT count(*) FROM inbox WHERE consumer = 'inventory'")
                return (await session.execute(query)).scalar() == 4
        finally:
            await db.dispose()

    assert await _eventually(all_four_handled)
    position = await _eventually(shipped)
    assert position is not None
    assert (position.on_hand, position.committed, position.reserved, position.available_to_sell) == (
        7,
        0,
        0,
        7,
    )
    listed = await stubs[1].ListReservations(pb.ListReservationsRequest(order_id="o-2", include_closed=True))
    assert [r.state for r in listed.reservations] == [3]  # RELEASED


def _unsent(counts: dict[str, int]) -> int:
    return counts.get("pending", 0) + counts.get("in_flight", 0)
