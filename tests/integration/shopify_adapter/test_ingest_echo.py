"""Order versions the orders service never needs to see, on SQLite and PostgreSQL: Shopify's echo
of the mesh's own fulfillment (a newer `updated_at`, the same content) and a version arriving late
that is older than an echo but newer than what the orders service has. A real change is still
ingested, and a version older than the one last ingested still goes to the orders service, which
records it as stale on the order's timeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from libs import bus
from libs.store import migrated
from retail.orders.v1 import orders_service_pb2
from services.shopify_adapter.store import MIGRATIONS, tables
from services.shopify_adapter.sync.ingest import OrderIngestor
from services.shopify_adapter.translate.order import order_from_webhook

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "shopify_adapter" / "webhooks"
CREATED = datetime(2022, 1, 1, tzinfo=UTC)


class Orders:
    """The orders service as the ingestor sees it: records each IngestOrder."""

    def __init__(self) -> None:
        self.ingested: list[str] = []

    async def ingest(self, order: Any, request_id: str) -> orders_service_pb2.IngestOrderResponse:
        self.ingested.append(request_id)
        return orders_service_pb2.IngestOrderResponse(
            order_id="ord-1", outcome=orders_service_pb2.INGEST_OUTCOME_CREATED
        )


def _version(after_s: float, *, moved: bool = False) -> Any:
    """The fixture order as Shopify would send it `after_s` seconds after its creation; `moved`:
    with the shipping address changed."""
    body = json.loads((FIXTURES / "orders_create.json").read_text())["response"]
    body["updated_at"] = (CREATED + timedelta(seconds=after_s)).isoformat()
    if moved:
        body["shipping_address"]["address1"] = "7 Other Street"
    return order_from_webhook(body)


async def _watermark(db: Any) -> str:
    async with db.read() as session:
        return (await session.execute(select(tables.ChannelOrder.channel_updated_at))).scalar_one()


async def test_an_echo_and_a_late_older_version_are_not_sent_and_a_real_change_is(database_url):
    orders = Orders()
    async with migrated(database_url, [bus.MIGRATIONS, MIGRATIONS]) as db:
        ingestor = OrderIngestor(db, orders)
        created = await ingestor.ingest(_version(0))
        echo = await ingestor.ingest(_version(60))  # after a fulfillment: only updated_at moved
        after_echo = await _watermark(db)
        late = await ingestor.ingest(_version(30, moved=True))  # older than the echo
        changed = await ingestor.ingest(_version(90, moved=True))
        after_change = await _watermark(db)
        await ingestor.ingest(_version(45))  # older than the version last ingested

    # The creation, the real change, and the old version for the orders service to judge.
    assert [key.rsplit("@", 1)[1] for key in orders.ingested] == [
        "2022-01-01T00:00:00Z",
        "2022-01-01T00:01:30Z",
        "2022-01-01T00:00:45Z",
    ]
    assert (echo.order_id, echo.outcome) == ("ord-1", orders_service_pb2.INGEST_OUTCOME_UNCHANGED)
    assert (late.order_id, late.outcome) == ("ord-1", orders_service_pb2.INGEST_OUTCOME_STALE)
    assert created.outcome == changed.outcome == orders_service_pb2.INGEST_OUTCOME_CREATED
    assert after_echo == "2022-01-01T00:01:00Z"
    assert after_change == "2022-01-01T00:01:30Z"
