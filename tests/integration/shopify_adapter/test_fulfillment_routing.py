"""OrderReleasedToWarehouse → Shopify's fulfillment orders moved to the released location, and
Shopify's figures at both locations brought to the mesh's (decision 0042): against the real
Shopify stand-in over HTTP, a real nats-server and the adapter's real code."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from libs.bus.tables import InboxRow
from retail.common.v1 import common_pb2
from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2
from services.shopify_adapter.app import Adapter, running
from services.shopify_adapter.config import ShopifyAdapterSettings
from services.shopify_adapter.events.routing import DURABLE
from services.shopify_adapter.store import tables
from tests.integration.shopify_adapter.conftest import Shop, eventually
from tests.integration.shopify_adapter.test_inventory_push import (
    availability_changed,
    available,
    publish,
    pushed,
)

_event_ids = itertools.count(1)


@pytest.fixture
async def adapter(adapter_settings: ShopifyAdapterSettings) -> AsyncIterator[Adapter]:
    """The adapter with fulfillment-order moves on (`MOVE_FULFILLMENT_ORDERS`, off by default)."""
    async with running(adapter_settings.model_copy(update={"move_fulfillment_orders": True})) as parts:
        yield parts


def released(order: dict, location: str, sku: str, quantity: int) -> order_events.OrderReleasedToWarehouse:
    """The orders service's release of the Shopify order's line of `sku` to `location`."""
    line = next(li for li in order["line_items"] if li["sku"] == sku)
    event = order_events.OrderReleasedToWarehouse(
        meta=common_pb2.EventMeta(
            event_id=f"evt-release-{next(_event_ids)}",
            correlation_id=f"corr-{order['id']}",
            source_system=common_pb2.SOURCE_SYSTEM_MESH,
            producer="orders",
            key=f"shp-{order['id']}",
        ),
        order_id=f"shp-{order['id']}",
        release_id=f"shp-{order['id']}:r1",
        location_id=location,
        lines=[orders_pb2.LineQuantity(line_id=str(line["id"]), sku=sku, quantity=quantity)],
        shipping_address=common_pb2.Address(
            name="Ada", lines=["1 Main Street"], city="Springfield", country_code="US"
        ),
        channel_order=common_pb2.ExternalRef(
            system=common_pb2.SOURCE_SYSTEM_SHOPIFY, id=order["admin_graphql_api_id"], name=order["name"]
        ),
    )
    event.meta.occurred_at.GetCurrentTime()
    return event


def assigned(shop: Shop, order: dict) -> list[tuple[str, str]]:
    """(location, status) of the order's fulfillment orders, as the stand-in holds them."""
    found = next(o for o in shop.state()["orders"] if o["id"] == order["id"])
    return [(fo["location"], fo["status"]) for fo in found["fulfillment_orders"] if fo["status"] != "CLOSED"]


async def handled(adapter: Adapter, count: int) -> bool:
    async with adapter.db.read() as session:
        done = await session.scalar(
            select(func.count()).select_from(InboxRow).where(InboxRow.consumer == DURABLE)
        )
    return done == count


async def moves_waiting(adapter: Adapter) -> int:
    async with adapter.db.read() as session:
        return await session.scalar(select(func.count()).select_from(tables.InventoryMove)) or 0


async def no_moves_waiting(adapter: Adapter) -> bool:
    return await moves_waiting(adapter) == 0


async def test_an_order_released_elsewhere_than_shopify_routed_it_moves_and_both_figures_match_the_mesh(
    shop, adapter, nats_server
):
    sku = "SKU-1004"
    await publish(
        nats_server.url,
        [availability_changed(sku, "EAST", 10, 1), availability_changed(sku, "WEST", 10, 1)],
    )
    await pushed(adapter, sku, "EAST", 1)
    await pushed(adapter, sku, "WEST", 1)
    order = shop.checkout((sku, 2))
    assert assigned(shop, order) == [("EAST", "OPEN")]  # Shopify's routing: the first location
    assert (available(shop, sku, "EAST"), available(shop, sku, "WEST")) == (8, 10)
    # The mesh reserves the order at WEST (its own routing): its figure there falls and is pushed.
    await publish(nats_server.url, [availability_changed(sku, "WEST", 8, 2)])
    await pushed(adapter, sku, "WEST", 2)
    assert (available(shop, sku, "EAST"), available(shop, sku, "WEST")) == (8, 8)  # two units short

    await publish(nats_server.url, [released(order, "WEST", sku, 2)])

    await eventually(lambda: assigned(shop, order) == [("WEST", "OPEN")], what="fulfillment order moved")
    await eventually(
        lambda: (available(shop, sku, "EAST"), available(shop, sku, "WEST")) == (10, 8),
        what="Shopify shows the mesh's figures at both locations",
    )
    await eventually(lambda: no_moves_waiting(adapter), what="the move applied by the pusher")
    row = await pushed(adapter, sku, "WEST", 2)
    assert (row.pushed_quantity, row.base_quantity, row.shopify_available) == (8, 8, 8)

    # The same release again (another event id: a replay): nothing is left to move, nothing changes.
    await publish(nats_server.url, [released(order, "WEST", sku, 2)])
    await eventually(lambda: handled(adapter, 2), what="the replay handled")
    assert assigned(shop, order) == [("WEST", "OPEN")]
    assert await moves_waiting(adapter) == 0
    assert (available(shop, sku, "EAST"), available(shop, sku, "WEST")) == (10, 8)


async def test_an_order_released_where_shopify_routed_it_is_left_alone(shop, adapter, nats_server):
    sku = "SKU-1005"
    order = shop.checkout((sku, 1))
    east, west = available(shop, sku, "EAST"), available(shop, sku, "WEST")

    await publish(nats_server.url, [released(order, "EAST", sku, 1)])

    await eventually(lambda: handled(adapter, 1), what="the release handled")
    assert assigned(shop, order) == [("EAST", "OPEN")]
    assert await moves_waiting(adapter) == 0
    assert (available(shop, sku, "EAST"), available(shop, sku, "WEST")) == (east, west)


async def test_with_moves_off_a_release_is_not_consumed(shop, adapter_settings, nats_server):
    sku = "SKU-1006"
    order = shop.checkout((sku, 1))
    async with running(adapter_settings) as parts:
        await publish(nats_server.url, [released(order, "WEST", sku, 1)])
        assert DURABLE not in {c.durable for c in parts.bus.consumers}
    assert assigned(shop, order) == [("EAST", "OPEN")]
