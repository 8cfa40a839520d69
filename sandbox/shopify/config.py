"""Settings of the Shopify stand-in: one frozen object, built by ``__main__`` or by a test."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

API_VERSION = "2026-04"
"""The Admin API version the stand-in implements and reports in ``X-Shopify-API-Version``."""


@dataclass(frozen=True)
class ShopifySettings:
    """Everything the Shopify stand-in can be told at start.

    Attributes:
        seed: seed of the demo data, of generated ids and of the webhook delivery faults.
        shop_domain: the ``*.myshopify.com`` domain sent in ``X-Shopify-Shop-Domain``.
        access_token: the Admin API token expected in ``X-Shopify-Access-Token``.
        webhook_secret: the app's client secret that signs webhooks (``X-Shopify-Hmac-Sha256``).
        throttle_capacity: GraphQL leaky bucket size (``maximumAvailable``); Standard plan 2000.
        throttle_restore_rate: points restored per second (``restoreRate``); Standard plan 100.
        max_query_cost: the single-query cost ceiling (Shopify: 1000).
        webhook_timeout_s: how long a receiver has to answer 2xx (Shopify: 5 s).
        webhook_connect_timeout_s: how long a receiver has to accept the connection (Shopify: 1 s).
        webhook_max_retries: retries after the first attempt (Shopify: 8).
        webhook_backoff_base_s: the first retry's delay; each next one doubles (60 s .. 7680 s, ~4 h).
        webhook_time_scale: multiplies every back-off delay, so tests run the schedule in milliseconds.
        webhook_remove_after_failures: consecutive failed attempts that delete a subscription (8).
        webhook_max_connections: connections open at once to receivers. Shopify sends from many
            machines, so a burst is not queued behind a small pool; the receiver's timeout starts
            when a request leaves, never while it waits for a connection here.
        faults: faults at start, ``{"<operation>": {Fault fields}}`` (``checkout``, ``graphql``,
            ``graphql.<rootField>``, ``webhook.<topic>``...); ``/_sandbox/faults`` changes them later.
        webhook_faults: delivery faults at start (drop, duplicate, delay, reorder: the fields of
            ``DeliveryFaults``); ``/_sandbox/webhook-faults`` changes them later.
    """

    seed: int = 0
    shop_domain: str = "retail-mesh-demo.myshopify.com"
    access_token: str = "shpat_sandbox_token"
    webhook_secret: str = "sandbox_webhook_secret"
    throttle_capacity: float = 2000.0
    throttle_restore_rate: float = 100.0
    max_query_cost: int = 1000
    webhook_timeout_s: float = 5.0
    webhook_connect_timeout_s: float = 1.0
    webhook_max_retries: int = 8
    webhook_backoff_base_s: float = 60.0
    webhook_time_scale: float = 1.0
    webhook_remove_after_failures: int = 8
    webhook_max_connections: int = 1000
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhook_faults: dict[str, Any] = field(default_factory=dict)
