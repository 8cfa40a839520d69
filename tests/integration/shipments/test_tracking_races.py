"""Two tracking updates of one shipment at once on PostgreSQL (two packages delivered in the same
moment, reported to two replicas): the shipment row is locked before it is read, so neither update
is lost. (Within one replica the updates share the group commit's writer and run one after the
other; the row lock is what holds between replicas.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import grpc
import pytest
from sqlalchemy import text

from libs.bus import MIGRATIONS, Outbox
from libs.rpc import RpcServer
from libs.store import Database, upgrade
from retail.shipments.v1 import shipments_pb2, shipments_service_pb2, shipments_service_pb2_grpc
from services.shipments import store
from services.shipments.api.servicer import ShipmentsServiceServicer
from services.shipments.app import SERVICE
from services.shipments.config import ShipmentsSettings
from tests.contract.shipments.test_shipments_service import SHIPPED_AT, notice, tracking

pytestmark = pytest.mark.postgres


@asynccontextmanager
async def _replica(postgres_url: str) -> AsyncIterator[shipments_service_pb2_grpc.ShipmentsServiceStub]:
    db = Database(postgres_url)
    server = RpcServer(
        ShipmentsSettings(grpc_port=0, metrics_port=0),
        servicers=[
            (
                shipments_service_pb2_grpc.add_ShipmentsServiceServicer_to_server,
                ShipmentsServiceServicer(db, Outbox(producer="shipments")),
            )
        ],
        service_names=[SERVICE],
    )
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield shipments_service_pb2_grpc.ShipmentsServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(0)
        await db.dispose()


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[list[shipments_service_pb2_grpc.ShipmentsServiceStub]]:
    """Two shipments service replicas on one database."""
    db = Database(postgres_url)
    await upgrade(db, [MIGRATIONS, store.MIGRATIONS])
    await db.dispose()
    async with _replica(postgres_url) as one, _replica(postgres_url) as two:
        yield [one, two]


async def _waiting_for_locks(db: Database, count: int, deadline_s: float = 30.0) -> None:
    query = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    deadline = time.monotonic() + deadline_s
    while True:
        async with db.read() as session:
            if (await session.execute(query)).scalar() >= count:
                return
        assert time.monotonic() < deadline, f"fewer than {count} updates waited for the shipment row"
        await asyncio.sleep(0.02)


async def test_two_packages_delivered_at_once_both_count(
    replicas: list[shipments_service_pb2_grpc.ShipmentsServiceStub], postgres_url: str
) -> None:
    stub = replicas[0]
    recorded = (
        await stub.RecordShipment(
            shipments_service_pb2.RecordShipmentRequest(request_id="200001", shipment=notice(packages=2))
        )
    ).shipment
    first_pkg, second_pkg = (p.package_id for p in recorded.packages)
    delivered = shipments_pb2.SHIPMENT_STATUS_DELIVERED
    blocker = Database(postgres_url)
    try:
        # The row is held elsewhere while both updates start, so both are under way at once.
        async with blocker.transaction() as held:
            lock = text("SELECT 1 FROM shipment WHERE shipment_id = :id FOR UPDATE")
            await held.execute(lock, {"id": recorded.shipment_id})
            updates = [
                asyncio.ensure_future(
                    replicas[n].RecordTrackingUpdate(
                        tracking(recorded.shipment_id, f"t{n}", delivered, package_id=package, at=at),
                        timeout=60,
                    )
                )
                for n, (package, at) in enumerate(
                    [
                        (first_pkg, SHIPPED_AT + timedelta(hours=1)),
                        (second_pkg, SHIPPED_AT + timedelta(hours=2)),
                    ]
                )
            ]
            await _waiting_for_locks(blocker, 2)
        await asyncio.gather(*updates)
    finally:
        await blocker.dispose()

    shipment = (
        await stub.GetShipment(shipments_service_pb2.GetShipmentRequest(shipment_id=recorded.shipment_id))
    ).shipment
    assert shipment.status == delivered
