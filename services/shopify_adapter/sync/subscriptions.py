"""Webhook subscriptions kept in place (O2): listed at start and periodically, missing ones created.

Shopify deletes a subscription after repeated failed deliveries; whatever it sent meanwhile is
recovered by the reconciliation poll, and this keeper re-registers the subscription.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.shopify_adapter.clients.admin import ShopifyAdmin

log = logging.getLogger(__name__)

#: The topics the mesh needs, as `WebhookSubscriptionTopic` values.
TOPICS = (
    "ORDERS_CREATE",
    "ORDERS_UPDATED",
    "ORDERS_CANCELLED",
    "ORDERS_EDITED",
    "REFUNDS_CREATE",
    "RETURNS_REQUEST",
)


@dataclass(frozen=True)
class SubscriptionCheck:
    """One check: topics compared and the ones (re)created."""

    compared: int
    created: tuple[str, ...]


class SubscriptionKeeper:
    """Makes sure every topic in `topics` has a subscription delivering to `callback_url`."""

    def __init__(self, admin: ShopifyAdmin, callback_url: str, topics: tuple[str, ...] = TOPICS) -> None:
        self.admin = admin
        self.callback_url = callback_url
        self.topics = topics

    async def ensure(self) -> SubscriptionCheck:
        """List the subscriptions and create the missing ones.

        Raises:
            ShopifyTransient, ShopifyError: from the Admin API.
        """
        existing = await self.admin.subscriptions()
        present = {
            s["topic"]
            for s in existing
            if self.callback_url in (s.get("uri"), (s.get("endpoint") or {}).get("callbackUrl"))
        }
        created = []
        for topic in self.topics:
            if topic not in present:
                await self.admin.create_subscription(topic, self.callback_url)
                created.append(topic)
        if created:
            log.info("webhook subscriptions created", extra={"topics": created})
        return SubscriptionCheck(compared=len(self.topics), created=tuple(created))

    async def step(self) -> bool:
        """One periodic check (for `sync.worker.Loop`)."""
        await self.ensure()
        return False
