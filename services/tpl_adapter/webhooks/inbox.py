"""The webhook inbox: a verified delivery is stored (deduplicated by its id and body) before the
3PL gets its 2xx; a processor then reports it to the shipments service, retrying transient
failures with back-off and keeping permanent ones as `failed` for inspection.

The warehouse ships in waves, so deliveries come in batches: each is started as soon as it is
found (`libs.lifecycle.lanes.Lanes`), those of different 3PL orders at once (`concurrency`),
those of one order one after another, "shipped" before "delivered" when both are found together
(`process_due`)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.lifecycle.lanes import Lanes
from libs.store import Compiled, Database
from libs.telemetry import record_outcome
from services.tpl_adapter.receipts import ReceiptReporter
from services.tpl_adapter.store import WebhookDeliveryRow
from services.tpl_adapter.translate.receipt import receipt_from_return
from services.tpl_adapter.translate.shipment import notice_from_webhook, parse_time
from services.tpl_adapter.webhooks.reporter import ReportFailed, ShipmentReporter

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0

# Built once on the table and run as compiled statements (libs.store.Compiled): every delivery
# runs them, and an ORM add, get or flush costs several times the SQL it sends.
_DELIVERY = WebhookDeliveryRow.__table__
_STORE = Compiled(insert(_DELIVERY))
_PENDING = Compiled(
    select(
        _DELIVERY.c.delivery_key,
        _DELIVERY.c.topic,
        _DELIVERY.c.body,
        _DELIVERY.c.received_at,
        _DELIVERY.c.next_attempt_at,
    )
    .where(_DELIVERY.c.status == "pending")
    .order_by(_DELIVERY.c.received_at)
    .limit(bindparam("b_limit"))
)
#: Deliveries looked at per pass, besides those in progress.
_BATCH = 100
_KEY = _DELIVERY.c.delivery_key == bindparam("b_delivery_key")
_ATTEMPTS = Compiled(select(_DELIVERY.c.attempts).where(_KEY))
_SETTLE = Compiled(update(_DELIVERY).where(_KEY))


def _now() -> datetime:
    return datetime.now(UTC)


#: The handler name of the inbox's outcomes (`retail_handler_outcomes_total`): a delivery that
#: fails for good counts as `business_error`, as the shopify-adapter's do, so one alert sees both.
HANDLER = "tpl-adapter.webhook"
_OUTCOMES = {"done": "ok", "pending": "retry", "failed": "business_error"}

#: The order `process_due` starts the topics it finds in; others after these.
_TOPIC_RANK = {"order.shipped": 0, "order.shipment.delivered": 1}


def _lane(row: Row[Any], payload: Any) -> str:
    """Deliveries about one 3PL order (its shipments' "shipped" and "delivered") share a lane; a
    return, or a body that cannot be read, has a lane of its own."""
    if row.topic.startswith("order.") and isinstance(payload, dict) and payload.get("order_id") is not None:
        return f"order:{payload['order_id']}"
    return f"delivery:{row.delivery_key}"


def _parsed(body: bytes) -> Any:
    """The JSON body, or the error that reading it raised (the delivery then fails as unusable)."""
    try:
        return json.loads(body)
    except ValueError as bad:
        return bad


class WebhookInbox:
    """Stores deliveries and processes them in a background task.

    Args:
        db: The adapter's database.
        reporter: Reports shipments and deliveries to the shipments service.
        retry_interval_s: Base back-off of a transient failure (doubles per attempt).
        receipts: Records completed returns with the inventory service.
        concurrency: Deliveries (of different 3PL orders) reported at once.
    """

    def __init__(
        self,
        db: Database,
        reporter: ShipmentReporter,
        *,
        retry_interval_s: float = 5.0,
        receipts: ReceiptReporter | None = None,
        concurrency: int = 8,
    ) -> None:
        self._db = db
        self._lanes = Lanes(concurrency=concurrency, name="tpl-webhook-inbox")
        self._reporter = reporter
        self._receipts = receipts
        self._retry_s = retry_interval_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def store(self, webhook_id: str, topic: str, body: bytes) -> bool:
        """Store one delivery durably; False when it was stored before (a resend)."""
        key = f"{webhook_id}:{hashlib.sha256(body).hexdigest()[:32]}"
        now = _now()
        row = {
            "delivery_key": key,
            "webhook_id": webhook_id[:128],
            "topic": topic[:64],
            "body": body,
            "status": "pending",
            "attempts": 0,
            "received_at": now,
            "next_attempt_at": now,
        }

        async def unit(session: AsyncSession) -> None:
            await session.execute(_STORE, row)

        try:
            # Urgent: the 3PL waits for the 2xx, background writers can wait for us. A wave's
            # deliveries arrive together and share a commit (libs.store.group).
            await self._db.group.run(unit, urgent=True)
        except IntegrityError:
            return False
        self._wake.set()
        return True

    def start(self) -> None:
        """Start processing stored deliveries."""
        self._task = asyncio.create_task(self._run(), name="tpl-webhook-inbox")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop processing: the deliveries in progress get `grace` seconds, the rest stay stored
        for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._lanes.close(grace)

    async def idle(self) -> None:
        """Wait until the deliveries started so far are processed."""
        await self._lanes.idle()

    async def _run(self) -> None:
        while True:
            # Cleared before the pass, so a delivery stored during it starts the next one at once.
            self._wake.clear()
            try:
                delay = await self.process_due()
            except Exception:  # a database hiccup must not end the processor
                log.exception("webhook inbox pass failed")
                delay = self._retry_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def process_due(self) -> float:
        """Start every delivery that is due and not in progress; returns seconds until the next
        one is.

        A shipment's "shipped" goes before any "delivered" found with it: the 3PL sends its
        webhooks at once and they may arrive the other way round, and a delivery reported before
        its shipment is recorded would wait a back-off for nothing."""
        # A read of its own (no session, decision 0033): with each item started when found, this
        # runs for every stored delivery of a wave.
        rows = (await self._db.fetch(_PENDING, {"b_limit": _BATCH + len(self._lanes)})).all()
        now = _now()
        next_due = self._retry_s
        due = []
        for row in rows:
            if row.delivery_key in self._lanes:
                continue
            if row.next_attempt_at > now:
                next_due = min(next_due, (row.next_attempt_at - now).total_seconds())
            else:
                due.append(row)
        # A stable sort: within a topic, oldest first still.
        due.sort(key=lambda row: _TOPIC_RANK.get(row.topic, len(_TOPIC_RANK)))
        for row in due:
            payload = _parsed(row.body)
            self._lanes.start(row.delivery_key, _lane(row, payload), partial(self._process, row, payload))
        return max(0.05, next_due)

    async def _process(self, row: Row[Any], payload: Any) -> None:
        started = time.perf_counter()
        status, error, retry_s = "done", None, self._retry_s
        try:
            if isinstance(payload, ValueError):
                raise payload
            await self.apply(row.topic, payload)
        except ReportFailed as failure:
            status = "pending" if failure.transient else "failed"
            error = str(failure)
            retry_s = failure.retry_s or retry_s
            if failure.transient and failure.patience_s is not None:
                waited = (_now() - row.received_at).total_seconds()
                if waited > failure.patience_s:
                    status, error = "failed", f"{failure} (still after {waited:.0f} s)"
        except (ValueError, KeyError, TypeError) as bad:
            status, error = "failed", f"unusable body: {bad!r}"

        async def settle(session: AsyncSession) -> None:
            key = {"b_delivery_key": row.delivery_key}
            attempts = (await session.execute(_ATTEMPTS, key)).scalar_one() + 1
            settled: dict[str, Any] = {"attempts": attempts, "status": status, "last_error": error}
            if status == "pending":
                backoff = min(MAX_BACKOFF_S, retry_s * 2 ** (attempts - 1))
                settled["next_attempt_at"] = _now() + timedelta(seconds=backoff)
            else:
                settled["processed_at"] = _now()
            await session.execute(_SETTLE, {**key, **settled})

        # With the other lanes' settles of the wave, in one commit.
        await self._db.group.run(settle)
        record_outcome(HANDLER, _OUTCOMES[status], time.perf_counter() - started)
        if status == "pending":
            self._wake.set()  # the loop's next wait is until this retry, not its default
        if error:
            log.warning(
                "3PL webhook not applied", extra={"topic": row.topic, "status": status, "error": error}
            )

    async def apply(self, topic: str, payload: dict) -> None:
        """Report one delivery's fact."""
        if topic == "order.shipped":
            release = await self._reporter.release(str(payload["reference_id"]))
            notice = notice_from_webhook(payload, release)
            await self._reporter.shipped(f"tpl-shipment:{payload['id']}", notice)
        elif topic == "order.shipment.delivered":
            at = parse_time(payload["delivery_date"]) if payload.get("delivery_date") else _now()
            await self._reporter.delivered(f"tpl-delivered:{payload['id']}", str(payload["id"]), at)
        elif topic == "return.completed":
            # Stock effect only (restock or damaged, per line); the returns service's part of R1
            # is a later issue (docs/decisions/0016-return-to-stock-through-tpl-adapter.md).
            request = receipt_from_return(payload)
            if request is not None and self._receipts is not None:
                await self._receipts.record(request)
