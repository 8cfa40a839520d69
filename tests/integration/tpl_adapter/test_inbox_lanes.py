"""The webhook inbox reports a wave of shipments at once, on SQLite and PostgreSQL: deliveries of
different 3PL orders are reported together, those of one order one after another, oldest first,
a shipment's "shipped" before its "delivered" whichever came first; a delivery stored while
another is being reported starts at once, without waiting for it or for the timer; and a retry
asked for sooner than the timer is made then (decision 0040)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from libs.store import migrated
from services.tpl_adapter.store import MIGRATIONS, WebhookDeliveryRow
from services.tpl_adapter.translate.release import Release
from services.tpl_adapter.webhooks.inbox import WebhookInbox
from services.tpl_adapter.webhooks.reporter import ReportFailed

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
        await asyncio.wait_for(inbox.idle(), WITHIN_S)
        async with db.read() as session:
            statuses = (await session.execute(select(WebhookDeliveryRow.status))).scalars().all()

    assert statuses == ["done"] * 3
    order_1 = [entry for entry in reporter.log if entry.endswith(("11", "12"))]
    assert order_1 == ["start 11", "end 11", "start 12", "end 12"]
    assert reporter.log.index("start 21") < reporter.log.index("end 11")


class Recording:
    """The shipments service as the inbox sees it, recording the order of reports; `gate` holds
    the first report until the test opens it."""

    def __init__(self) -> None:
        self.reported: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.first_started = asyncio.Event()

    async def release(self, release_id: str) -> Release:
        return Release.from_json(release_id, "ord-2", "EAST", [])

    async def shipped(self, request_id: str, notice: Any) -> None:
        await self._report(f"shipped {notice.warehouse_shipment.id}")

    async def delivered(self, request_id: str, warehouse_shipment_id: str, at: datetime) -> None:
        await self._report(f"delivered {warehouse_shipment_id}")

    async def _report(self, what: str) -> None:
        self.first_started.set()
        await asyncio.wait_for(self.gate.wait(), WITHIN_S)
        self.reported.append(what)


def _shipped(shipment_id: int, order_id: int) -> bytes:
    body = {
        "topic": "order.shipped",
        "id": shipment_id,
        "order_id": order_id,
        "reference_id": f"rel-{order_id}",
        "tracking": {"carrier": "UPS", "tracking_number": f"1Z{shipment_id}"},
    }
    return json.dumps(body).encode()


async def test_a_shipment_s_delivered_that_arrived_first_is_reported_after_its_shipped(database_url):
    reporter = Recording()
    async with migrated(database_url, [MIGRATIONS]) as db:
        inbox = WebhookInbox(db, reporter)  # type: ignore[arg-type]
        assert await inbox.store("w1", "order.shipment.delivered", _delivered(21, 2))
        assert await inbox.store("w2", "order.shipped", _shipped(21, 2))
        await inbox.process_due()
        await asyncio.wait_for(inbox.idle(), WITHIN_S)

    assert reporter.reported == ["shipped 21", "delivered 21"]


async def test_a_delivery_stored_during_a_round_is_worked_without_waiting_for_the_timer(database_url):
    reporter = Recording()
    reporter.gate.clear()
    async with migrated(database_url, [MIGRATIONS]) as db:
        async with _running(db, reporter) as inbox:
            assert await inbox.store("w1", "order.shipment.delivered", _delivered(11, 1))
            await asyncio.wait_for(reporter.first_started.wait(), WITHIN_S)  # the first is under way
            assert await inbox.store("w2", "order.shipment.delivered", _delivered(21, 2))
            reporter.gate.set()
            await _until(lambda: len(reporter.reported) >= 2)

    assert reporter.reported == ["delivered 11", "delivered 21"]


class HoldsTheFirst:
    """The shipments service holding the report of shipment 11 (order 1) until the test opens it."""

    def __init__(self) -> None:
        self.reported: list[str] = []
        self.gate = asyncio.Event()
        self.first_started = asyncio.Event()
        self.second_reported = asyncio.Event()

    async def delivered(self, request_id: str, warehouse_shipment_id: str, at: datetime) -> None:
        if warehouse_shipment_id == "11":
            self.first_started.set()
            await asyncio.wait_for(self.gate.wait(), WITHIN_S)
        self.reported.append(warehouse_shipment_id)
        if warehouse_shipment_id == "21":
            self.second_reported.set()


async def test_a_delivery_stored_while_another_is_reported_does_not_wait_for_it(database_url):
    reporter = HoldsTheFirst()
    async with migrated(database_url, [MIGRATIONS]) as db:
        async with _running(db, reporter) as inbox:
            assert await inbox.store("w1", "order.shipment.delivered", _delivered(11, 1))
            await asyncio.wait_for(reporter.first_started.wait(), WITHIN_S)
            assert await inbox.store("w2", "order.shipment.delivered", _delivered(21, 2))
            # In rounds, this would wait for shipment 11's report, which waits for the gate.
            await asyncio.wait_for(reporter.second_reported.wait(), WITHIN_S)
            reported_while_held = list(reporter.reported)
            reporter.gate.set()
            await _until(lambda: len(reporter.reported) == 2)

    assert reported_while_held == ["21"]
    assert reporter.reported == ["21", "11"]


@contextlib.asynccontextmanager
async def _running(db: Any, reporter: Any) -> AsyncIterator[WebhookInbox]:
    """The inbox's own loop, with a timer of 60 s: anything sooner is its wake-up's doing."""
    inbox = WebhookInbox(db, reporter, retry_interval_s=60.0)
    inbox.start()
    try:
        yield inbox
    finally:
        await inbox.stop()


async def _until(condition: Any) -> None:
    deadline = time.monotonic() + WITHIN_S
    while not condition():
        assert time.monotonic() < deadline, "not reported in time"
        await asyncio.sleep(0.02)


class FailsOnce:
    """The shipments service refusing the first report of shipment 11, asking for a retry in
    0.2 s, and taking it then."""

    def __init__(self) -> None:
        self.calls = 0
        self.reported: list[str] = []

    async def delivered(self, request_id: str, warehouse_shipment_id: str, at: datetime) -> None:
        self.calls += 1
        if self.calls == 1:
            raise ReportFailed("tracking: NOT_FOUND", transient=True, retry_s=0.2)
        self.reported.append(warehouse_shipment_id)


async def test_a_retry_sooner_than_the_timer_is_made_when_asked(database_url):
    reporter = FailsOnce()
    async with migrated(database_url, [MIGRATIONS]) as db:
        async with _running(db, reporter) as inbox:
            assert await inbox.store("w1", "order.shipment.delivered", _delivered(11, 1))
            await _until(lambda: reporter.reported == ["11"])

    assert reporter.calls == 2


class Overtaken:
    """The shipments service refusing every "delivered": shipment 11 is not recorded yet (the
    report asks to be tried again in 1 s), shipment 21 fails without a hint."""

    async def delivered(self, request_id: str, warehouse_shipment_id: str, at: datetime) -> None:
        if warehouse_shipment_id == "11":
            raise ReportFailed("tracking: NOT_FOUND", transient=True, retry_s=1.0)
        raise ReportFailed("tracking: UNAVAILABLE", transient=True)


async def test_a_failed_report_is_tried_again_after_its_own_hint_or_the_inbox_s_back_off(database_url):
    async with migrated(database_url, [MIGRATIONS]) as db:
        inbox = WebhookInbox(db, Overtaken(), retry_interval_s=5.0)  # type: ignore[arg-type]
        assert await inbox.store("w1", "order.shipment.delivered", _delivered(11, 1))
        assert await inbox.store("w2", "order.shipment.delivered", _delivered(21, 2))
        before = datetime.now(UTC)
        next_due = await inbox.process_due()
        await asyncio.wait_for(inbox.idle(), WITHIN_S)
        async with db.read() as session:
            rows = (
                await session.execute(
                    select(
                        WebhookDeliveryRow.webhook_id,
                        WebhookDeliveryRow.status,
                        WebhookDeliveryRow.next_attempt_at,
                    )
                )
            ).all()

    retry = {webhook_id: (status, (at - before).total_seconds()) for webhook_id, status, at in rows}
    assert retry["w1"][0] == retry["w2"][0] == "pending"
    assert 0.9 <= retry["w1"][1] <= 2.0  # the hint: 1 s
    assert 4.9 <= retry["w2"][1] <= 6.0  # the inbox's own: 5 s
    assert next_due <= 5.0
