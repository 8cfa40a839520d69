"""Webhook subscriptions and deliveries with retries and exponential back-off.

Each delivery is POSTed as JSON with ``shipbob-topic`` and Standard-Webhooks style headers
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
``id.timestamp.body`` with the subscription's secret). A non-2xx answer, a timeout or a refused
connection is retried after ``backoff * 2**(attempt-1)`` until ``max_attempts``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from sandbox.common.faults import FaultInjector

TOPICS = (
    "order.shipped",
    "order.shipment.delivered",
    "order.shipment.address.updated",
    "return.completed",
)


@dataclass
class Subscription:
    """One subscriber URL for one topic."""

    id: int
    topic: str
    subscription_url: str
    description: str = ""
    secret: str = field(default_factory=lambda: "whsec_" + secrets.token_hex(16))

    def json(self) -> dict[str, Any]:
        """As the API shows it (the secret included, as it is shown once at creation)."""
        return {
            "id": self.id,
            "topic": self.topic,
            "subscription_url": self.subscription_url,
            "description": self.description,
            "secret": self.secret,
        }


def sign(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` value for a delivery."""
    key = secret.removeprefix("whsec_").encode()
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookDispatcher:
    """Holds the subscriptions and delivers events to them in background tasks.

    Args:
        faults: injector consulted as operation ``webhook.deliver`` before each attempt (an
            injected error counts as a failed attempt, latency delays it).
        timeout_s: per-attempt timeout.
        max_attempts: attempts per delivery, the first included.
        backoff_s: delay before the second attempt; doubles after each failure.
    """

    def __init__(
        self, faults: FaultInjector, *, timeout_s: float, max_attempts: int, backoff_s: float
    ) -> None:
        self.faults = faults
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.subscriptions: dict[int, Subscription] = {}
        self.log: list[dict[str, Any]] = []
        self._next_id = 1
        self._next_message = 1
        self._tasks: set[asyncio.Task] = set()
        self._client: aiohttp.ClientSession | None = None

    def subscribe(self, topic: str, url: str, description: str = "") -> Subscription:
        """Add a subscription (the caller validated the topic)."""
        subscription = Subscription(
            id=self._next_id, topic=topic, subscription_url=url, description=description
        )
        self._next_id += 1
        self.subscriptions[subscription.id] = subscription
        return subscription

    def reset(self) -> None:
        """Forget subscriptions and the delivery log; cancel deliveries in flight."""
        for task in list(self._tasks):
            task.cancel()
        self.subscriptions.clear()
        self.log.clear()

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Deliver ``payload`` to every subscription of ``topic``, in the background."""
        for subscription in list(self.subscriptions.values()):
            if subscription.topic != topic:
                continue
            message_id = f"msg_{self._next_message}"
            self._next_message += 1
            task = asyncio.get_running_loop().create_task(self._deliver(subscription, message_id, payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, subscription: Subscription, message_id: str, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        for attempt in range(1, self.max_attempts + 1):
            timestamp = str(int(time.time()))
            headers = {
                "content-type": "application/json",
                "shipbob-topic": subscription.topic,
                "webhook-id": message_id,
                "webhook-timestamp": timestamp,
                "webhook-signature": sign(subscription.secret, message_id, timestamp, body),
            }
            status: int | None = None
            error = ""
            injected = await self.faults.before("webhook.deliver")
            if injected is not None:
                error = f"sandbox fault {injected.status_code}"
            else:
                try:
                    async with self._http().post(
                        subscription.subscription_url, data=body, headers=headers, allow_redirects=False
                    ) as response:
                        await response.read()
                        status = response.status
                except TimeoutError:
                    error = "TimeoutError"
                except aiohttp.ClientError as exc:
                    error = type(exc).__name__
            ok = status is not None and 200 <= status < 300
            self.log.append(
                {
                    "message_id": message_id,
                    "subscription_id": subscription.id,
                    "topic": subscription.topic,
                    "attempt": attempt,
                    "status": status,
                    "error": error,
                    "delivered": ok,
                }
            )
            if ok or subscription.id not in self.subscriptions:
                return
            if attempt < self.max_attempts:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))

    def _http(self) -> aiohttp.ClientSession:
        # aiohttp, as the Shopify stand-in's sender: httpx's pool costs O(connections) per request
        # and took most of this process's CPU when a 3PL wave notified a few dozen shipments.
        if self._client is None:
            self._client = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s), trust_env=False
            )
        return self._client

    async def aclose(self) -> None:
        """Cancel deliveries in flight and close the HTTP client."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None
