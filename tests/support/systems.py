"""What each system of a running mesh shows, and stock changed the way it really changes, for e2e tests.

Stock is arranged through the 3PL's count (its `/_sandbox/inventory`), pulled by the tpl-adapter's
inventory snapshot into the inventory service, pushed by the shopify-adapter to Shopify. The
readers answer what a user would check: Shopify's fulfillment orders (Admin GraphQL), the 3PL's
orders (its API), Business Central's stock and sales orders, and a service's own records (on SQLite
or PostgreSQL, whichever the mesh runs on).
"""

from __future__ import annotations

from typing import Any

import grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from retail.common.v1 import common_pb2
from retail.integration.v1 import integration_pb2, integration_service_pb2, integration_service_pb2_grpc
from retail.inventory.v1 import inventory_service_pb2
from retail.orders.v1 import orders_pb2, orders_service_pb2
from tests.support.mesh import Running, bc_token, until
from tools.topology import SANDBOX_CREDENTIALS

ORDER_FOS = """query($id: ID!) { order(id: $id) { displayFulfillmentStatus fulfillmentOrders(first: 5) {
  nodes { status assignedLocation { name }
    lineItems(first: 10) { nodes { sku totalQuantity remainingQuantity } }
    fulfillments(first: 5) { nodes { trackingInfo { number } } } } } } }"""
VARIANT = """query($q: String!) { productVariants(first: 1, query: $q) { nodes { sku product { id } } } }"""
CONTINUE_SELLING = """mutation($id: ID!, $sku: String!) {
  productSet(identifier: {id: $id}, input: {variants: [{sku: $sku, inventoryPolicy: CONTINUE}]}) {
    product { id } userErrors { field message } } }"""


# -- a service's own records ----------------------------------------------------------------------


async def service_rows(running: Running, service: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows of `sql` (named `:params`) in one service's database, SQLite or PostgreSQL."""
    topology = running.mesh.topology
    url = topology.database_urls.get(service, f"sqlite+aiosqlite:///{topology.data_dir / (service + '.db')}")
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(sql), params)]
    finally:
        await engine.dispose()


async def releases(running: Running, order_id: str) -> dict[str, str]:
    """The 3PL order id of each release of the order, by location (tpl-adapter's record)."""
    rows = await service_rows(
        running,
        "tpl-adapter",
        "SELECT location_id, warehouse_order_id FROM tpl_release WHERE order_id = :order_id",
        order_id=order_id,
    )
    return dict(rows)


async def warehouse_order(running: Running, order_id: str) -> str | None:
    """The 3PL order id of the order's (first) release, once the 3PL accepted it."""
    found = [w for w in (await releases(running, order_id)).values() if w]
    return found[0] if found else None


async def postings(running: Running, order_id: str) -> int:
    """Shipment postings the erp-adapter made in Business Central for the order."""
    ((count,),) = await service_rows(
        running,
        "erp-adapter",
        "SELECT count(*) FROM erp_shipment_posting WHERE order_id = :order_id",
        order_id=order_id,
    )
    return int(count)


async def exceptions(running: Running, reason: str = "", *, order_id: str = "") -> list[tuple[str, str]]:
    """The orders service's exception list: (order id, reason code), filtered when given."""
    return await service_rows(
        running,
        "orders",
        "SELECT order_id, reason_code FROM order_exception WHERE (:reason = '' OR reason_code = :reason)"
        " AND (:order_id = '' OR order_id = :order_id)",
        reason=reason,
        order_id=order_id,
    )


# -- stock as it really changes -------------------------------------------------------------------


async def count_at_3pl(running: Running, counts: dict[tuple[str, str], int]) -> None:
    """The 3PL counts these units on hand; the tpl-adapter pulls a snapshot; inventory agrees."""
    for (sku, location), on_hand in counts.items():
        reply = await running.http.post(
            f"{running.tpl}/_sandbox/inventory", json={"sku": sku, "location": location, "on_hand": on_hand}
        )
        assert reply.status_code == 200, reply.text
    port = running.mesh.topology.service("tpl-adapter").grpc_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = integration_service_pb2_grpc.IntegrationServiceStub(channel)
        key = "-".join(f"{s}.{loc}.{n}" for (s, loc), n in sorted(counts.items()))
        await stub.RunReconciliation(
            integration_service_pb2.RunReconciliationRequest(
                request_id=f"count-{key}"[:64], kind=integration_pb2.RECONCILIATION_KIND_INVENTORY
            ),
            timeout=60,
        )

    async def applied() -> bool:
        for (sku, location), on_hand in counts.items():
            if (await position(running, sku, location)).on_hand != on_hand:
                return False
        return True

    await until(applied, f"the 3PL's count {counts} in the inventory service")


async def shopify_shows(running: Running, available: dict[tuple[str, str], int]) -> None:
    """Wait until Shopify's available per (SKU, location) is what the shopify-adapter pushed."""

    async def pushed() -> bool:
        state = (await running.http.get(f"{running.shopify}/_sandbox/state")).json()
        levels = state["inventory"]
        return all(levels[sku]["levels"][loc]["available"] == n for (sku, loc), n in available.items())

    await until(pushed, f"Shopify's available {available}")


async def continue_selling(running: Running, sku: str) -> None:
    """The merchant keeps selling `sku` when out of stock (Shopify's inventory policy CONTINUE)."""
    found = await shopify_gql(running, VARIANT, {"q": f"sku:{sku}"})
    product_id = found["productVariants"]["nodes"][0]["product"]["id"]
    result = await shopify_gql(running, CONTINUE_SELLING, {"id": product_id, "sku": sku})
    assert result["productSet"]["userErrors"] == []


# -- what each system shows -----------------------------------------------------------------------


async def position(running: Running, sku: str, location: str) -> Any:
    """The inventory service's position of a SKU at a location."""
    reply = await running.inventory.GetPosition(
        inventory_service_pb2.GetPositionRequest(sku=sku, location_id=location), timeout=5
    )
    return reply.position


async def shopify_gql(running: Running, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """An Admin GraphQL call to the Shopify stand-in; fails on GraphQL errors."""
    reply = await running.http.post(
        f"{running.shopify}/admin/api/2026-04/graphql.json",
        json={"query": query, "variables": variables},
        headers={"X-Shopify-Access-Token": SANDBOX_CREDENTIALS["SHOPIFY_ACCESS_TOKEN"]},
    )
    body = reply.json()
    assert "errors" not in body, body
    return body["data"]


async def fulfillment_orders(running: Running, shop_order: dict[str, Any]) -> list[dict[str, Any]]:
    """Shopify's fulfillment orders of the order: location, status, lines, remaining, tracking."""
    data = await shopify_gql(running, ORDER_FOS, {"id": shop_order["admin_graphql_api_id"]})
    out = []
    for fo in data["order"]["fulfillmentOrders"]["nodes"]:
        items = fo["lineItems"]["nodes"]
        out.append(
            {
                "location": fo["assignedLocation"]["name"],
                "status": fo["status"],
                "lines": {i["sku"]: i["totalQuantity"] for i in items},
                "remaining": sum(i["remainingQuantity"] for i in items),
                "tracking": [
                    t["number"] for f in fo["fulfillments"]["nodes"] for t in f["trackingInfo"] or []
                ],
            }
        )
    return out


async def fulfilled_in_shopify(running: Running, shop_order: dict[str, Any]) -> list[dict[str, Any]]:
    """The order's fulfillment orders once Shopify shows every one closed (the shopify-adapter
    fulfils on its own, not in step with the ERP's invoice)."""

    async def closed() -> list[dict[str, Any]]:
        fos = await fulfillment_orders(running, shop_order)
        return fos if fos and all(fo["status"] == "CLOSED" for fo in fos) else []

    return await until(closed, f"Shopify order {shop_order['name']} fulfilled")


async def tpl_centers(running: Running, warehouse_order_id: str) -> set[str]:
    """The fulfillment centers the 3PL's order ships from, as its API shows them."""
    reply = await running.http.get(
        f"{running.tpl}/2026-07/order/{warehouse_order_id}",
        headers={"Authorization": f"Bearer {SANDBOX_CREDENTIALS['TPL_API_TOKEN']}"},
    )
    assert reply.status_code == 200, reply.text
    return {shipment["location"]["name"] for shipment in reply.json()["shipments"]}


async def tpl_products(running: Running, warehouse_order_id: str) -> dict[str, int]:
    """Units per SKU of the 3PL's order, as its API shows them."""
    reply = await running.http.get(
        f"{running.tpl}/2026-07/order/{warehouse_order_id}",
        headers={"Authorization": f"Bearer {SANDBOX_CREDENTIALS['TPL_API_TOKEN']}"},
    )
    assert reply.status_code == 200, reply.text
    units: dict[str, int] = {}
    for product in reply.json()["products"]:
        units[product["sku"]] = units.get(product["sku"], 0) + int(product["quantity"])
    return units


async def bc_stock(running: Running) -> dict[tuple[str, str], float]:
    """Business Central's inventory per (item, location)."""
    state = (await running.http.get(f"{running.bc}/_sandbox/state")).json()
    return {(row["itemNumber"], row["locationCode"]): row["inventory"] for row in state["stock"]}


async def bc_has_no_order(running: Running, external_document_number: str) -> bool:
    """Whether Business Central has no sales order with this external document number."""
    token = await bc_token(running)
    auth = {"Authorization": f"Bearer {token}"}
    companies = (await running.http.get(f"{running.bc}/api/v2.0/companies", headers=auth)).json()["value"]
    found = await running.http.get(
        f"{running.bc}/api/v2.0/companies({companies[0]['id']})/salesOrders",
        params={"$filter": f"externalDocumentNumber eq '{external_document_number}'"},
        headers=auth,
    )
    return found.json()["value"] == []


def cancel_request(order_id: str) -> orders_service_pb2.CancelOrderRequest:
    """The customer's cancellation, relayed from Shopify."""
    return orders_service_pb2.CancelOrderRequest(
        request_id=f"cancel-{order_id}",
        order_id=order_id,
        reason=orders_pb2.CANCELLATION_REASON_CUSTOMER_REQUEST,
        requested_by=common_pb2.SOURCE_SYSTEM_SHOPIFY,
    )
