"""A "shipped" that names a release the adapter has not recorded yet, on SQLite and PostgreSQL.

The 3PL can ship, and send its webhook, before the tpl-adapter has committed the release whose
3PL order it has just created. Found in a bench run at 2 orders a second: the shipment was taken
as "not ours" and failed for good, and its order was never shipped in the mesh. It is now tried
again soon, and taken as not ours only once it has waited UNKNOWN_RELEASE_PATIENCE_S.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import select, update

from libs.store import migrated
from retail.shipments.v1 import shipments_service_pb2
from services.tpl_adapter.store import MIGRATIONS, WebhookDeliveryRow, releases
from services.tpl_adapter.webhooks.inbox import HANDLER, WebhookInbox
from services.tpl_adapter.webhooks.reporter import (
    OVERTAKEN_RETRY_S,
    UNKNOWN_RELEASE_PATIENCE_S,
    ShipmentReporter,
)

RELEASE_ID = "ord-1:EAST:1"


def _outcomes(outcome: str) -> float:
    labels = {"handler": HANDLER, "outcome": outcome}
    return REGISTRY.get_sample_value("retail_handler_outcomes_total", labels) or 0.0


WITHIN_S = 5.0


class Shipments:
    """The shipments service's RecordShipment as the reporter calls it: records each request."""

    def __init__(self) -> None:
        self.recorded: list[str] = []

    async def RecordShipment(self, request: Any, timeout: float) -> Any:
        self.recorded.append(request.shipment.release_id)
        return shipments_service_pb2.RecordShipmentResponse(shipment=request.shipment)


def _shipped() -> bytes:
    return json.dumps(
        {
            "topic": "order.shipped",
            "id": 200023,
            "order_id": 100022,
            "reference_id": RELEASE_ID,
            "tracking": {
                "carrier": "UPS",
                "tracking_number": "1Z200023",
                "shipping_date": "2026-11-29T15:14:36Z",
            },
            "products": [{"sku": "SKU-1006", "quantity": 2}],
        }
    ).encode()


async def _delivery(db) -> Any:
    async with db.read() as session:
        return (
            await session.execute(
                select(
                    WebhookDeliveryRow.status,
                    WebhookDeliveryRow.last_error,
                    WebhookDeliveryRow.next_attempt_at,
                )
            )
        ).one()


async def test_a_shipment_that_overtook_its_release_s_record_is_reported_once_the_record_is_there(
    database_url,
):
    shipments = Shipments()
    async with migrated(database_url, [MIGRATIONS]) as db:
        inbox = WebhookInbox(db, ShipmentReporter(db, shipments), retry_interval_s=5.0)  # type: ignore[arg-type]
        assert await inbox.store("w1", "order.shipped", _shipped())
        before = datetime.now(UTC)
        counted = {outcome: _outcomes(outcome) for outcome in ("retry", "ok")}
        await inbox.process_due()
        await asyncio.wait_for(inbox.idle(), WITHIN_S)
        first = await _delivery(db)

        now = datetime.now(UTC)
        async with db.transaction() as session:  # the release's commit arrives
            await releases.add(
                session,
                {
                    "release_id": RELEASE_ID,
                    "order_id": "ord-1",
                    "location_id": "EAST",
                    "lines": [{"line_id": "1", "sku": "SKU-1006", "quantity": 2}],
                    "mode": "api",
                    "status": "accepted",
                    "warehouse_order_id": "100022",
                    "shipped": False,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            # Due now rather than in a second: the test does not sleep through the back-off.
            await session.execute(update(WebhookDeliveryRow).values(next_attempt_at=now))
        await inbox.process_due()
        await asyncio.wait_for(inbox.idle(), WITHIN_S)
        second = await _delivery(db)

    assert first.status == "pending"
    assert {outcome: _outcomes(outcome) - n for outcome, n in counted.items()} == {"retry": 1, "ok": 1}
    assert "no release 'ord-1:EAST:1'" in first.last_error
    waits = (first.next_attempt_at - before).total_seconds()
    assert OVERTAKEN_RETRY_S - 0.1 <= waits <= OVERTAKEN_RETRY_S + 1.0  # soon, not the inbox's 5 s
    assert second.status == "done"
    assert shipments.recorded == [RELEASE_ID]


async def test_a_shipment_of_a_release_never_recorded_fails_once_it_has_waited_long_enough(database_url):
    shipments = Shipments()
    async with migrated(database_url, [MIGRATIONS]) as db:
        inbox = WebhookInbox(db, ShipmentReporter(db, shipments))  # type: ignore[arg-type]
        assert await inbox.store("w1", "order.shipped", _shipped())
        long_ago = datetime.now(UTC) - timedelta(seconds=UNKNOWN_RELEASE_PATIENCE_S + 1)
        async with db.transaction() as session:
            await session.execute(
                update(WebhookDeliveryRow).values(received_at=long_ago, next_attempt_at=long_ago)
            )
        failed_before = _outcomes("business_error")
        await inbox.process_due()
        await asyncio.wait_for(inbox.idle(), WITHIN_S)
        settled = await _delivery(db)

    assert _outcomes("business_error") - failed_before == 1  # seen where ops alerts
    assert settled.status == "failed"
    assert "no release 'ord-1:EAST:1' was sent by this adapter (still after" in settled.last_error
    assert shipments.recorded == []
