"""The fulfillment worker: one Shopify fulfillment with tracking per confirmed shipment (O6).

Exactly once without an idempotency key on `fulfillmentCreate`: before creating, the order's
fulfillments are read and one already carrying the shipment's tracking number is taken as ours
(a crash after Shopify created it and before we recorded it repeats only the look-up). Shipments
without tracking numbers are protected by the fulfillment orders themselves: once fulfilled, the
lines have no open quantity and a repeat fails instead of fulfilling twice. On success the job is
marked done and ChannelFulfillmentCreated is added to the outbox in the same transaction.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.lifecycle.lanes import Lanes
from libs.store import Compiled, Database
from libs.telemetry import record_outcome
from retail.common.v1 import common_pb2
from retail.shipments.v1 import events_pb2 as shipment_events
from retail.shipments.v1 import shipments_pb2
from services.shopify_adapter.clients.admin import ShopifyAdmin, ShopifyError, ShopifyTransient
from services.shopify_adapter.clients.orders import OrdersClient, OrdersRefused, OrdersUnavailable
from services.shopify_adapter.store import tables
from services.shopify_adapter.sync.worker import backoff_s
from services.shopify_adapter.translate.fulfillment import (
    existing_fulfillment,
    fulfillment_input,
    tracking_numbers,
)
from services.shopify_adapter.translate.order import TranslationError

log = logging.getLogger(__name__)

#: Attempts while the order is unknown to the adapter and to the orders service, before giving up.
MAX_UNKNOWN_ORDER_ATTEMPTS = 12
#: Jobs started per look (besides those in progress).
BATCH = 20

# Built once, on the tables, run as compiled statements (libs.store.Compiled) and given their
# parameters: every poll and every job runs them, and an ORM statement built per call costs several
# times its execution (decision 0029).
_JOB = tables.FulfillmentJob.__table__
_DUE = Compiled(
    select(_JOB.c.shipment_id, _JOB.c.order_id)
    .where(_JOB.c.status == tables.PENDING, _JOB.c.next_attempt_at <= bindparam("b_now"))
    .order_by(_JOB.c.created_at)
    .limit(bindparam("b_limit"))
)
_CHANNEL_ORDER = tables.ChannelOrder.__table__
_JOB_ROW = Compiled(
    select(
        _JOB.c.status,
        _JOB.c.order_id,
        _JOB.c.notice,
        _JOB.c.correlation_id,
        _JOB.c.causation_id,
        _JOB.c.attempts,
        # The Shopify order, when this adapter ingested the order (else the orders service is asked).
        select(_CHANNEL_ORDER.c.order_gid)
        .where(_CHANNEL_ORDER.c.order_id == _JOB.c.order_id)
        .limit(1)
        .scalar_subquery()
        .label("order_gid"),
    ).where(_JOB.c.shipment_id == bindparam("b_shipment_id"))
)
#: SET gets the columns given with `b_shipment_id`.
_UPDATE_JOB = Compiled(update(_JOB).where(_JOB.c.shipment_id == bindparam("b_shipment_id")))


class OrderNotMapped(Exception):
    """The shipment's order has no known Shopify order yet."""


class FulfillmentWorker:
    """Works pending fulfillment jobs.

    Args:
        db: the service database.
        admin: the Admin API client.
        orders: the orders service (to find the Shopify order of an order not ingested here).
        outbox_add: `bus.outbox.add`.
        retry_max_s: back-off ceiling.
        concurrency: jobs (of different orders) worked at once.
    """

    def __init__(
        self,
        db: Database,
        admin: ShopifyAdmin,
        orders: OrdersClient,
        outbox_add: Any,
        *,
        retry_max_s: float = 300.0,
        concurrency: int = 8,
    ) -> None:
        self.db = db
        self._lanes = Lanes(concurrency=concurrency, name="shopify-fulfillments")
        self.admin = admin
        self.orders = orders
        self.outbox_add = outbox_add
        self.retry_max_s = retry_max_s

    async def step(self) -> bool:
        """Start the due jobs not already being worked; True when a full batch was started (more
        may wait).

        Jobs run in tasks as soon as they are found (`libs.lifecycle.lanes.Lanes`): a flash sale's
        shipments arrive in waves, each job waits on two Admin API round trips, and a job found
        while others are in flight starts at once instead of after them. Jobs of different orders
        run at once; jobs of one order one after another, so two shipments never read the same
        open fulfillment order lines at the same time. `close` waits for them.
        """
        limit = BATCH + len(self._lanes)  # the jobs in progress are still pending
        found = (await self.db.fetch(_DUE, {"b_now": datetime.now(UTC), "b_limit": limit})).all()
        due = [(shipment_id, order_id) for shipment_id, order_id in found if shipment_id not in self._lanes]
        for shipment_id, order_id in due[:BATCH]:
            self._lanes.start(shipment_id, order_id, partial(self.work, shipment_id))
        return len(due) >= BATCH

    async def idle(self) -> None:
        """Wait until the jobs started so far are worked."""
        await self._lanes.idle()

    async def close(self, grace: float = 5.0) -> None:
        """Let the jobs in progress finish for `grace` seconds, then cancel the rest (they stay
        pending; the look-up before `fulfillmentCreate` makes working one again safe)."""
        await self._lanes.close(grace)

    async def _order_gid(self, order_id: str, ingested_gid: str | None) -> str:
        if ingested_gid:
            return ingested_gid
        ref = await self.orders.channel_order(order_id)
        if ref is None or ref.system != common_pb2.SOURCE_SYSTEM_SHOPIFY or not ref.id:
            raise OrderNotMapped(f"order {order_id} has no known Shopify order")
        return ref.id

    async def work(self, shipment_id: str) -> str:
        """Work one job; return its new status."""
        job = (await self.db.fetch(_JOB_ROW, {"b_shipment_id": shipment_id})).first()
        if job is None or job.status != tables.PENDING:
            return job.status if job else "missing"
        started = time.perf_counter()
        notice = shipments_pb2.ShipmentNotice.FromString(job.notice)
        try:
            order_gid = await self._order_gid(job.order_id, job.order_gid)
            order = await self.admin.fulfillment_orders(order_gid)
            if order is None:
                raise ShopifyError(f"Shopify order {order_gid} not found")
            made = existing_fulfillment(order.get("fulfillments") or [], tracking_numbers(notice))
            if made is None:
                made = await self.admin.create_fulfillment(
                    fulfillment_input(notice, (order.get("fulfillmentOrders") or {}).get("nodes") or [])
                )
        except (OrdersUnavailable, ShopifyTransient, OrderNotMapped) as exc:
            attempts = job.attempts + 1
            give_up = isinstance(exc, OrderNotMapped) and attempts >= MAX_UNKNOWN_ORDER_ATTEMPTS
            await self._settle(
                shipment_id,
                status=tables.FAILED if give_up else tables.PENDING,
                attempts=attempts,
                last_error=f"{type(exc).__name__}: {exc}"[:1000],
                next_attempt_at=datetime.now(UTC) + timedelta(seconds=backoff_s(attempts, self.retry_max_s)),
            )
            record_outcome("shopify-adapter.fulfillment", "business_error" if give_up else "retry")
            return tables.FAILED if give_up else tables.PENDING
        except (TranslationError, ShopifyError, OrdersRefused) as exc:
            await self._settle(
                shipment_id,
                status=tables.FAILED,
                attempts=job.attempts + 1,
                last_error=f"{type(exc).__name__}: {exc}"[:1000],
            )
            record_outcome("shopify-adapter.fulfillment", "business_error", time.perf_counter() - started)
            log.warning("fulfillment failed", extra={"shipment_id": shipment_id, "reason": str(exc)[:300]})
            return tables.FAILED

        async def done(session: AsyncSession) -> None:
            await session.execute(
                _UPDATE_JOB,
                {
                    "b_shipment_id": shipment_id,
                    "status": tables.DONE,
                    "attempts": job.attempts + 1,
                    "last_error": None,
                    "fulfillment_gid": made["id"],
                    "done_at": datetime.now(UTC),
                },
            )
            await self.outbox_add(
                session,
                shipment_events.ChannelFulfillmentCreated(
                    meta=common_pb2.EventMeta(source_system=common_pb2.SOURCE_SYSTEM_SHOPIFY),
                    shipment_id=shipment_id,
                    order_id=job.order_id,
                    channel_fulfillment=common_pb2.ExternalRef(
                        system=common_pb2.SOURCE_SYSTEM_SHOPIFY, id=made["id"], name=made.get("name") or ""
                    ),
                ),
                correlation_id=job.correlation_id,
                causation_id=job.causation_id,
                key=job.order_id,
            )

        # The jobs of a 3PL wave finish together: their records share a commit (libs.store.group).
        await self.db.group.run(done)
        record_outcome("shopify-adapter.fulfillment", "ok", time.perf_counter() - started)
        return tables.DONE

    async def _settle(self, shipment_id: str, **values: Any) -> None:
        async def settle(session: AsyncSession) -> None:
            await session.execute(_UPDATE_JOB, {"b_shipment_id": shipment_id, **values})

        await self.db.group.run(settle)
