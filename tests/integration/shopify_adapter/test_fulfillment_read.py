"""The fulfillment worker's read of an order's fulfillment state, against the Shopify stand-in.

Shopify starts a query only when its *requested* cost is free in the bucket. At the end of a sale
the bucket is low and every fulfillment starts with this read, so the read asks for a flash-sale
order's size first and reads again with the larger query only when a page came back full.
"""

from __future__ import annotations

from typing import Any

import httpx
from graphql import parse

from sandbox.common.server import serve_in_thread
from sandbox.shopify.app import create_app
from sandbox.shopify.config import API_VERSION, ShopifySettings
from sandbox.shopify.cost import query_cost
from sandbox.shopify.schema import SCHEMA
from services.shopify_adapter.clients.admin import FULFILLMENT_ORDERS, FULFILLMENT_ORDERS_MORE, ShopifyAdmin

TOKEN = "shpat_fulfillment_read_test"


def _requested(query: str) -> int:
    document = parse(query)
    return query_cost(SCHEMA, document, document.definitions[0], {"id": "gid://shopify/Order/1"})


async def _read(lines: list[tuple[str, int]]) -> tuple[dict[str, Any], list[str]]:
    """Place an order with `lines` and read it as the worker does; returns the read and the queries sent."""
    with serve_in_thread(create_app(ShopifySettings(access_token=TOKEN))) as base_url:
        async with httpx.AsyncClient() as http:
            placed = await http.post(
                f"{base_url}/_sandbox/checkout", json={"lines": [{"sku": s, "quantity": q} for s, q in lines]}
            )
        assert placed.status_code == 201, placed.text
        admin = ShopifyAdmin(base_url, API_VERSION, lambda: TOKEN)
        sent: list[str] = []
        execute = admin.execute

        async def recording(query: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
            sent.append(query)
            return await execute(query, *args, **kwargs)

        admin.execute = recording  # type: ignore[method-assign]
        try:
            order = await admin.fulfillment_orders(placed.json()["order"]["admin_graphql_api_id"])
        finally:
            await admin.close()
    assert order is not None
    return order, sent


def _open_lines(order: dict[str, Any]) -> int:
    return sum(len(fo["lineItems"]["nodes"]) for fo in order["fulfillmentOrders"]["nodes"])


async def test_a_flash_sale_order_is_read_once_at_a_third_of_the_requested_cost():
    order, sent = await _read([("SKU-1005", 1), ("SKU-1006", 2)])

    assert sent == [FULFILLMENT_ORDERS]
    assert _open_lines(order) == 2
    assert _requested(FULFILLMENT_ORDERS) * 3 <= _requested(FULFILLMENT_ORDERS_MORE)


async def test_an_order_with_more_lines_than_the_small_page_is_read_again_in_full():
    order, sent = await _read(
        [(f"SKU-10{n:02d}", 1) for n in range(1, 11)] + [("SKU-1001", 2), ("SKU-1002", 3)]
    )

    assert sent == [FULFILLMENT_ORDERS, FULFILLMENT_ORDERS_MORE]
    assert _open_lines(order) == 12
