"""The reconciliation poll (O2): orders updated since the watermark, ingested like webhooks.

Each round lists `{id, updatedAt}` of orders with `updated_at >= watermark - overlap` (cheap in
query cost), compares them with the versions this adapter already ingested, re-fetches only the
orders whose version it has not seen and ingests them through the same path as a webhook
(request_id = order id + updated_at, so a poll and the webhook of one version are one request).
The watermark (updatedAt + id of the last order handled in order) is stored in
`reconcile_watermark` and moves only past orders that were handled; a transient failure stops the
round there and the next round resumes. Business failures are counted as escalated.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from libs.store import Database
from retail.common.v1 import common_pb2
from retail.integration.v1 import events_pb2 as integration_events
from retail.integration.v1 import integration_pb2
from services.shopify_adapter.clients.admin import ShopifyAdmin, ShopifyError, ShopifyTransient
from services.shopify_adapter.clients.orders import OrdersRefused, OrdersUnavailable
from services.shopify_adapter.store import tables
from services.shopify_adapter.store.queries import upsert
from services.shopify_adapter.sync.ingest import OrderIngestor
from services.shopify_adapter.translate.order import TranslationError, order_from_graphql, utc_text

log = logging.getLogger(__name__)

WATERMARK = "orders"


def _now_ts() -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC))
    return stamp


class OrderReconciler:
    """Finds and ingests order versions that never arrived as webhooks.

    Args:
        db: the service database.
        admin: the Admin API client.
        ingestor: the order ingest path.
        outbox_add: `bus.outbox.add`, to publish ReconciliationCompleted; None publishes nothing.
        overlap_s: how far before the watermark each round re-reads.
        initial_lookback_minutes: where the first round starts without a watermark.
    """

    def __init__(
        self,
        db: Database,
        admin: ShopifyAdmin,
        ingestor: OrderIngestor,
        *,
        outbox_add: Any = None,
        overlap_s: float = 120.0,
        initial_lookback_minutes: int = 60,
    ) -> None:
        self.db = db
        self.admin = admin
        self.ingestor = ingestor
        self.outbox_add = outbox_add
        self.overlap_s = overlap_s
        self.initial_lookback_minutes = initial_lookback_minutes

    async def _since(self, lookback_minutes: int) -> str:
        now = datetime.now(UTC)
        if lookback_minutes > 0:
            return utc_text((now - timedelta(minutes=lookback_minutes)).isoformat())
        async with self.db.read() as session:
            mark = await session.get(tables.Watermark, WATERMARK)
        if mark is None:
            return utc_text((now - timedelta(minutes=self.initial_lookback_minutes)).isoformat())
        at = datetime.fromisoformat(mark.updated_at.replace("Z", "+00:00")) - timedelta(
            seconds=self.overlap_s
        )
        return utc_text(at.isoformat())

    async def run(self, lookback_minutes: int = 0) -> integration_pb2.ReconciliationRun:
        """One reconciliation round; returns its counts (also published as ReconciliationCompleted).

        Raises:
            ShopifyTransient, ShopifyError: listing orders failed (nothing moved).
        """
        run = integration_pb2.ReconciliationRun(
            run_id=str(uuid.uuid4()), kind=integration_pb2.RECONCILIATION_KIND_ORDERS, started_at=_now_ts()
        )
        since = await self._since(lookback_minutes)
        nodes = await self.admin.orders_updated_since(since)
        nodes.sort(key=lambda n: (utc_text(n["updatedAt"]), n["id"]))
        seen = await self.ingestor.channel_versions([n["id"] for n in nodes])
        mark: tuple[str, str] | None = None
        for node in nodes:
            updated = utc_text(node["updatedAt"])
            run.compared += 1
            if seen.get(node["id"], "") < updated:
                run.drifted += 1
                try:
                    full = await self.admin.order(node["id"])
                    if full is None:
                        raise TranslationError("order vanished between list and fetch")
                    await self.ingestor.ingest(order_from_graphql(full))
                    run.repaired += 1
                except (OrdersUnavailable, ShopifyTransient) as exc:
                    log.warning("reconciliation stopped early: %s", type(exc).__name__)
                    break
                except (TranslationError, OrdersRefused, ShopifyError) as exc:
                    run.escalated += 1
                    log.warning(
                        "order could not be reconciled", extra={"order": node["id"], "reason": str(exc)[:300]}
                    )
            mark = (updated, node["id"])
        run.finished_at.CopyFrom(_now_ts())
        async with self.db.transaction() as session:
            if mark is not None:
                await upsert(
                    session,
                    tables.Watermark,
                    {
                        "name": WATERMARK,
                        "updated_at": mark[0],
                        "last_id": mark[1],
                        "saved_at": datetime.now(UTC),
                    },
                    ["name"],
                )
            if self.outbox_add is not None:
                await self.outbox_add(
                    session,
                    integration_events.ReconciliationCompleted(
                        meta=common_pb2.EventMeta(source_system=common_pb2.SOURCE_SYSTEM_SHOPIFY), run=run
                    ),
                    key=run.run_id,
                )
        return run

    async def step(self) -> bool:
        """One periodic round (for `sync.worker.Loop`)."""
        await self.run()
        return False
