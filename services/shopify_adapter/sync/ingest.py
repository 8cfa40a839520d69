"""The one path every Shopify order version takes into the mesh, from a webhook or a poll.

Versions are ordered by Shopify's `updated_at`. Two kinds never reach the orders service:

- an *echo*: a newer version whose content is the same as the version last ingested, only its
  `updated_at` moved. Shopify sends one after every fulfillment the mesh makes (`orders/updated`);
  in a flash sale they were nearly half of all `IngestOrder` calls, and each changed nothing;
- a version older than an echo skipped but newer than the version last ingested: only the adapter
  knows it is stale. (Versions older than the one last ingested still go to the orders service,
  which ignores them and records them as stale on the order's timeline.)

Content is compared by a digest of the translated order with `channel_updated_at` left out,
stored with the version (`channel_order.content_digest`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from prometheus_client import Counter
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import Compiled, Database
from retail.orders.v1 import orders_pb2, orders_service_pb2
from services.shopify_adapter.clients.orders import OrdersClient
from services.shopify_adapter.store import tables
from services.shopify_adapter.translate.order import utc_text, version_key

# Built once, on the table, run as compiled statements (libs.store.Compiled) and given their
# parameters: every ingested order runs them, and an ORM statement built per call costs several
# times its execution (decision 0029).
_CHANNEL_ORDER = tables.ChannelOrder.__table__
_KNOWN = Compiled(
    select(
        _CHANNEL_ORDER.c.order_id,
        _CHANNEL_ORDER.c.channel_updated_at,
        _CHANNEL_ORDER.c.content_digest,
        _CHANNEL_ORDER.c.ingested_updated_at,
    ).where(_CHANNEL_ORDER.c.order_gid == bindparam("b_order_gid"))
)
#: An echo moves the version on, never back.
_ECHOED = Compiled(
    update(_CHANNEL_ORDER)
    .where(
        _CHANNEL_ORDER.c.order_gid == bindparam("b_order_gid"),
        _CHANNEL_ORDER.c.channel_updated_at < bindparam("b_updated"),
    )
    .values(channel_updated_at=bindparam("b_updated"))
)


def content_digest(order: orders_pb2.SalesOrder) -> str:
    """SHA-256 (hex) of the order as translated, its `channel_updated_at` left out."""
    content = orders_pb2.SalesOrder()
    content.CopyFrom(order)
    content.ClearField("channel_updated_at")
    return hashlib.sha256(content.SerializeToString(deterministic=True)).hexdigest()


def _remember(dialect: ModuleType) -> Any:
    """The upsert of GID → mesh order id and the version ingested, built once per dialect and run
    as a compiled statement."""
    statement = dialect.insert(_CHANNEL_ORDER)
    return Compiled(
        statement.on_conflict_do_update(
            index_elements=["order_gid"],
            set_={
                name: statement.excluded[name]
                for name in (
                    "order_id",
                    "name",
                    "channel_updated_at",
                    "ingested_at",
                    "content_digest",
                    "ingested_updated_at",
                )
            },
        )
    )


_REMEMBER = {"sqlite": _remember(sqlite), "postgresql": _remember(postgresql)}

INGEST_SKIPPED = Counter(
    "shopify_order_versions_skipped_total",
    "Order versions not sent to the orders service: echo (only updated_at moved since the version "
    "last ingested) or stale (older than an echo skipped, newer than the version last ingested).",
    ["kind"],
)


class OrderIngestor:
    """IngestOrder with the version key as request_id, then remember GID → mesh order id."""

    def __init__(self, db: Database, orders: OrdersClient) -> None:
        self.db = db
        self.orders = orders
        self._remember = _REMEMBER[db.dialect]

    async def ingest(self, order: orders_pb2.SalesOrder) -> orders_service_pb2.IngestOrderResponse:
        """Ingest one order version; a repeat (webhook after poll, duplicate) is the same request.

        Raises:
            OrdersUnavailable: retry later.
            OrdersRefused: a business refusal, to record.
        """
        updated = utc_text(order.channel_updated_at.ToDatetime(tzinfo=UTC).isoformat())
        digest = content_digest(order)
        gid = order.channel_order.id
        known = (await self.db.fetch(_KNOWN, {"b_order_gid": gid})).first()
        if known is not None and known.channel_updated_at:
            # Older than a version skipped as an echo but newer than what the orders service has:
            # only the adapter knows it is stale. Older still, the orders service says so itself
            # (and records it on the order's timeline).
            if (
                known.ingested_updated_at is not None
                and known.ingested_updated_at < updated < known.channel_updated_at
            ):
                INGEST_SKIPPED.labels("stale").inc()
                return orders_service_pb2.IngestOrderResponse(
                    order_id=known.order_id, outcome=orders_service_pb2.INGEST_OUTCOME_STALE
                )
            if updated > known.channel_updated_at and known.content_digest == digest:

                async def echoed(session: AsyncSession) -> None:
                    await session.execute(_ECHOED, {"b_order_gid": gid, "b_updated": updated})

                await self.db.group.run(echoed)
                INGEST_SKIPPED.labels("echo").inc()
                return orders_service_pb2.IngestOrderResponse(
                    order_id=known.order_id, outcome=orders_service_pb2.INGEST_OUTCOME_UNCHANGED
                )
        reply = await self.orders.ingest(order, version_key(gid, updated))

        async def remember(session: AsyncSession) -> None:
            known = (await session.execute(_KNOWN, {"b_order_gid": gid})).first()
            if known is not None and (known.channel_updated_at or "") >= updated:
                return  # a stale or repeated version; keep the newest
            await session.execute(
                self._remember,
                {
                    "order_gid": order.channel_order.id,
                    "order_id": reply.order_id,
                    "name": order.channel_order.name or None,
                    "channel_updated_at": updated,
                    "ingested_at": datetime.now(UTC),
                    "content_digest": digest,
                    "ingested_updated_at": updated,
                },
            )

        # Orders ingested at the same moment (concurrent deliveries) share a transaction
        # (libs.store.group); it has committed when this returns.
        await self.db.group.run(remember)
        return reply

    async def channel_versions(self, order_gids: list[str]) -> dict[str, str]:
        """GID → the `updated_at` (UTC text) last ingested, for the given orders."""
        if not order_gids:
            return {}
        async with self.db.read() as session:
            rows = await session.execute(
                select(tables.ChannelOrder.order_gid, tables.ChannelOrder.channel_updated_at).where(
                    tables.ChannelOrder.order_gid.in_(order_gids)
                )
            )
        return {gid: updated for gid, updated in rows.all() if updated}
