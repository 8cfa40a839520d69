"""Webhook delivery as Shopify does it: signed POSTs, a 5 s deadline, back-off retries, removal.

Every change the store announces becomes one *event* (one ``X-Shopify-Event-Id``, one body,
serialised once: retries carry the original bytes). Each subscription to the topic gets its own
*webhook* (``X-Shopify-Webhook-Id``), delivered by its own asyncio task with aiohttp. A failed attempt
(no 2xx within the timeout) is retried after ``base * 2**(n-1)`` seconds times the time scale, at
most ``max_retries`` times. Each failure adds to the subscription's consecutive failures; a success
resets them; reaching the removal threshold deletes the subscription and abandons its retries.

Delivery faults (``PUT /_sandbox/webhook-faults``), drawn from a generator seeded by the stand-in's
seed: ``drop`` (never sent), ``duplicate`` (sent twice: same event id and body, another webhook id),
``delay`` (the first attempt waits ``delay_ms``), ``reorder`` (parked until the next webhook to the
same subscription has been sent).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from sandbox.common.faults import FaultInjector
from sandbox.shopify.config import API_VERSION, ShopifySettings
from sandbox.shopify.model import WebhookSubscription


class _SendClock:
    """Times one attempt from the moment its request leaves (connecting or sending on a kept
    connection), as the receiver experiences it; waiting for a free connection of ours is not
    counted."""

    def __init__(self) -> None:
        self.queued = time.monotonic()
        self.left: float | None = None

    def leaves(self) -> None:
        if self.left is None:
            self.left = time.monotonic()

    def elapsed_ms(self) -> float:
        return (time.monotonic() - (self.left if self.left is not None else self.queued)) * 1000


async def _leaves(_session: Any, context: Any, _params: Any) -> None:
    context.trace_request_ctx.leaves()


def _send_trace() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    trace.on_connection_create_start.append(_leaves)
    trace.on_connection_reuseconn.append(_leaves)
    return trace


def sign(body: bytes, secret: str) -> str:
    """``X-Shopify-Hmac-Sha256``: base64 of the HMAC-SHA256 of the raw body keyed with the app secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class DeliveryFaults(BaseModel):
    """Delivery faults; each rate is a probability per webhook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drop_rate: float = Field(0.0, ge=0.0, le=1.0, description="webhooks never sent")
    duplicate_rate: float = Field(0.0, ge=0.0, le=1.0, description="webhooks sent twice")
    delay_rate: float = Field(0.0, ge=0.0, le=1.0, description="webhooks whose first attempt waits delay_ms")
    delay_ms: int = Field(0, ge=0, description="wait before a delayed webhook's first attempt")
    reorder_rate: float = Field(0.0, ge=0.0, le=1.0, description="webhooks held back behind the next one")
    reorder_max_hold_ms: int = Field(2000, ge=0, description="a held webhook goes out after this anyway")
    topics: list[str] | None = Field(None, description="only these topics (default: every topic)")


@dataclass
class Event:
    """One change, as announced: topic, serialised body, event id, trigger time."""

    event_id: str
    topic: str
    body: bytes
    triggered_at: str


@dataclass
class Webhook:
    """One event for one subscription."""

    webhook_id: str
    event: Event
    subscription_id: int
    uri: str
    fault: str | None = None
    attempts: int = 0


@dataclass
class Attempt:
    """One row of ``GET /_sandbox/deliveries``."""

    seq: int
    webhook_id: str
    event_id: str
    topic: str
    subscription_id: str
    uri: str
    attempt: int
    outcome: str
    status_code: int | None = None
    error: str | None = None
    fault: str | None = None
    at: str = ""
    duration_ms: float = 0.0
    next_retry_in_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class WebhookDispatcher:
    """Delivers announced events to the subscriptions in ``subscriptions``.

    Args:
        settings: timeouts, retry schedule, removal threshold, secret, shop domain, seed.
        subscriptions: the live subscription table (the store's), read at trigger time and
            pruned here when a subscription is removed for failing.
        faults: the stand-in's fault injector; ``webhook.<topic>`` faults fail attempts.
    """

    def __init__(
        self,
        settings: ShopifySettings,
        subscriptions: Callable[[], dict[int, WebhookSubscription]],
        faults: FaultInjector,
    ) -> None:
        self._settings = settings
        self._subscriptions = subscriptions
        self._faults = faults
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self._pending: list[Event] = []
        self._parked: dict[int, tuple[Webhook, asyncio.TimerHandle | None]] = {}
        self.reset(settings.seed)

    def reset(self, seed: int) -> None:
        """Drop queued and in-flight deliveries, forget the log and the faults, reseed."""
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        for _, timer in self._parked.values():
            if timer is not None:
                timer.cancel()
        self._parked.clear()
        with self._lock:
            self._rng = random.Random(f"webhooks:{seed}")
            self._delivery_faults = DeliveryFaults()
            self._log: list[Attempt] = []
            self._seq = 0
            self._pending = []
            self.removed: list[dict[str, Any]] = []

    # ----- lifecycle ------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[WebhookDispatcher]:
        """Run deliveries on the current event loop until the context exits."""
        # aiohttp, not httpx: httpx's pool costs O(connections) per request, and a 2,000-webhook
        # burst through 1,000 connections then burns minutes of the stand-in's CPU.
        # Waiting for one of our own connections is not the receiver's time: no pool timeout.
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self._settings.webhook_connect_timeout_s,
            sock_read=self._settings.webhook_timeout_s,
        )
        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._settings.webhook_max_connections),
            timeout=timeout,
            trace_configs=[_send_trace()],
            trust_env=False,
        )
        self._loop = asyncio.get_running_loop()
        for event in self._pending:
            self._fan_out(event)
        self._pending = []
        try:
            yield self
        finally:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for _, timer in self._parked.values():
                if timer is not None:
                    timer.cancel()
            self._parked.clear()
            await self._client.close()
            self._loop = None

    # ----- faults and log -------------------------------------------------------------------------

    def set_faults(self, faults: DeliveryFaults) -> None:
        """Replace the delivery faults."""
        with self._lock:
            self._delivery_faults = faults

    def faults_snapshot(self) -> dict[str, Any]:
        """The delivery faults, JSON-ready."""
        with self._lock:
            return self._delivery_faults.model_dump()

    def deliveries(self, topic: str | None = None) -> list[dict[str, Any]]:
        """Every recorded attempt (and drop, and removal), oldest first."""
        with self._lock:
            rows = [asdict(a) for a in self._log if topic is None or a.topic == topic]
        return rows

    def _record(self, hook: Webhook, outcome: str, **values: Any) -> None:
        with self._lock:
            self._seq += 1
            self._log.append(
                Attempt(
                    seq=self._seq,
                    webhook_id=hook.webhook_id,
                    event_id=hook.event.event_id,
                    topic=hook.event.topic,
                    subscription_id=f"gid://shopify/WebhookSubscription/{hook.subscription_id}",
                    uri=hook.uri,
                    attempt=hook.attempts,
                    outcome=outcome,
                    fault=hook.fault,
                    at=datetime.now(UTC).isoformat(),
                    **values,
                )
            )

    def _roll(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def _uuid(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    # ----- publishing ----------------------------------------------------------------------------

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Announce a change: serialise once, then one webhook per subscription to ``topic``."""
        now = datetime.now(UTC)
        event = Event(
            event_id=self._uuid(),
            topic=topic,
            body=json.dumps(payload, separators=(",", ":")).encode(),
            triggered_at=now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z",
        )
        loop = self._loop
        if loop is None:
            self._pending.append(event)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fan_out(event)
        else:
            loop.call_soon_threadsafe(self._fan_out, event)

    def _fan_out(self, event: Event) -> None:
        # Subscriptions and their addresses are taken at trigger time (Shopify's rule for retries).
        targets = [s for s in self._subscriptions().values() if s.topic == event.topic]
        with self._lock:
            faults = self._delivery_faults
        applies = faults.topics is None or event.topic in faults.topics
        for sub in sorted(targets, key=lambda s: s.id):
            hook = Webhook(self._uuid(), event, sub.id, sub.uri)
            if applies and self._roll(faults.drop_rate):
                hook.fault = "dropped"
                self._record(hook, "dropped")
                continue
            copies = [hook]
            if applies and self._roll(faults.duplicate_rate):
                hook.fault = "duplicated"
                copies.append(Webhook(self._uuid(), event, sub.id, sub.uri, fault="duplicate"))
            delay = faults.delay_ms / 1000 if applies and self._roll(faults.delay_rate) else 0.0
            if delay:
                for copy in copies:
                    copy.fault = copy.fault or "delayed"
            if applies and sub.id not in self._parked and self._roll(faults.reorder_rate):
                hook.fault = "reordered"
                self._park(hook, faults.reorder_max_hold_ms / 1000)
                copies = copies[1:]
            for copy in copies:
                self._spawn(copy, delay)

    def _park(self, hook: Webhook, max_hold_s: float) -> None:
        assert self._loop is not None
        timer = self._loop.call_later(max_hold_s, self._unpark, hook.subscription_id)
        self._parked[hook.subscription_id] = (hook, timer)

    def _unpark(self, subscription_id: int) -> None:
        parked = self._parked.pop(subscription_id, None)
        if parked is not None:
            hook, timer = parked
            if timer is not None:
                timer.cancel()
            self._spawn(hook, 0.0)

    def _spawn(self, hook: Webhook, delay_s: float) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(hook, delay_s))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----- delivery ------------------------------------------------------------------------------

    def _headers(self, hook: Webhook) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": "Shopify-Captain-Hook",
            "X-Shopify-Topic": hook.event.topic,
            "X-Shopify-Hmac-Sha256": sign(hook.event.body, self._settings.webhook_secret),
            "X-Shopify-Shop-Domain": self._settings.shop_domain,
            "X-Shopify-API-Version": API_VERSION,
            "X-Shopify-Webhook-Id": hook.webhook_id,
            "X-Shopify-Event-Id": hook.event.event_id,
            "X-Shopify-Triggered-At": hook.event.triggered_at,
        }

    def backoff_s(self, retry: int) -> float:
        """Delay before retry number ``retry`` (1-based), time scale applied."""
        return self._settings.webhook_backoff_base_s * 2 ** (retry - 1) * self._settings.webhook_time_scale

    async def _deliver(self, hook: Webhook, delay_s: float) -> None:
        if delay_s:
            await asyncio.sleep(delay_s)
        assert self._client is not None
        headers = self._headers(hook)
        sub = self._subscriptions().get(hook.subscription_id)
        if sub is not None and sub.name:
            headers["X-Shopify-Name"] = sub.name
        while True:
            sub = self._subscriptions().get(hook.subscription_id)
            if sub is None:
                self._record(hook, "abandoned", error="subscription removed")
                return
            hook.attempts += 1
            sent = _SendClock()
            status, error = None, None
            early = await self._faults.before(f"webhook.{hook.event.topic}")
            if early is not None:
                error = f"sandbox fault: {early.status_code}"
            else:
                try:
                    async with self._client.post(
                        hook.uri,
                        data=hook.event.body,
                        headers=headers,
                        allow_redirects=False,
                        trace_request_ctx=sent,
                    ) as response:
                        await response.read()
                        status = response.status
                except TimeoutError:
                    error = "timeout"
                except aiohttp.ClientError as exc:
                    error = f"{type(exc).__name__}: {exc}"
            duration = sent.elapsed_ms()
            if status is not None and duration > self._settings.webhook_timeout_s * 1000:
                status, error = None, "timeout"  # answered, but after Shopify had given up
            self._release_parked(hook)
            if status is not None and 200 <= status < 300:
                sub.consecutive_failures = 0
                self._record(hook, "delivered", status_code=status, duration_ms=duration)
                return
            sub.consecutive_failures += 1
            if sub.consecutive_failures >= self._settings.webhook_remove_after_failures:
                self._subscriptions().pop(sub.id, None)
                self._record(hook, "failed", status_code=status, error=error, duration_ms=duration)
                self._record(
                    hook, "subscription_removed", error=f"{sub.consecutive_failures} consecutive failures"
                )
                with self._lock:
                    self.removed.append(
                        {
                            "id": sub.gid,
                            "topic": sub.topic,
                            "uri": sub.uri,
                            "consecutive_failures": sub.consecutive_failures,
                        }
                    )
                return
            if hook.attempts > self._settings.webhook_max_retries:
                self._record(hook, "failed", status_code=status, error=error, duration_ms=duration)
                self._record(hook, "gave_up", error=f"{self._settings.webhook_max_retries} retries exhausted")
                return
            wait = self.backoff_s(hook.attempts)
            self._record(
                hook, "failed", status_code=status, error=error, duration_ms=duration, next_retry_in_s=wait
            )
            await asyncio.sleep(wait)

    def _release_parked(self, sent: Webhook) -> None:
        parked = self._parked.get(sent.subscription_id)
        if parked is not None and parked[0] is not sent and sent.attempts == 1:
            self._unpark(sent.subscription_id)
