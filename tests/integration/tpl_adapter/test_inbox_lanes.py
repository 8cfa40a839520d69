"""The webhook inbox reports a wave of shipments at once, on SQLite and PostgreSQL: deliveries of
different 3PL orders are reported together, those of one order one after another, oldest first."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select

from libs.store import migrated
from services.tpl_adapter.store import MIGRATIONS, WebhookDeliveryRow
from services.tpl_adapter.webhooks.inbox import WebhookInbox

WITHIN_S = 5.0


class Reporter:
    """The shipments service as the inbox sees it: records each delivery report.

    The report of shipment 11 (order 1) waits until order 2's report has started: worked one
    after another, the inbox would time out here."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.started: dict[str, asyncio.Event] = {}
        self.running: dict[str, int] = {}

    async def delivered(self, request_id: str, warehouse_shipment_id: str, at: datetime) -> None:
        order = {"11": "1", "12": "1", "21": "2"}[warehouse_shipment_id]
        self.running[order] = self.running.get(order, 0) + 1
        assert self.running[order] == 1, "two reports of one 3PL order at once"
        self.log.append(f"start {warehouse_shipment_id}")
        self.started.setdefault(order, asyncio.Event()).set()
        if warehouse_shipment_id == "11":
            await asyncio.wait_for(self.started.setdefault("2", asyncio.Event()).wait(), WITHIN_S)
        await asyncio.sleep(0)
        self.log.append(f"end {warehouse_shipment_id}")
        self.running[order] -= 1


def _delivered(shipment_id: int, order_id: int) -> bytes:
    body: dict[str, Any] = {
        "topic": "order.shipment.delivered",
        "id": shipment_id,
        "order_id": order_id,
        "delivery_date": "2026-11-29T12:00:00Z",
    }
    return json.dumps(body).encode()


async def test_deliveries_of_two_orders_are_reported_at_once_and_one_orders_in_order(database_url):
    reporter = Reporter()
    async with migrated(database_url, [MIGRATIONS]) as db:
        inbox = WebhookInbox(db, reporter)  # type: ignore[arg-type]
        for webhook_id, shipment, order in (("w1", 11, 1), ("w2", 12, 1), ("w3", 21, 2)):
            assert await inbox.store(webhook_id, "order.shipment.delivered", _delivered(shipment, order))
        await inbox.process_due()
        async with db.read() as session:
            statuses = (await session.execute(select(WebhookDeliveryRow.status))).scalars().all()

    assert statuses == ["done"] * 3
    order_1 = [entry for entry in reporter.log if entry.endswith(("11", "12"))]
    assert order_1 == ["start 11", "end 11", "start 12", "end 12"]
    assert reporter.log.index("start 21") < reporter.log.index("end 11")
