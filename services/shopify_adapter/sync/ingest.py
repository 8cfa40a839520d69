"""The one path every Shopify order version takes into the mesh, from a webhook or a poll."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from libs.store import Database
from retail.orders.v1 import orders_pb2, orders_service_pb2
from services.shopify_adapter.clients.orders import OrdersClient
from services.shopify_adapter.store import tables
from services.shopify_adapter.store.queries import upsert
from services.shopify_adapter.translate.order import utc_text, version_key


class OrderIngestor:
    """IngestOrder with the version key as request_id, then remember GID → mesh order id."""

    def __init__(self, db: Database, orders: OrdersClient) -> None:
        self.db = db
        self.orders = orders

    async def ingest(self, order: orders_pb2.SalesOrder) -> orders_service_pb2.IngestOrderResponse:
        """Ingest one order version; a repeat (webhook after poll, duplicate) is the same request.

        Raises:
            OrdersUnavailable: retry later.
            OrdersRefused: a business refusal, to record.
        """
        updated = utc_text(order.channel_updated_at.ToDatetime(tzinfo=UTC).isoformat())
        reply = await self.orders.ingest(order, version_key(order.channel_order.id, updated))
        async with self.db.transaction() as session:
            known = await session.get(tables.ChannelOrder, order.channel_order.id)
            if known is not None and (known.channel_updated_at or "") >= updated:
                return reply  # a stale or repeated version; keep the newest
            await upsert(
                session,
                tables.ChannelOrder,
                {
                    "order_gid": order.channel_order.id,
                    "order_id": reply.order_id,
                    "name": order.channel_order.name or None,
                    "channel_updated_at": updated,
                    "ingested_at": datetime.now(UTC),
                },
                ["order_gid"],
            )
        return reply

    async def mesh_order_id(self, order_gid: str) -> str | None:
        """The mesh's order id of a Shopify order this adapter ingested, if any."""
        async with self.db.read() as session:
            row = await session.get(tables.ChannelOrder, order_gid)
        return row.order_id if row else None

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
