"""How long `ShopifyAdmin.execute` waits for the cost bucket before a call, by lane: the bulk lane
leaves `keep_free` of the bucket until `urgent_at`, then waits only for the call's own cost
(decision 0034). The wait is read from the sleep it asks for; no call is sent."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from services.shopify_adapter.clients import admin as admin_module
from services.shopify_adapter.clients.admin import ShopifyAdmin
from services.shopify_adapter.sync.inventory import InventoryPusher, _Item

QUERY = "mutation { inventorySetQuantities { userErrors { code } } }"


class _Slept(Exception):
    pass


@pytest.fixture
async def admin(monkeypatch: pytest.MonkeyPatch):
    client = ShopifyAdmin("http://127.0.0.1:9", "2026-04", lambda: "token")
    # An empty bucket of 100 points restoring 10 a second; this query was seen to cost 10.
    client.state.maximum_available = 100.0
    client.state.currently_available = 0.0
    client.state.restore_rate = 10.0
    client.state.observed_at = time.monotonic()
    client._last_cost[QUERY] = 10.0
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        raise _Slept

    monkeypatch.setattr(admin_module, "asyncio", SimpleNamespace(sleep=sleep))  # this module's only
    client.waits = waits  # type: ignore[attr-defined]
    yield client
    await client.close()


async def _wait(admin: ShopifyAdmin, **lane: float | None) -> float:
    with pytest.raises(_Slept):
        await admin.execute(QUERY, keep_free=lane.get("keep_free") or 0.0, urgent_at=lane.get("urgent_at"))
    return admin.waits.pop()  # type: ignore[attr-defined]


async def test_a_customer_facing_call_waits_for_its_own_cost(admin: ShopifyAdmin):
    assert await _wait(admin) == pytest.approx(1.0, abs=0.05)  # 10 points at 10 a second


async def test_a_bulk_call_leaves_its_share_of_the_bucket(admin: ShopifyAdmin):
    assert await _wait(admin, keep_free=0.5) == pytest.approx(6.0, abs=0.05)  # 10 + 50 points


async def test_a_bulk_call_stops_leaving_the_share_once_urgent(admin: ShopifyAdmin):
    soon = time.monotonic() + 2.0
    assert await _wait(admin, keep_free=0.5, urgent_at=soon) == pytest.approx(2.0, abs=0.05)
    already = time.monotonic() - 1.0
    assert await _wait(admin, keep_free=0.5, urgent_at=already) == pytest.approx(1.0, abs=0.05)
    later = time.monotonic() + 30.0  # the share comes back before then: no change
    assert await _wait(admin, keep_free=0.5, urgent_at=later) == pytest.approx(6.0, abs=0.05)


def _item(waited_s: float | None) -> _Item:
    since = None if waited_s is None else datetime.now(UTC) - timedelta(seconds=waited_s)
    return _Item(
        sku="SKU-1",
        location_id="EAST",
        wanted=3,
        version=1,
        pending_since=since,
        attempts=0,
        item_gid="gid://shopify/InventoryItem/1",
        location_gid="gid://shopify/Location/1",
    )


def test_a_push_round_is_urgent_from_its_oldest_change_on():
    pusher = InventoryPusher(None, None, urgent_after_s=1.0)  # type: ignore[arg-type]
    urgent_at = pusher._urgent_at([_item(0.2), _item(0.7), _item(None)])
    assert urgent_at == pytest.approx(time.monotonic() + 0.3, abs=0.05)
    assert pusher._urgent_at([_item(None)]) is None
    assert InventoryPusher(None, None, urgent_after_s=0)._urgent_at([_item(5.0)]) is None  # type: ignore[arg-type]
