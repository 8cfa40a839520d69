"""The fulfillment worker works a wave of confirmed shipments at once, on SQLite and PostgreSQL:
jobs of different orders together, jobs of one order one after another, and a job found while
another is being worked starts without waiting for it (decision 0040)."""

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
from tests.integration.shopify_adapter.conftest import eventually

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


async def _add_jobs(db: Any, jobs: dict[str, tuple[str, str]]) -> None:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        for order in sorted({order for order, _number in jobs.values()}):
            session.add(
                tables.ChannelOrder(order_gid=f"gid://shopify/Order/{order}", order_id=order, ingested_at=now)
            )
        for shipment, (order, number) in jobs.items():
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


async def _statuses(db: Any) -> dict[str, str]:
    async with db.read() as session:
        rows = await session.execute(select(tables.FulfillmentJob.shipment_id, tables.FulfillmentJob.status))
        return dict(rows.all())


async def test_jobs_of_two_orders_are_worked_at_once_and_one_orders_one_after_another(database_url):
    admin = Admin()
    async with migrated(database_url, [bus.MIGRATIONS, MIGRATIONS]) as db:
        await _add_jobs(db, JOBS)
        worker = FulfillmentWorker(db, admin, Orders(), Outbox(producer="shopify-adapter").add)  # type: ignore[arg-type]
        more = await worker.step()
        await asyncio.wait_for(worker.idle(), WITHIN_S)
        jobs = await _statuses(db)

    assert more is False
    assert jobs == {shipment: tables.DONE for shipment in JOBS}
    assert [entry for entry in admin.log if entry.endswith("ord-1")] == [
        "start ord-1",
        "end ord-1",
        "start ord-1",
        "end ord-1",
    ]
    assert admin.log.index("start ord-2") < admin.log.index("end ord-1")


class HoldsOrderOne:
    """Shopify as the worker sees it, holding the look-up of order 1 until the test opens it."""

    def __init__(self) -> None:
        self.state = ConnectionState()
        self.gate = asyncio.Event()
        self.held = asyncio.Event()

    async def fulfillment_orders(self, order_gid: str) -> dict[str, Any]:
        order = order_gid.rsplit("/", 1)[-1]
        if order == "ord-1":
            self.held.set()
            await asyncio.wait_for(self.gate.wait(), WITHIN_S)
        shipment = {"ord-1": "shp-1", "ord-2": "shp-2"}[order]
        return {
            "fulfillments": [
                {"id": f"gid://shopify/Fulfillment/{shipment}", "trackingInfo": [{"number": f"TN-{order}"}]}
            ]
        }


async def test_a_job_found_while_another_is_worked_does_not_wait_for_it(database_url):
    admin = HoldsOrderOne()
    async with migrated(database_url, [bus.MIGRATIONS, MIGRATIONS]) as db:
        worker = FulfillmentWorker(db, admin, Orders(), Outbox(producer="shopify-adapter").add)  # type: ignore[arg-type]
        try:
            await _add_jobs(db, {"shp-1": ("ord-1", "TN-ord-1")})
            await asyncio.wait_for(worker.step(), WITHIN_S)  # starts shp-1, which is held
            await asyncio.wait_for(admin.held.wait(), WITHIN_S)
            await _add_jobs(db, {"shp-2": ("ord-2", "TN-ord-2")})
            # In rounds, this step would wait for shp-1, which waits for the gate.
            await asyncio.wait_for(worker.step(), WITHIN_S)

            async def second_done() -> bool:
                return (await _statuses(db)).get("shp-2") == tables.DONE

            await eventually(second_done, WITHIN_S, what="shp-2 done while shp-1 is held")
            while_held = await _statuses(db)
            admin.gate.set()
            await asyncio.wait_for(worker.idle(), WITHIN_S)
            after = await _statuses(db)
        finally:
            await worker.close()

    assert while_held == {"shp-1": tables.PENDING, "shp-2": tables.DONE}
    assert after == {"shp-1": tables.DONE, "shp-2": tables.DONE}
