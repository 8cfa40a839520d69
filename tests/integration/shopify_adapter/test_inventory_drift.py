"""Shopify's levels against the mesh's (MISSION I5, issue 5): the adapter's verification reads the
real Shopify stand-in over HTTP, reports each level Shopify moved on its own to the real inventory
service (servicer, ledger, outbox relayed to a real nats-server, whose AvailabilityChanged the
adapter consumes), and repairs, overwrites or holds as the inventory service decides; the drift is
readable with ListDrifts (docs/decisions/0021-shopify-availability-drift.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from libs import bus
from libs.bus.streams import context_streams
from libs.rpc import RpcServer
from libs.store import migrated
from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_pb2, inventory_service_pb2_grpc
from retail.inventory.v1 import inventory_service_pb2 as pb
from services.inventory.api.servicer import InventoryServiceServicer
from services.inventory.app import SERVICE
from services.inventory.config import DEFAULT_POLICY, InventorySettings
from services.inventory.domain.policy import load_policy
from services.inventory.events.subscriptions import StockEvents
from services.inventory.ledger import Ledger
from services.inventory.store import MIGRATIONS
from services.shopify_adapter.app import Adapter, running
from services.shopify_adapter.config import ShopifyAdapterSettings
from tests.integration.shopify_adapter.conftest import eventually
from tests.integration.shopify_adapter.test_inventory_push import adjust_available, available, push_row

SHOPIFY = common_pb2.SOURCE_SYSTEM_SHOPIFY
CHANNEL = inventory_pb2.INVENTORY_BUCKET_CHANNEL_AVAILABLE


@dataclass
class Inventory:
    """The running inventory service: its address and a client."""

    addr: str
    stub: inventory_service_pb2_grpc.InventoryServiceStub
    counts: int = 0

    async def count(self, sku: str, location: str, on_hand: int) -> None:
        """A 3PL count of one SKU (a partial snapshot), as the tpl-adapter applies it."""
        self.counts += 1
        await self.stub.ApplySnapshot(
            pb.ApplySnapshotRequest(
                request_id=f"snap-{self.counts}",
                location_id=location,
                source_system=common_pb2.SOURCE_SYSTEM_TPL,
                as_of=Timestamp(seconds=1_750_000_000 + self.counts),
                lines=[pb.SnapshotLine(sku=sku, on_hand=on_hand)],
            )
        )

    async def shopify_drifts(self, sku: str) -> list[pb.DriftRecord]:
        reply = await self.stub.ListDrifts(pb.ListDriftsRequest(skus=[sku]))
        return [d for d in reply.drifts if d.compared_system == SHOPIFY]


@pytest.fixture
async def inventory(nats_server, tmp_path: Path) -> AsyncIterator[Inventory]:
    """The inventory service wired as its app.py does (default policy), on a free port."""
    async with migrated(
        f"sqlite+aiosqlite:///{tmp_path / 'inventory.db'}", [bus.MIGRATIONS, MIGRATIONS]
    ) as db:
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
            try:
                yield Inventory(f"127.0.0.1:{port}", inventory_service_pb2_grpc.InventoryServiceStub(channel))
            finally:
                await channel.close()
                await server.stop(0)


@pytest.fixture
async def mesh_adapter(
    adapter_settings: ShopifyAdapterSettings, inventory: Inventory
) -> AsyncIterator[Adapter]:
    """The adapter talking to the stand-in and to the real inventory service; a lower Shopify figure
    is repaired once it has stood for half a second."""
    update = {"inventory_addr": inventory.addr, "inventory_lower_grace_s": 0.5}
    async with running(adapter_settings.model_copy(update=update)) as parts:
        yield parts


async def shows(shop, sku: str, location: str, figure: int) -> None:
    await eventually(
        lambda: available(shop, sku, location) == figure, what=f"Shopify shows {figure} of {sku}@{location}"
    )


async def settled(adapter: Adapter, sku: str, location: str):
    """The push row once nothing is due for it."""

    async def idle():
        row = await push_row(adapter, sku, location)
        return row if row is not None and row.pushed_version >= row.wanted_version else None

    return await eventually(idle, what=f"{sku}@{location} pushed")


async def test_a_level_shopify_moved_a_little_is_reported_as_a_drift_and_pushed_again_once_it_stands(
    shop, mesh_adapter, inventory
):
    await inventory.count("SKU-1003", "WEST", 12)
    await shows(shop, "SKU-1003", "WEST", 12)
    await settled(mesh_adapter, "SKU-1003", "WEST")
    adjust_available(shop, "SKU-1003", "WEST", -2, "checkout-at-west-shopify-chose")

    await mesh_adapter.inventory.verify()

    # At first a sale on its way to the mesh may explain the lower figure: it is neither undone
    # nor reported as a drift (decision 0036).
    assert available(shop, "SKU-1003", "WEST") == 10
    assert await inventory.shopify_drifts("SKU-1003") == []

    async def repaired() -> bool:
        await mesh_adapter.inventory.verify()
        return available(shop, "SKU-1003", "WEST") == 12

    # Unchanged for the grace period: no sale explains it any more, so it is a drift, reported
    # once, and the mesh's figure goes back.
    await eventually(repaired, what="Shopify repaired to the mesh's 12")
    drifts = await inventory.shopify_drifts("SKU-1003")
    assert [(d.location_id, d.bucket, d.expected, d.observed, d.outcome) for d in drifts] == [
        ("WEST", CHANNEL, 12, 10, pb.DRIFT_OUTCOME_REPAIRED)
    ]
    assert "SHOPIFY shows 10, the mesh offers 12" in drifts[0].evidence
    assert "was last told 12" in drifts[0].evidence


async def test_a_merchant_raising_stock_in_shopify_far_beyond_the_mesh_is_overwritten_and_raised(
    shop, mesh_adapter, inventory
):
    await inventory.count("SKU-1005", "EAST", 40)
    await shows(shop, "SKU-1005", "EAST", 40)
    await settled(mesh_adapter, "SKU-1005", "EAST")
    adjust_available(shop, "SKU-1005", "EAST", 60, "merchant-typed-100")

    await mesh_adapter.inventory.verify()

    await shows(shop, "SKU-1005", "EAST", 40)
    drifts = await inventory.shopify_drifts("SKU-1005")
    assert [(d.expected, d.observed, d.outcome, d.result) for d in drifts] == [
        (40, 100, pb.DRIFT_OUTCOME_ESCALATED_APPLIED, 40)
    ]


async def test_a_merchant_lowering_stock_in_shopify_far_below_the_mesh_is_held_until_the_mesh_falls_to_it(
    shop, mesh_adapter, inventory
):
    await inventory.count("SKU-1004", "EAST", 40)
    await shows(shop, "SKU-1004", "EAST", 40)
    await settled(mesh_adapter, "SKU-1004", "EAST")
    adjust_available(shop, "SKU-1004", "EAST", -10, "merchant-took-ten-off-sale")

    await mesh_adapter.inventory.verify()
    reported_at_once = await inventory.shopify_drifts("SKU-1004")

    async def held() -> bool:
        await mesh_adapter.inventory.verify()
        row = await push_row(mesh_adapter, "SKU-1004", "EAST")
        return row is not None and row.held_quantity == 30

    # Once the lower figure has stood the grace period it is a drift beyond the bound: held.
    await eventually(held, what="Shopify's 30 held as a ceiling")
    await inventory.stub.Adjust(
        pb.AdjustRequest(
            request_id="receipt-1",
            sku="SKU-1004",
            location_id="EAST",
            changes=[inventory_pb2.BucketDelta(bucket=inventory_pb2.INVENTORY_BUCKET_ON_HAND, delta=5)],
            reason=inventory_pb2.ADJUSTMENT_REASON_RECEIPT,
            source_system=common_pb2.SOURCE_SYSTEM_TPL,
        )
    )
    raised = await eventually(
        lambda: _wanted(mesh_adapter, "SKU-1004", "EAST", 45), what="the mesh's 45 reached the adapter"
    )

    assert reported_at_once == []  # a sale on its way could have explained it then
    assert raised.held_quantity == 30
    assert available(shop, "SKU-1004", "EAST") == 30  # held: the mesh's higher figure is not pushed
    drifts = await inventory.shopify_drifts("SKU-1004")
    assert [(d.expected, d.observed, d.outcome, d.result) for d in drifts] == [
        (40, 30, pb.DRIFT_OUTCOME_ESCALATED_HELD, 30)
    ]

    await inventory.stub.Reserve(
        pb.ReserveRequest(
            request_id="r-1",
            order_id="o-1",
            channel="online-store",
            lines=[pb.ReserveLine(line_id="1", sku="SKU-1004", quantity=17, location_id="EAST")],
        )
    )

    await shows(shop, "SKU-1004", "EAST", 28)
    row = await settled(mesh_adapter, "SKU-1004", "EAST")
    assert (row.wanted_quantity, row.held_quantity) == (28, None)


async def _wanted(adapter: Adapter, sku: str, location: str, figure: int):
    row = await push_row(adapter, sku, location)
    ok = row is not None and row.wanted_quantity == figure and row.pushed_version >= row.wanted_version
    return row if ok else None
