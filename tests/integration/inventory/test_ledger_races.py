"""Two inventory replicas racing on one order in PostgreSQL: the ledger's row locks, not luck,
keep positions and reservation rows in step."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from libs import bus
from libs.bus.outbox import Outbox
from libs.store import Database, migrated
from services.inventory.config import DEFAULT_POLICY
from services.inventory.domain.policy import load_policy
from services.inventory.ledger import Ledger, ReserveLine, Work
from services.inventory.store import MIGRATIONS

pytestmark = pytest.mark.postgres

LINE = [ReserveLine("1", "SKU-1001", 10)]  # routed: a line held in part is what routing does


async def _blocked_on_a_lock(db: Database, deadline_s: float = 30.0) -> None:
    query = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    deadline = time.monotonic() + deadline_s
    while True:
        async with db.read() as session:
            if (await session.execute(query)).scalar():
                return
        assert time.monotonic() < deadline, "the second replica never waited for a lock"
        await asyncio.sleep(0.02)


async def test_two_replicas_growing_one_partly_held_line_hold_it_once(postgres_url: str) -> None:
    async with migrated(postgres_url, [bus.MIGRATIONS, MIGRATIONS]) as db:
        policy = load_policy(DEFAULT_POLICY)
        other = Database(postgres_url)  # the second replica's own pool
        one = Ledger(db, Outbox(producer="inventory"), policy)
        two = Ledger(other, Outbox(producer="inventory"), policy)
        try:

            async def stock(units: int) -> None:
                await one.run(
                    lambda u: one.adjust(u, sku="SKU-1001", location_id="EAST", deltas=[("on_hand", units)])
                )

            def reserve(ledger: Ledger):
                async def work(unit: Work):
                    return await ledger.reserve(
                        unit, order_id="o-1", channel="online-store", lines=LINE, allow_partial=True
                    )

                return work

            await stock(4)
            first = await one.run(reserve(one))
            assert [r.quantity for r in first.reservations] == [4]  # a backorder: 6 more wanted
            await stock(20)

            # Replica one grows the line and has not committed yet when replica two tries the same.
            async with db.transaction() as held:
                await one.run(reserve(one), session=held)
                racing = asyncio.create_task(two.run(reserve(two)))
                await _blocked_on_a_lock(other)
            await racing

            async with db.read() as session:
                rows = (
                    await session.execute(
                        text("SELECT quantity FROM inventory_reservation WHERE order_id = 'o-1'")
                    )
                ).all()
                position = (
                    await session.execute(
                        text("SELECT on_hand, reserved FROM inventory_position WHERE sku = 'SKU-1001'")
                    )
                ).one()
            assert [r.quantity for r in rows] == [10]
            assert (position.on_hand, position.reserved) == (24, 10)
        finally:
            await other.dispose()
