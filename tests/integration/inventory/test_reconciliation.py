"""Drift between the 3PL's counts and the mesh's positions (MISSION I5, issue 5 "Drift"): the
inventory servicer over SQLite and PostgreSQL, its outbox relayed to a real nats-server, and
shipments consumed from JetStream, so a user sees InventoryDriftDetected on the INVENTORY stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import nats
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js.client import JetStreamContext
from sqlalchemy import select

from libs import bus
from libs.bus.embedded import EmbeddedNats
from libs.bus.streams import context_streams
from libs.bus.tables import OutboxRow
from libs.rpc import RpcServer
from libs.store import Database, migrated
from retail.common.v1 import common_pb2
from retail.inventory.v1 import events_pb2, inventory_pb2, inventory_service_pb2_grpc
from retail.inventory.v1 import inventory_service_pb2 as pb
from retail.shipments.v1 import events_pb2 as shipments
from retail.shipments.v1 import shipments_pb2
from services.inventory.api.servicer import InventoryServiceServicer
from services.inventory.app import SERVICE
from services.inventory.config import DEFAULT_POLICY, InventorySettings
from services.inventory.domain.policy import load_policy
from services.inventory.events.subscriptions import StockEvents
from services.inventory.ledger import Ledger
from services.inventory.store import MIGRATIONS

TPL = common_pb2.SOURCE_SYSTEM_TPL
DRIFT_SUBJECT = "retail.inventory.v1.InventoryDriftDetected"
T0 = 1_750_000_000  # 2025-06-15T15:06:40Z: counts and shipments carry the 3PL's own times


@dataclass
class Mesh:
    """The inventory stub, its ledger and database, the bus, and a JetStream reader."""

    stub: inventory_service_pb2_grpc.InventoryServiceStub
    ledger: Ledger
    db: Database
    bus: bus.EventBus
    js: JetStreamContext
    nats_url: str
    tmp_path: Path


@pytest.fixture
async def mesh(database_url: str, nats_server: EmbeddedNats, tmp_path: Path) -> AsyncIterator[Mesh]:
    """The inventory servicer, ledger and event consumers wired as app.py does, on a free port."""
    async with migrated(database_url, [bus.MIGRATIONS, MIGRATIONS]) as db:
        events = StockEvents()
        event_bus = bus.EventBus(
            db,
            nats_server.url,
            name="inventory",
            streams=context_streams(1),
            subscriptions=events.subscriptions(),
            poll_interval=0.1,
        )
        events.ledger = ledger = Ledger(db, event_bus.outbox, load_policy(DEFAULT_POLICY))
        async with event_bus:
            server = RpcServer(
                InventorySettings(grpc_port=0, metrics_port=0),
                servicers=[
                    (
                        inventory_service_pb2_grpc.add_InventoryServiceServicer_to_server,
                        InventoryServiceServicer(ledger),
                    )
                ],
                service_names=[SERVICE],
            )
            port = await server.start()
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            nc = await nats.connect(nats_server.url)
            try:
                yield Mesh(
                    inventory_service_pb2_grpc.InventoryServiceStub(channel),
                    ledger,
                    db,
                    event_bus,
                    nc.jetstream(),
                    nats_server.url,
                    tmp_path,
                )
            finally:
                await nc.close()
                await channel.close()
                await server.stop(0)


async def count(mesh: Mesh, request_id: str, at: int, location: str = "EAST", **lines: int):
    """Apply a complete 3PL snapshot of `location` as of T0 + `at` seconds."""
    return await mesh.stub.ApplySnapshot(
        pb.ApplySnapshotRequest(
            request_id=request_id,
            location_id=location,
            source_system=TPL,
            as_of=Timestamp(seconds=T0 + at),
            lines=[pb.SnapshotLine(sku=sku.replace("_", "-"), on_hand=q) for sku, q in lines.items()],
        )
    )


async def position(mesh: Mesh, sku: str, location: str = "EAST") -> inventory_pb2.InventoryPosition:
    reply = await mesh.stub.GetPosition(pb.GetPositionRequest(sku=sku, location_id=location))
    return reply.position


async def published_drifts(mesh: Mesh) -> list[events_pb2.InventoryDriftDetected]:
    """Every InventoryDriftDetected on the INVENTORY stream, once the outbox is relayed."""

    async def relayed() -> bool:
        counts = await mesh.bus.relay.counts()
        return counts.get("pending", 0) + counts.get("in_flight", 0) == 0

    assert await eventually(relayed)
    reader = await mesh.js.pull_subscribe(DRIFT_SUBJECT, stream="INVENTORY")
    found = []
    while True:
        try:
            messages = await reader.fetch(100, timeout=1)
        except TimeoutError:
            break
        for message in messages:
            await message.ack()
            found.append(events_pb2.InventoryDriftDetected.FromString(message.data))
    await reader.unsubscribe()
    return found


async def stock_adjusted(mesh: Mesh) -> list[events_pb2.StockAdjusted]:
    async with mesh.db.read() as session:
        rows = await session.execute(
            select(OutboxRow.payload)
            .where(OutboxRow.event_type == "retail.inventory.v1.StockAdjusted")
            .order_by(OutboxRow.id)
        )
        return [events_pb2.StockAdjusted.FromString(payload) for payload in rows.scalars()]


async def eventually(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def reserve_and_commit(mesh: Mesh, order_id: str, sku: str, quantity: int) -> None:
    await mesh.stub.Reserve(
        pb.ReserveRequest(
            request_id=f"r-{order_id}",
            order_id=order_id,
            channel="online-store",
            lines=[pb.ReserveLine(line_id="1", sku=sku, quantity=quantity, location_id="EAST")],
        )
    )
    await mesh.stub.Commit(
        pb.CommitRequest(
            request_id=f"c-{order_id}", order_id=order_id, release_id=f"{order_id}:EAST:1", location_id="EAST"
        )
    )


async def ship(mesh: Mesh, order_id: str, sku: str, quantity: int, at: int) -> None:
    """The shipments service confirms a shipment the 3PL made at T0 + `at`, over JetStream."""
    event = shipments.ShipmentConfirmed(
        shipment=shipments_pb2.ShipmentNotice(
            shipment_id=f"sh-{order_id}",
            order_id=order_id,
            release_id=f"{order_id}:EAST:1",
            location_id="EAST",
            warehouse_shipment=common_pb2.ExternalRef(system=TPL, id=f"tpl-{order_id}"),
            shipped_at=Timestamp(seconds=T0 + at),
            packages=[
                shipments_pb2.Package(
                    package_id="p1",
                    lines=[shipments_pb2.ShipmentLine(line_id="1", sku=sku, quantity=quantity)],
                )
            ],
        )
    )
    async with migrated(f"sqlite+aiosqlite:///{mesh.tmp_path / 'shipments.db'}", [bus.MIGRATIONS]) as db:
        async with bus.EventBus(
            db, mesh.nats_url, name="shipments", streams=context_streams(1), provision_streams=False
        ) as producer:
            async with db.transaction() as session:
                await producer.outbox.add(session, event, key=order_id)

            async def sent() -> bool:
                counts = await producer.relay.counts()
                return counts.get("pending", 0) + counts.get("in_flight", 0) == 0

            assert await eventually(sent)

    async def consumed():
        return (await position(mesh, sku)).committed == 0

    assert await eventually(consumed)


async def test_a_count_within_bounds_repairs_the_position_and_publishes_a_repaired_drift_with_evidence(
    mesh: Mesh,
):
    await count(mesh, "snap-1", 0, SKU_1001=100)
    await mesh.stub.Reserve(
        pb.ReserveRequest(
            request_id="r-1",
            order_id="o-1",
            channel="online-store",
            lines=[pb.ReserveLine(line_id="1", sku="SKU-1001", quantity=3)],
        )
    )

    reply = await count(mesh, "snap-2", 3600, SKU_1001=97)

    after = await position(mesh, "SKU-1001")
    assert (after.on_hand, after.reserved, after.available_to_sell) == (97, 3, 94)
    assert after.last_snapshot_at.seconds == T0 + 3600
    assert [(d.sku, d.expected, d.observed) for d in reply.drifts] == [("SKU-1001", 100, 97)]
    [drift] = await published_drifts(mesh)
    assert (drift.sku, drift.location_id, drift.bucket) == (
        "SKU-1001",
        "EAST",
        inventory_pb2.INVENTORY_BUCKET_ON_HAND,
    )
    assert (drift.expected, drift.observed, drift.auto_repaired) == (100, 97, True)
    assert drift.compared_system == TPL and drift.meta.key == "SKU-1001@EAST"
    assert drift.meta.source_system == common_pb2.SOURCE_SYSTEM_MESH
    for fact in (
        "snap-2",
        "2025-06-15T16:06:40+00:00",
        "reserved 3",
        "committed 0",
        "repaired",
        "2025-06-10.1",
    ):
        assert fact in drift.evidence, fact
    [adjusted] = await stock_adjusted(mesh)
    assert adjusted.reason == inventory_pb2.ADJUSTMENT_REASON_RECONCILIATION
    assert [(c.bucket, c.delta) for c in adjusted.changes] == [(inventory_pb2.INVENTORY_BUCKET_ON_HAND, -3)]
    assert adjusted.reference.id == "snap-2"
    [row] = await mesh.ledger.drifts("SKU-1001", "EAST")
    assert (row.outcome, row.expected, row.observed, row.result, row.reserved) == ("REPAIRED", 100, 97, 97, 3)
    assert row.event_id == drift.meta.event_id


async def test_a_higher_count_beyond_bounds_is_raised_and_the_position_is_held(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1001=20)

    reply = await count(mesh, "snap-2", 3600, SKU_1001=40)

    after = await position(mesh, "SKU-1001")
    assert (after.on_hand, after.available_to_sell) == (20, 20)
    assert after.last_snapshot_at.seconds == T0  # on_hand still rests on the first count
    assert reply.positions_changed == 0 and len(reply.drifts) == 1
    [drift] = await published_drifts(mesh)
    assert (drift.expected, drift.observed, drift.auto_repaired) == (20, 40, False)
    assert "held at 20" in drift.evidence
    assert await stock_adjusted(mesh) == []
    [row] = await mesh.ledger.drifts("SKU-1001", "EAST")
    assert (row.outcome, row.result) == ("ESCALATED_HELD", 20)


async def test_a_lower_count_beyond_bounds_is_raised_and_applied_so_nothing_is_oversold(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1001=20)

    await count(mesh, "snap-2", 3600, SKU_1001=5)

    after = await position(mesh, "SKU-1001")
    assert (after.on_hand, after.available_to_sell) == (5, 5)
    [drift] = await published_drifts(mesh)
    assert (drift.expected, drift.observed, drift.auto_repaired) == (20, 5, False)
    [adjusted] = await stock_adjusted(mesh)
    assert adjusted.reason == inventory_pb2.ADJUSTMENT_REASON_CYCLE_COUNT


async def test_the_flash_sale_item_is_raised_for_a_drift_the_default_bound_would_repair(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1001=50, SKU_1010=50)

    await count(mesh, "snap-2", 3600, SKU_1001=48, SKU_1010=48)

    drifts = {d.sku: d.auto_repaired for d in await published_drifts(mesh)}
    assert drifts == {"SKU-1001": True, "SKU-1010": False}
    assert (await position(mesh, "SKU-1010")).on_hand == 48  # lower: applied while raised


async def test_a_repeated_snapshot_changes_nothing(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1001=20, SKU_1002=10)
    first = await count(mesh, "snap-2", 3600, SKU_1001=40, SKU_1002=8)
    before = [await position(mesh, "SKU-1001"), await position(mesh, "SKU-1002")]
    events_before = await _outbox_types(mesh)

    replayed = await count(mesh, "snap-2", 3600, SKU_1001=40, SKU_1002=8)
    again = await count(mesh, "snap-3", 7200, SKU_1001=40, SKU_1002=8)

    assert replayed == first
    assert [(d.sku, d.expected, d.observed) for d in again.drifts] == [("SKU-1001", 20, 40)]  # still held
    assert again.positions_changed == 0
    after = [await position(mesh, "SKU-1001"), await position(mesh, "SKU-1002")]
    assert [(p.on_hand, p.version) for p in after] == [(p.on_hand, p.version) for p in before]
    assert await _outbox_types(mesh) == [*events_before, "retail.inventory.v1.SnapshotApplied"]
    assert sorted((d.sku, d.auto_repaired) for d in await published_drifts(mesh)) == [
        ("SKU-1001", False),
        ("SKU-1002", True),
    ]
    assert len(await mesh.ledger.drifts("SKU-1001", "EAST")) == 1


async def test_no_drift_publishes_no_drift_event(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1001=20)

    reply = await count(mesh, "snap-2", 3600, SKU_1001=20)

    assert reply.applied and reply.drifts == [] and reply.positions_changed == 0
    assert await published_drifts(mesh) == []
    assert await mesh.ledger.drifts("SKU-1001", "EAST") == []


async def test_a_shipment_made_after_the_count_is_neither_drift_nor_undone_by_the_count(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1001=10)
    await reserve_and_commit(mesh, "o-1", "SKU-1001", 8)
    await ship(mesh, "o-1", "SKU-1001", 8, at=5400)  # shipped after the next count was taken

    reply = await count(mesh, "snap-2", 3600, SKU_1001=10)  # counted before the shipment

    after = await position(mesh, "SKU-1001")
    assert reply.drifts == []
    assert (after.on_hand, after.committed, after.available_to_sell) == (2, 0, 2)
    assert await published_drifts(mesh) == []


async def test_a_late_confirmation_of_a_shipment_the_count_already_missed_is_not_counted_twice(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1001=10)
    await reserve_and_commit(mesh, "o-1", "SKU-1001", 2)

    await count(mesh, "snap-2", 3600, SKU_1001=8)  # the 3PL shipped 2 at +1800, not yet confirmed
    await ship(mesh, "o-1", "SKU-1001", 2, at=1800)

    after = await position(mesh, "SKU-1001")
    assert (after.on_hand, after.committed, after.available_to_sell) == (8, 0, 8)
    [drift] = await published_drifts(mesh)
    assert drift.auto_repaired and "Committed exceeds the warehouse's allocation by 2" in drift.evidence


async def _outbox_types(mesh: Mesh) -> list[str]:
    async with mesh.db.read() as session:
        return list((await session.execute(select(OutboxRow.event_type).order_by(OutboxRow.id))).scalars())
