"""The one path every Shopify order version takes into the mesh, from a webhook or a poll."""

from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from sqlalchemy import bindparam, select
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
_INGESTED_VERSION = Compiled(
    select(_CHANNEL_ORDER.c.channel_updated_at).where(_CHANNEL_ORDER.c.order_gid == bindparam("b_order_gid"))
)


def _remember(dialect: ModuleType) -> Any:
    """The upsert of GID → mesh order id and the version ingested, built once per dialect and run
    as a compiled statement."""
    statement = dialect.insert(_CHANNEL_ORDER)
    return Compiled(
        statement.on_conflict_do_update(
            index_elements=["order_gid"],
            set_={
                name: statement.excluded[name]
                for name in ("order_id", "name", "channel_updated_at", "ingested_at")
            },
        )
    )


_REMEMBER = {"sqlite": _remember(sqlite), "postgresql": _remember(postgresql)}


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
        reply = await self.orders.ingest(order, version_key(order.channel_order.id, updated))

        async def remember(session: AsyncSession) -> None:
            known = (
                await session.execute(_INGESTED_VERSION, {"b_order_gid": order.channel_order.id})
            ).first()
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
