"""Webhook ingress: `POST /webhooks/shopify` (MISSION O1, S1; reliability.md A6, C1).

In order: body size limit (413), HMAC-SHA256 of the raw body against each configured secret in
constant time (401, nothing stored), shop-domain allow-list (403), required headers and a JSON
object body (400 with a stable code, the delivery stored as `rejected` for inspection), then the
raw delivery is stored, deduplicated by `X-Shopify-Event-Id` through a unique constraint, and only
then answered 200. Processing happens later in `sync.deliveries`. Bodies and the HMAC header are
never logged.

Deliveries that arrive together are stored together (the database's group commit,
`libs.store.group`, as urgent units): while one transaction commits, the next arrivals queue, and
the next transaction stores them all, so a burst costs one commit (one fsync) per batch instead of
one per webhook. Each request still gets its 200 only after the transaction holding its row has
committed; a row that cannot be stored fails its own request alone (503), never its neighbours.

The ingress also says when it receives a burst (`quiet`): the delivery worker waits, for a bounded
time, until the burst is answered before it starts stored deliveries, so the process's CPU answers
Shopify first (docs/decisions/0035-the-ingress-answers-before-the-worker-starts.md).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from libs.store import Database
from services.shopify_adapter.store import tables
from services.shopify_adapter.store.queries import insert_if_absent_statements
from services.shopify_adapter.translate.order import MalformedBody, parse_body

log = logging.getLogger(__name__)

WEBHOOKS = Counter(
    "shopify_webhooks_total",
    "Webhook requests by outcome (stored, duplicate, rejected, unauthorized, forbidden, too_large, error).",
    ["outcome"],
)
SIGNATURES = Counter(
    "shopify_webhook_signature_matches_total",
    "Valid webhook signatures by which configured secret matched (1 = first, the newest).",
    ["secret"],
)


def verify_signature(body: bytes, signature: str | None, secrets: Sequence[str]) -> int | None:
    """The 1-based index of the secret whose HMAC-SHA256 of `body` equals `signature`, else None.

    Every secret is compared with `hmac.compare_digest`, on the raw bytes, before any parsing.
    """
    if not signature or not secrets:
        return None
    given = signature.strip().encode()
    matched = None
    for index, secret in enumerate(secrets, start=1):
        expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
        if hmac.compare_digest(expected, given) and matched is None:
            matched = index
    return matched


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


# Built once per dialect, on the table, run as a compiled statement and given each row: every
# webhook runs it, and an ORM statement built per call costs several times its execution
# (decision 0029).
_INSERT = insert_if_absent_statements(tables.WebhookDelivery.__table__, ["event_id"])


class WebhookIngress:
    """The Starlette app that receives Shopify webhooks and stores them durably.

    Args:
        db: the service database.
        secrets: returns the current signing secrets (newest first; two during rotation).
        shop_domains: returns the allow-listed shop domains (lower case).
        max_body_bytes: largest body accepted.
        on_stored: called after a new delivery is committed (wakes the worker).
        busy_above: more requests than this in flight is a burst (`quiet`).
    """

    def __init__(
        self,
        db: Database,
        *,
        secrets: Callable[[], Sequence[str]],
        shop_domains: Callable[[], frozenset[str]],
        max_body_bytes: int,
        on_stored: Callable[[], None] = lambda: None,
        busy_above: int = 16,
    ) -> None:
        self.db = db
        self._secrets = secrets
        self._domains = shop_domains
        self.max_body_bytes = max_body_bytes
        self._on_stored = on_stored
        self._insert = _INSERT[db.dialect]
        self._in_flight = 0
        self._busy_above = busy_above
        self._quiet = asyncio.Event()
        self._quiet.set()
        self.app = Starlette(routes=[Route("/webhooks/shopify", self.receive, methods=["POST"])])

    async def _read_limited(self, request: Request) -> bytes | None:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def store(self, row: dict[str, Any]) -> bool:
        """Store `row` unless its event id is stored already; True when it was inserted. Returns
        once the transaction holding it has committed."""

        async def unit(session: AsyncSession) -> bool:
            return bool((await session.execute(self._insert, row)).rowcount)

        # Urgent: Shopify waits for the 2xx, background writers can wait for us.
        return await self.db.group.run(unit, urgent=True)

    async def quiet(self, within_s: float) -> None:
        """Return once no more than `busy_above` webhook requests are being handled (no burst is
        being received), or after `within_s` seconds."""
        if within_s > 0 and not self._quiet.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), within_s)

    async def receive(self, request: Request) -> Response:
        """Handle one webhook POST."""
        self._in_flight += 1
        if self._in_flight > self._busy_above:
            self._quiet.clear()
        try:
            return await self._receive(request)
        finally:
            self._in_flight -= 1
            if self._in_flight <= self._busy_above:
                self._quiet.set()

    async def _receive(self, request: Request) -> Response:
        body = await self._read_limited(request)
        if body is None:
            WEBHOOKS.labels("too_large").inc()
            return _error(413, "body_too_large", f"body exceeds {self.max_body_bytes} bytes")
        headers = request.headers
        matched = verify_signature(body, headers.get("x-shopify-hmac-sha256"), self._secrets())
        if matched is None:
            WEBHOOKS.labels("unauthorized").inc()
            code = "missing_signature" if not headers.get("x-shopify-hmac-sha256") else "invalid_signature"
            return _error(401, code, "webhook signature missing or invalid")
        SIGNATURES.labels(str(matched)).inc()
        shop = (headers.get("x-shopify-shop-domain") or "").strip().lower()
        if shop not in self._domains():
            WEBHOOKS.labels("forbidden").inc()
            return _error(403, "shop_not_allowed", "shop domain is not on the allow-list")

        topic = (headers.get("x-shopify-topic") or "").strip()
        event_id = (headers.get("x-shopify-event-id") or "").strip()
        problem: tuple[str, str] | None = None
        if not topic:
            problem = ("missing_topic", "X-Shopify-Topic header is missing")
        elif not event_id or len(event_id) > 128:
            problem = ("missing_event_id", "X-Shopify-Event-Id header is missing or too long")
        else:
            try:
                parse_body(body)
            except MalformedBody as exc:
                problem = ("malformed_body", str(exc))
        now = datetime.now(UTC)
        row = {
            "event_id": event_id if event_id and len(event_id) <= 128 else f"missing:{uuid.uuid4()}",
            "webhook_id": (headers.get("x-shopify-webhook-id") or "")[:128] or None,
            "topic": topic[:128] or "unknown",
            "shop_domain": shop,
            "api_version": (headers.get("x-shopify-api-version") or "")[:32] or None,
            "triggered_at": (headers.get("x-shopify-triggered-at") or "")[:64] or None,
            "body": body,
            "status": tables.REJECTED if problem else tables.PENDING,
            "attempts": 0,
            "last_error": f"{problem[0]}: {problem[1]}" if problem else None,
            "received_at": now,
            "next_attempt_at": now,
        }
        try:
            inserted = await self.store(row)
        except Exception:  # the store is down: Shopify retries, nothing is lost
            log.exception("could not store webhook", extra={"topic": topic, "event_id": event_id})
            WEBHOOKS.labels("error").inc()
            return _error(503, "store_unavailable", "delivery could not be stored; retry later")
        if problem:
            WEBHOOKS.labels("rejected").inc()
            log.warning("webhook rejected", extra={"topic": topic, "event_id": event_id, "code": problem[0]})
            return _error(400, problem[0], problem[1])
        if not inserted:
            WEBHOOKS.labels("duplicate").inc()
            return JSONResponse({"status": "duplicate"})
        WEBHOOKS.labels("stored").inc()
        self._on_stored()
        return JSONResponse({"status": "stored"})
