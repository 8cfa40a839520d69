"""AvailabilityChanged → Shopify `available` per location (I4), against the real Shopify stand-in over
HTTP, a real nats-server and the adapter's real code: channel figure shown, coalescing, stale
compare-and-set retried from a fresh read, throttling, batches split at 250, echoes ignored."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime

import nats
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from libs.bus.envelope import publish_headers
from libs.bus.streams import subject_for
from libs.bus.tables import InboxRow
from retail.common.v1 import common_pb2
from retail.inventory.v1 import events_pb2 as inventory_events
from retail.inventory.v1 import inventory_pb2
from sandbox.common.server import serve_in_thread
from sandbox.shopify.app import create_app
from sandbox.shopify.config import ShopifySettings
from services.shopify_adapter.app import Adapter, running
from services.shopify_adapter.config import ShopifyAdapterSettings
from services.shopify_adapter.events.availability import DURABLE
from services.shopify_adapter.store import tables
from tests.integration.shopify_adapter.conftest import OLD_SECRET, TOKEN, Shop, eventually

_event_ids = itertools.count(1)


def availability_changed(
    sku: str, location: str, online: int, version: int
) -> inventory_events.AvailabilityChanged:
    """An AvailabilityChanged as the inventory service publishes it: b2b keeps a buffer of 2."""
    event = inventory_events.AvailabilityChanged(
        meta=common_pb2.EventMeta(
            event_id=f"evt-avail-{next(_event_ids)}",
            correlation_id=f"corr-{sku}",
            source_system=common_pb2.SOURCE_SYSTEM_MESH,
            producer="inventory",
            key=f"{sku}@{location}",
        ),
        sku=sku,
        location_id=location,
        previous_available_to_sell=0,
        available_to_sell=online,
        channels=[
            inventory_pb2.ChannelAvailability(channel="online-store", buffer=0, available=online),
            inventory_pb2.ChannelAvailability(channel="b2b", buffer=2, available=max(0, online - 2)),
        ],
        position_version=version,
    )
    event.meta.occurred_at.FromDatetime(datetime.now(UTC))
    return event


async def publish(nats_url: str, events: Iterable[inventory_events.AvailabilityChanged]) -> None:
    """Publish events on JetStream the way the inventory service's outbox relay does."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for event in events:
            headers = publish_headers(
                event.DESCRIPTOR.full_name, event.meta.event_id, event.meta.correlation_id, None
            )
            await js.publish(subject_for(event), event.SerializeToString(), headers=headers)
    finally:
        await nc.close()


def available(shop: Shop, sku: str, location: str) -> int:
    """Shopify's `available` of a SKU at a location code, as the stand-in holds it."""
    return shop.state()["inventory"][sku]["levels"][location]["available"]


def set_calls(shop: Shop) -> dict[str, int]:
    """inventorySetQuantities calls the stand-in received, by idempotency key."""
    return shop.counts()["attempts"].get("inventorySetQuantities", {})


def metric(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def adjust_available(shop: Shop, sku: str, location: str, delta: int, key: str) -> None:
    """Change Shopify's `available` behind the mesh's back, as a sale or a merchant edit would."""
    state = shop.state()
    item = state["inventory"][sku]["inventory_item_id"]
    location_gid = next(loc["id"] for loc in state["locations"] if loc["code"] == location)
    data = shop.gql(
        "mutation($input: InventoryAdjustQuantitiesInput!, $key: String!) {"
        " inventoryAdjustQuantities(input: $input) @idempotent(key: $key) {"
        " userErrors { field message code } } }",
        {
            "input": {
                "name": "available",
                "reason": "correction",
                "changes": [{"inventoryItemId": item, "locationId": location_gid, "delta": delta}],
            },
            "key": key,
        },
    )
    assert data["inventoryAdjustQuantities"]["userErrors"] == []


async def push_row(adapter: Adapter, sku: str, location: str) -> tables.InventoryPush | None:
    async with adapter.db.read() as session:
        return await session.get(tables.InventoryPush, (sku, location))


async def pushed(adapter: Adapter, sku: str, location: str, version: int) -> tables.InventoryPush:
    """The push row once the adapter recorded the push of `version`."""

    async def recorded() -> tables.InventoryPush | None:
        row = await push_row(adapter, sku, location)
        return row if row is not None and row.pushed_version >= version else None

    return await eventually(recorded, what=f"push of {sku}@{location} v{version} recorded")


@pytest.fixture
async def patient_adapter(adapter_settings: ShopifyAdapterSettings) -> AsyncIterator[Adapter]:
    """The adapter with a coalescing window long enough that a burst of events is one push."""
    async with running(adapter_settings.model_copy(update={"inventory_push_coalesce_s": 1.5})) as parts:
        yield parts


@pytest.fixture
def tiny_shop() -> Iterator[Shop]:
    """The Shopify stand-in with a tiny cost bucket (60 points, 3 restored per second)."""
    settings = ShopifySettings(
        access_token=TOKEN, webhook_secret=OLD_SECRET, throttle_capacity=60.0, throttle_restore_rate=3.0
    )
    with serve_in_thread(create_app(settings)) as base_url:
        stand_in = Shop(base_url)
        yield stand_in
        stand_in.http.close()


async def test_the_stand_in_shows_the_online_store_availability_after_an_event(shop, adapter, nats_server):
    west_before = available(shop, "SKU-1001", "WEST")
    lag_before = metric("shopify_inventory_update_lag_seconds_count")

    await publish(nats_server.url, [availability_changed("SKU-1001", "EAST", 7, 3)])

    await eventually(lambda: available(shop, "SKU-1001", "EAST") == 7, what="Shopify shows 7 at EAST")
    assert available(shop, "SKU-1001", "WEST") == west_before
    row = await pushed(adapter, "SKU-1001", "EAST", 3)
    assert (row.pushed_quantity, row.pushed_version, row.last_error) == (7, 3, None)
    assert row.item_gid == shop.state()["inventory"]["SKU-1001"]["inventory_item_id"]
    # The lag is observed just after the row's commit: wait for it rather than race it.
    await eventually(
        lambda: metric("shopify_inventory_update_lag_seconds_count") == lag_before + 1, what="lag observed"
    )
    assert len(set_calls(shop)) == 1


async def test_rapid_changes_to_one_item_become_one_push_of_the_latest_figure(
    shop, patient_adapter, nats_server
):
    burst = [
        availability_changed("SKU-1002", "WEST", figure, version)
        for figure, version in [(10, 1), (11, 2), (12, 3), (9, 5)]
    ]
    late_older = availability_changed("SKU-1002", "WEST", 40, 4)  # arrives after version 5

    await publish(nats_server.url, [*burst, late_older])

    async def all_consumed() -> bool:
        async with patient_adapter.db.read() as session:
            count = await session.scalar(
                select(func.count()).select_from(InboxRow).where(InboxRow.consumer == DURABLE)
            )
        return count == 5

    await eventually(all_consumed, what="every event handled")
    await eventually(lambda: available(shop, "SKU-1002", "WEST") == 9, what="Shopify shows the latest figure")
    assert len(set_calls(shop)) == 1
    row = await pushed(patient_adapter, "SKU-1002", "WEST", 5)
    assert (row.wanted_version, row.pushed_version, row.pushed_quantity) == (5, 5, 9)


async def test_a_stale_change_from_quantity_is_retried_from_a_fresh_read_and_never_undoes_the_sale(
    shop, adapter, nats_server
):
    await publish(nats_server.url, [availability_changed("SKU-1003", "EAST", 20, 1)])
    await pushed(adapter, "SKU-1003", "EAST", 1)
    adjust_available(shop, "SKU-1003", "EAST", -3, key="sale-behind-our-back")
    assert available(shop, "SKU-1003", "EAST") == 17
    stale_before = metric("shopify_inventory_quantities_total", {"outcome": "stale"})

    # The mesh's figure rises by 5 (a receipt) before it has reserved the 3 units Shopify sold.
    await publish(nats_server.url, [availability_changed("SKU-1003", "EAST", 25, 2)])

    row = await pushed(adapter, "SKU-1003", "EAST", 2)
    assert available(shop, "SKU-1003", "EAST") == 22  # raised by the mesh's rise, the sale kept
    assert metric("shopify_inventory_quantities_total", {"outcome": "stale"}) == stale_before + 1
    calls = shop.counts()
    refused = set(calls["attempts"]["inventorySetQuantities"]) - set(
        calls["created"]["inventorySetQuantities"]
    )
    assert len(refused) == 1  # the stale compare-and-set, refused and not applied
    assert len(calls["created"]["inventorySetQuantities"]) == 2
    assert (row.pushed_quantity, row.base_quantity, row.shopify_available) == (22, 25, 22)

    # The mesh reserves the sale: its figure falls to Shopify's, and nothing needs to be sent.
    await publish(nats_server.url, [availability_changed("SKU-1003", "EAST", 22, 3)])
    row = await pushed(adapter, "SKU-1003", "EAST", 3)
    assert available(shop, "SKU-1003", "EAST") == 22
    assert len(shop.counts()["created"]["inventorySetQuantities"]) == 2
    assert (row.pushed_quantity, row.base_quantity) == (22, 22)


async def test_throttling_slows_the_push_without_losing_an_update(tiny_shop, adapter_settings, nats_server):
    settings = adapter_settings.model_copy(update={"shopify_base_url": tiny_shop.base_url})
    skus = [f"SKU-{1001 + i}" for i in range(10)]
    wanted = {
        (sku, loc): 3 + i * 2 + (loc == "WEST") for i, sku in enumerate(skus) for loc in ("EAST", "WEST")
    }
    waits_before = metric("shopify_admin_throttle_waits_total")

    async with running(settings):
        await publish(
            nats_server.url,
            [availability_changed(sku, loc, figure, 1) for (sku, loc), figure in wanted.items()],
        )

        def converged() -> bool:
            levels = tiny_shop.state()["inventory"]
            return all(levels[sku]["levels"][loc]["available"] == n for (sku, loc), n in wanted.items())

        await eventually(converged, timeout_s=45.0, what="every level converged under throttling")

    assert metric("shopify_admin_throttle_waits_total") > waits_before
    assert tiny_shop.state()["throttle"]["maximumAvailable"] == 60


async def test_more_than_250_changed_items_are_split_into_calls_of_at_most_250(shop, adapter, nats_server):
    skus = [f"BULK-{i:03d}" for i in range(130)]
    made = shop.gql(
        "mutation($input: ProductSetInput!) {"
        " productSet(input: $input) { product { id } userErrors { message } } }",
        {
            "input": {
                "title": "Bulk Item",
                "handle": "bulk-item",
                "variants": [{"sku": s, "price": "1.00"} for s in skus],
            }
        },
    )
    assert made["productSet"]["userErrors"] == []
    sizes: list[int] = []
    real_set_quantities = adapter.admin.set_quantities

    async def recording_set_quantities(payload, key, **kwargs):
        sizes.append(len(payload["quantities"]))
        return await real_set_quantities(payload, key, **kwargs)

    adapter.admin.set_quantities = recording_set_quantities
    wanted = {(sku, loc): i % 17 + (loc == "WEST") for i, sku in enumerate(skus) for loc in ("EAST", "WEST")}

    await publish(nats_server.url, [availability_changed(sku, loc, n, 1) for (sku, loc), n in wanted.items()])

    def converged() -> bool:
        levels = shop.state()["inventory"]
        return all(levels[sku]["levels"][loc]["available"] == n for (sku, loc), n in wanted.items())

    await eventually(converged, timeout_s=30.0, what="all 260 levels pushed")
    assert len(sizes) >= 2
    assert max(sizes) <= 250
    assert sum(sizes) == 260 - sum(1 for n in wanted.values() if n == 0)  # Shopify already showed 0


async def test_shopify_reporting_our_own_write_back_is_an_echo_and_never_an_input(
    shop, adapter, adapter_settings, nats_server
):
    shop.gql(
        "mutation($uri: String!) { webhookSubscriptionCreate(topic: INVENTORY_LEVELS_UPDATE,"
        " webhookSubscription: {uri: $uri, format: JSON}) { userErrors { message } } }",
        {"uri": adapter_settings.shopify_webhook_callback_url},
    )
    echo_before = metric("shopify_inventory_level_updates_total", {"kind": "echo"})
    external_before = metric("shopify_inventory_level_updates_total", {"kind": "external"})

    await publish(nats_server.url, [availability_changed("SKU-1004", "EAST", 11, 1)])
    await pushed(adapter, "SKU-1004", "EAST", 1)
    assert available(shop, "SKU-1004", "EAST") == 11
    await eventually(
        lambda: metric("shopify_inventory_level_updates_total", {"kind": "echo"}) > echo_before,
        what="our own write reported back and recognised",
    )
    adjust_available(shop, "SKU-1004", "EAST", -1, key="merchant-edit")
    await eventually(
        lambda: metric("shopify_inventory_level_updates_total", {"kind": "external"}) > external_before,
        what="a Shopify-side change reported",
    )

    async def deliveries() -> list[tables.WebhookDelivery]:
        async with adapter.db.read() as session:
            rows = (
                (
                    await session.execute(
                        select(tables.WebhookDelivery).where(
                            tables.WebhookDelivery.topic == "inventory_levels/update"
                        )
                    )
                )
                .scalars()
                .all()
            )
        return [r for r in rows if r.status != tables.PENDING]

    handled = await eventually(lambda: _two(deliveries), what="both deliveries handled")
    assert {r.status for r in handled} == {tables.IGNORED}
    row = await push_row(adapter, "SKU-1004", "EAST")
    assert (row.wanted_quantity, row.wanted_version, row.pushed_version) == (11, 1, 1)  # not an input
    assert available(shop, "SKU-1004", "EAST") == 10


async def _two(deliveries):
    rows = await deliveries()
    return rows if len(rows) >= 2 else None
