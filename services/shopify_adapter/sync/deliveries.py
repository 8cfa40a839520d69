"""The delivery worker: drains stored webhooks into the orders service (O1, asynchronous part).

Crash-safe: a delivery stays `pending` until its outcome is committed, and every call it makes is
idempotent (IngestOrder by version key, CancelOrder by a key derived from the cancellation), so
a crash mid-way only repeats calls that return their first result. Per topic:

- `orders/create`, `orders/updated`, `orders/paid`: translate the body, IngestOrder;
- `orders/cancelled`: ingest the body (the mesh may never have seen the order), then CancelOrder;
- `orders/edited`: the body holds only the edit, so re-fetch the order from the Admin API and
  ingest that version (the same path as the reconciliation poll);
- `inventory_levels/update`: `ignored`, never an input (the mesh owns availability); classified
  as the echo of our own push or an external change, and counted (`sync.inventory`);
- anything else: stored and marked `ignored`.

Under a burst, webhooks are answered first: while the ingress receives a burst, the worker waits
before it starts stored deliveries, until the burst is answered or the oldest of them has waited
`ingress_first_s` (docs/decisions/0035-the-ingress-answers-before-the-worker-starts.md). The
process's CPU then acknowledges Shopify instead of racing its own IngestOrder calls; a worker that
has fallen behind never waits.

Deliveries of different orders are worked concurrently (`concurrency` at once): a flash sale's
webhooks must not queue behind one another's IngestOrder round trips. Deliveries of one order are
worked one after another, oldest first (the orders service also resolves versions by Shopify's
`updated_at`, so this only keeps the work tidy, not correct).

Transient failures (orders or Shopify unavailable) keep the delivery pending with a back-off;
business failures (translation, INVALID_ARGUMENT, FAILED_PRECONDITION, ...) mark it `failed` with
the reason, to be inspected and replayed (`replay`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.lifecycle.lanes import Lanes
from libs.store import Compiled, Database
from libs.telemetry import record_outcome
from services.shopify_adapter.clients.admin import ShopifyAdmin, ShopifyError, ShopifyTransient
from services.shopify_adapter.clients.orders import OrdersClient, OrdersRefused, OrdersUnavailable
from services.shopify_adapter.store import tables
from services.shopify_adapter.sync.ingest import OrderIngestor
from services.shopify_adapter.sync.worker import backoff_s
from services.shopify_adapter.translate.order import (
    TranslationError,
    cancellation_reason,
    edited_order_gid,
    numeric_id,
    order_from_graphql,
    order_from_webhook,
    parse_body,
    utc_text,
)

log = logging.getLogger(__name__)

INGEST_TOPICS = frozenset({"orders/create", "orders/updated", "orders/paid"})

# Built once, on the table, and given their parameters: every poll and every delivery runs them,
# and an ORM statement built per call costs several times its execution (decision 0029). The
# per-delivery ones run as compiled statements (libs.store.Compiled), the reads without a session
# (`Database.fetch`). The deliveries already being worked are left out in Python: an expanding
# NOT IN would be SQLAlchemy's to run.
_DELIVERY = tables.WebhookDelivery.__table__
_DUE = Compiled(
    select(_DELIVERY.c.id, _DELIVERY.c.topic, _DELIVERY.c.body, _DELIVERY.c.received_at)
    .where(_DELIVERY.c.status == tables.PENDING, _DELIVERY.c.next_attempt_at <= bindparam("b_now"))
    .order_by(_DELIVERY.c.id)
    .limit(bindparam("b_limit"))
)
_ROW = Compiled(
    select(
        _DELIVERY.c.status, _DELIVERY.c.topic, _DELIVERY.c.body, _DELIVERY.c.event_id, _DELIVERY.c.attempts
    ).where(_DELIVERY.c.id == bindparam("b_id"))
)
#: SET gets the columns given with `b_id`.
_UPDATE = Compiled(update(_DELIVERY).where(_DELIVERY.c.id == bindparam("b_id")))


class DeliveryWorker:
    """Works stored webhook deliveries, oldest first.

    Args:
        db: the service database.
        ingestor: the order ingest path.
        orders: the orders service client (cancellations).
        admin: the Admin API client (re-fetching edited orders).
        batch: deliveries started per look (besides those in progress).
        concurrency: deliveries (of different orders) worked at once.
        retry_max_s: back-off ceiling for transient failures.
        inventory_echo: classifies `inventory_levels/update` bodies (echo of our push or external).
        ingress_quiet: waits until the ingress receives no burst, at most the seconds given
            (`WebhookIngress.quiet`); None: never wait.
        ingress_first_s: how long a stored delivery may wait for a burst to be answered.
    """

    def __init__(
        self,
        db: Database,
        ingestor: OrderIngestor,
        orders: OrdersClient,
        admin: ShopifyAdmin,
        *,
        batch: int = 50,
        concurrency: int = 16,
        retry_max_s: float = 300.0,
        inventory_echo: Any = None,
        ingress_quiet: Callable[[float], Awaitable[None]] | None = None,
        ingress_first_s: float = 0.5,
    ) -> None:
        self.db = db
        self._lanes = Lanes(concurrency=concurrency, name="shopify-deliveries")
        self.ingestor = ingestor
        self.orders = orders
        self.admin = admin
        self.batch = batch
        self.retry_max_s = retry_max_s
        self.inventory_echo = inventory_echo
        self._ingress_quiet = ingress_quiet
        self.ingress_first_s = ingress_first_s

    async def step(self) -> bool:
        """Start the due deliveries not already being worked; True when a full batch was started
        (more may wait). The work runs in tasks, so a slow delivery never holds back the next
        webhook; `close` waits for them."""
        now = datetime.now(UTC)
        due = {"b_now": now, "b_limit": self.batch + len(self._lanes)}
        found = (await self.db.fetch(_DUE, due)).all()
        rows = [row for row in found if row.id not in self._lanes][: self.batch]
        if rows and self._ingress_quiet is not None:
            received = rows[0].received_at  # the oldest: rows come in the order they were stored
            await self._ingress_quiet(self.ingress_first_s - (now - received).total_seconds())
        for delivery_id, topic, body, _received in rows:
            # One order's deliveries in their lane, in the order they were stored.
            lane = order_key(topic, body) or f"delivery:{delivery_id}"
            self._lanes.start(delivery_id, lane, partial(self.work, delivery_id))
        return len(rows) == self.batch

    async def close(self, grace: float = 5.0) -> None:
        """Let the deliveries in progress finish for `grace` seconds, then cancel the rest (they
        stay pending and are worked again after the restart; every call they make is idempotent)."""
        await self._lanes.close(grace)

    async def work(self, delivery_id: int) -> str:
        """Work one delivery; return its new status."""
        row = (await self.db.fetch(_ROW, {"b_id": delivery_id})).first()
        if row is None or row.status != tables.PENDING:
            return row.status if row else "missing"
        started = time.perf_counter()
        status, error, order_gid = tables.PROCESSED, None, None
        try:
            order_gid = await self._apply(row.topic, row.body, row.event_id)
            if order_gid is None:
                status = tables.IGNORED
        except (OrdersUnavailable, ShopifyTransient) as exc:
            attempts = row.attempts + 1
            async with self.db.transaction() as session:
                await session.execute(
                    _UPDATE,
                    {
                        "b_id": delivery_id,
                        "attempts": attempts,
                        "last_error": str(exc)[:1000],
                        "next_attempt_at": datetime.now(UTC)
                        + timedelta(seconds=backoff_s(attempts, self.retry_max_s)),
                    },
                )
            record_outcome("shopify-adapter.webhook", "retry", time.perf_counter() - started)
            log.warning("delivery will be retried", extra={"delivery_id": delivery_id, "topic": row.topic})
            return tables.PENDING
        except (TranslationError, OrdersRefused, ShopifyError) as exc:
            status, error = tables.FAILED, f"{type(exc).__name__}: {exc}"[:1000]
        settled = {
            "b_id": delivery_id,
            "status": status,
            "attempts": row.attempts + 1,
            "last_error": error,
            "order_gid": order_gid,
            "processed_at": datetime.now(UTC),
        }

        async def settle(session: AsyncSession) -> None:
            await session.execute(_UPDATE, settled)

        # Deliveries settled at the same moment share a transaction (libs.store.group).
        await self.db.group.run(settle)
        outcome = "business_error" if status == tables.FAILED else "ok"
        record_outcome("shopify-adapter.webhook", outcome, time.perf_counter() - started)
        if status == tables.FAILED:
            log.warning(
                "delivery failed", extra={"delivery_id": delivery_id, "topic": row.topic, "reason": error}
            )
        return status

    async def _apply(self, topic: str, raw: bytes, event_id: str) -> str | None:
        """Do what the topic asks; return the order GID, or None when the topic is not handled."""
        if topic in INGEST_TOPICS:
            order = order_from_webhook(parse_body(raw))
            await self.ingestor.ingest(order)
            return order.channel_order.id
        if topic == "orders/cancelled":
            body = parse_body(raw)
            order = order_from_webhook(body)
            reply = await self.ingestor.ingest(order)
            cancelled_at = body.get("cancelled_at") or body.get("updated_at")
            await self.orders.cancel(
                reply.order_id,
                cancellation_reason(body.get("cancel_reason")),
                f"shopify:cancel:{numeric_id(order.channel_order.id)}@{utc_text(cancelled_at)}",
                note=f"cancelled in Shopify ({str(body.get('cancel_reason') or 'other')[:32]})",
            )
            return order.channel_order.id
        if topic == "orders/edited":
            gid = edited_order_gid(parse_body(raw))
            node = await self.admin.order(gid)
            if node is None:
                raise TranslationError(f"edited order {numeric_id(gid)} not found in Shopify")
            await self.ingestor.ingest(order_from_graphql(node))
            return gid
        if topic == "inventory_levels/update" and self.inventory_echo is not None:
            kind = await self.inventory_echo.classify(parse_body(raw))
            log.info("inventory level update ignored", extra={"event_id": event_id, "kind": kind})
        return None

    async def replay(self, delivery_ids: list[int]) -> int:
        """Set failed deliveries back to pending (after a fix); return how many were reset."""
        async with self.db.transaction() as session:
            result = await session.execute(
                update(tables.WebhookDelivery)
                .where(tables.WebhookDelivery.id.in_(delivery_ids))
                .where(tables.WebhookDelivery.status == tables.FAILED)
                .values(status=tables.PENDING, next_attempt_at=datetime.now(UTC), last_error=None)
            )
        return int(result.rowcount or 0)


def order_key(topic: str, body: bytes) -> str | None:
    """The Shopify order a delivery is about (its numeric id), or None when the body names none."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    if topic == "orders/edited":
        edit = parsed.get("order_edit")
        parsed = {"id": edit.get("order_id")} if isinstance(edit, dict) else {}
    order_id = parsed.get("id") if topic.startswith("orders/") else None
    return f"order:{order_id}" if order_id is not None else None
