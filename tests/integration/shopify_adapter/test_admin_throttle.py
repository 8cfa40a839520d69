"""Concurrent Admin API calls against the Shopify stand-in's leaky bucket: the client counts the
points of the calls it has in flight, so calls that find the bucket low at the same moment go one
by one as points come back instead of all at once into THROTTLED."""

from __future__ import annotations

import asyncio
import time

from sandbox.common.server import serve_in_thread
from sandbox.shopify.app import create_app
from sandbox.shopify.config import API_VERSION, ShopifySettings
from services.shopify_adapter.clients.admin import SUBSCRIPTION_CREATE, ShopifyAdmin

TOKEN = "shpat_throttle_test"


async def test_eight_calls_at_once_on_a_low_bucket_are_paced_not_throttled():
    # 30 points, 50 back a second; each subscription create costs 10 (a mutation).
    settings = ShopifySettings(access_token=TOKEN, throttle_capacity=30.0, throttle_restore_rate=50.0)
    with serve_in_thread(create_app(settings)) as base_url:
        admin = ShopifyAdmin(base_url, API_VERSION, lambda: TOKEN)
        try:

            async def subscribe(n: int) -> dict:
                variables = {"topic": "ORDERS_CREATE", "uri": f"https://hooks.example.com/{n}"}
                return await admin.execute(SUBSCRIPTION_CREATE, variables)

            await subscribe(0)  # learns the cost and the bucket: 20 points left
            made = await asyncio.gather(*(subscribe(n) for n in range(1, 9)))
        finally:
            await admin.close()

    assert [m["webhookSubscriptionCreate"]["userErrors"] for m in made] == [[]] * 8
    assert admin.state.last_failure_at is None, admin.state.last_failure  # no THROTTLED answer
    assert admin.state.in_flight == 0


async def test_a_waiter_looks_again_as_soon_as_a_call_in_flight_is_answered():
    # The locations read asks for 52 points and is charged about 4: with two in flight, a third
    # finds too little free and would sleep (52 - 12) / 5 = 8 s by the estimate alone.
    settings = ShopifySettings(access_token=TOKEN, throttle_capacity=120.0, throttle_restore_rate=5.0)
    with serve_in_thread(create_app(settings)) as base_url:
        admin = ShopifyAdmin(base_url, API_VERSION, lambda: TOKEN)
        try:
            await admin.locations()  # learns the cost and the bucket
            started = time.monotonic()
            found = await asyncio.gather(*(admin.locations() for _ in range(4)))
            elapsed = time.monotonic() - started
        finally:
            await admin.close()

    assert all(found) and len({tuple(sorted(f)) for f in found}) == 1
    assert elapsed < 4.0, f"a waiter slept on the estimate for {elapsed:.1f} s"
    assert admin.state.last_failure_at is None, admin.state.last_failure
