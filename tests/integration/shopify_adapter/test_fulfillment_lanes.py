"""The fulfillment worker works a wave of confirmed shipments at once, on SQLite and PostgreSQL:
jobs of different orders together, jobs of one order one after another."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from libs import bus
from libs.bus import Outbox
from libs.store import migrated
from retail.shipments.v1 import shipments_pb2
from services.shopify_adapter.clients.admin import ConnectionState
from services.shopify_adapter.store import MIGRATIONS, tables
from services.shopify_adapter.sync.fulfillments import FulfillmentWorker

WITHIN_S = 5.0
#: shipment → (order, tracking number)
JOBS = {"shp-1a": ("ord-1", "TN-1a"), "shp-1b": ("ord-1", "TN-1b"), "shp-2": ("ord-2", "TN-2")}


class Admin:
    """Shopify as the worker sees it: each order already carries its shipments' fulfillments, so
    a job ends at the look-up. The first look-up of order 1 waits until order 2's has started:
    worked one after another, the worker would time out here."""

    def __init__(self) -> None:
        self.state = ConnectionState()
        self.log: list[str] = []
        self.running: dict[str, int] = {}
        self.started = {"ord-1": asyncio.Event(), "ord-2": asyncio.Event()}

    async def fulfillment_orders(self, order_gid: str) -> dict[str, Any]:
        order = order_gid.rsplit("/", 1)[-1]
        self.running[order] = self.running.get(order, 0) + 1
        assert self.running[order] == 1, "two jobs of one order at once"
        self.log.append(f"start {order}")
        first = not self.started[order].is_set()
        self.started[order].set()
        if order == "ord-1" and first:
            await asyncio.wait_for(self.started["ord-2"].wait(), WITHIN_S)
        await asyncio.sleep(0)
        self.log.append(f"end {order}")
        self.running[order] -= 1
        made = [
            {"id": f"gid://shopify/Fulfillment/{shipment}", "trackingInfo": [{"number": number}]}
            for shipment, (owner, number) in JOBS.items()
            if owner == order
        ]
        return {"fulfillments": made}


class Orders:
    async def channel_order(self, order_id: str) -> None:
        return None


async def test_jobs_of_two_orders_are_worked_at_once_and_one_orders_one_after_another(database_url):
    admin = Admin()
    now = datetime.now(UTC)
    async with migrated(database_url, [bus.MIGRATIONS, MIGRATIONS]) as db:
        async with db.transaction() as session:
            for order in ("ord-1", "ord-2"):
                session.add(
                    tables.ChannelOrder(
                        order_gid=f"gid://shopify/Order/{order}", order_id=order, ingested_at=now
                    )
                )
            for shipment, (order, number) in JOBS.items():
                notice = shipments_pb2.ShipmentNotice(
                    shipment_id=shipment,
                    order_id=order,
                    packages=[shipments_pb2.Package(package_id=f"pkg-{shipment}", tracking_number=number)],
                )
                session.add(
                    tables.FulfillmentJob(
                        shipment_id=shipment,
                        order_id=order,
                        notice=notice.SerializeToString(),
                        correlation_id="corr-1",
                        causation_id=f"evt-{shipment}",
                        status=tables.PENDING,
                        attempts=0,
                        created_at=now,
                        next_attempt_at=now,
                    )
                )
        worker = FulfillmentWorker(db, admin, Orders(), Outbox(producer="shopify-adapter").add)  # type: ignore[arg-type]
        more = await worker.step()
        async with db.read() as session:
            jobs = dict(
                (
                    await session.execute(
                        select(tables.FulfillmentJob.shipment_id, tables.FulfillmentJob.status)
                    )
                ).all()
            )

    assert more is False
    assert jobs == {shipment: tables.DONE for shipment in JOBS}
    assert [entry for entry in admin.log if entry.endswith("ord-1")] == [
        "start ord-1",
        "end ord-1",
        "start ord-1",
        "end ord-1",
    ]
    assert admin.log.index("start ord-2") < admin.log.index("end ord-1")
