"""Shopify Admin GraphQL client: auth header, cost-based throttle, transient vs business errors.

The throttle is read from every answer (`extensions.cost.throttleStatus`, never hard-coded, M5):
before a query whose last known cost exceeds what is left in the bucket, the client waits for the
restore rate to refill it; a `THROTTLED` answer waits the same way and retries. 429/5xx and
connection errors retry with back-off (honouring `Retry-After`) a few times, then raise
`ShopifyTransient`; GraphQL errors and `userErrors` are `ShopifyError` (a business failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from prometheus_client import Counter

from libs.http.answer import Answer, exchange, session

log = logging.getLogger(__name__)

#: Calls that waited for the throttle bucket before being sent (M5), and THROTTLED answers.
THROTTLE_WAITS = Counter(
    "shopify_admin_throttle_waits_total", "Admin API calls that waited for the cost bucket before sending."
)
THROTTLED = Counter("shopify_admin_throttled_total", "Admin API answers that were THROTTLED.")

ORDER_FIELDS = """
  id legacyResourceId name createdAt updatedAt processedAt cancelledAt cancelReason currencyCode
  displayFinancialStatus
  subtotalPriceSet { shopMoney { amount currencyCode } }
  totalPriceSet { shopMoney { amount currencyCode } }
  totalShippingPriceSet { shopMoney { amount currencyCode } }
  totalTaxSet { shopMoney { amount currencyCode } }
  customer { id }
  shippingAddress { name firstName lastName company address1 address2 city provinceCode zip
    countryCodeV2 phone }
  lineItems(first: 50) { nodes { id name title sku quantity currentQuantity
    originalUnitPriceSet { shopMoney { amount currencyCode } } } }
"""

ORDER = "query($id: ID!) { order(id: $id) { " + ORDER_FIELDS + " } }"

ORDERS_UPDATED_SINCE = """
query($first: Int!, $after: String, $query: String!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes { id updatedAt }
    pageInfo { hasNextPage endCursor }
  }
}"""


def _fulfillment_orders_query(fulfillments: int, orders: int, lines: int) -> str:
    tracking = "trackingInfo(first: 5) { company number url }"
    made = f"fulfillments(first: {fulfillments}) {{ id name status {tracking} }}" if fulfillments else ""
    return f"""
query($id: ID!) {{
  order(id: $id) {{
    id name
    {made}
    fulfillmentOrders(first: {orders}) {{ pageInfo {{ hasNextPage }} nodes {{
      id status
      assignedLocation {{ name location {{ id name }} }}
      lineItems(first: {lines}) {{ pageInfo {{ hasNextPage }}
        nodes {{ id remainingQuantity totalQuantity sku lineItem {{ id }} }} }}
    }} }}
  }}
}}"""


#: A flash-sale order's fulfillment state: 5 fulfillments, 3 fulfillment orders of 10 lines. Shopify
#: must find a query's *requested* cost free in the bucket before it starts it: 108 points for
#: this one, against 338 for the larger, though both are charged about 11. At the end of a sale,
#: with the bucket drained, that decides how many fulfillments can start at once.
FEW_FULFILLMENTS = 5
FULFILLMENT_ORDERS = _fulfillment_orders_query(FEW_FULFILLMENTS, 3, 10)
#: Read when the first read may have left something out (a page was full).
FULFILLMENT_ORDERS_MORE = _fulfillment_orders_query(10, 5, 25)
#: Where Shopify assigned an order's lines, without its fulfillments (a release's routing read).
ASSIGNMENTS = _fulfillment_orders_query(0, 3, 10)
ASSIGNMENTS_MORE = _fulfillment_orders_query(0, 5, 25)

FULFILLMENT_CREATE = """
mutation($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id name status trackingInfo(first: 10) { company number url } }
    userErrors { field message }
  }
}"""

FULFILLMENT_ORDER_MOVE = """
mutation($id: ID!, $location: ID!, $items: [FulfillmentOrderLineItemInput!]) {
  fulfillmentOrderMove(id: $id, newLocationId: $location, fulfillmentOrderLineItems: $items) {
    movedFulfillmentOrder { id }
    userErrors { field message }
  }
}"""

LOCATIONS = "{ locations(first: 50) { nodes { id name isActive } } }"

SUBSCRIPTIONS = """
query($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    nodes { id topic uri endpoint { ... on WebhookHttpEndpoint { callbackUrl } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

INVENTORY_LEVELS_AT = """
query($ids: [ID!]!, $location: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem {
      id
      inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } }
    }
  }
}"""

INVENTORY_SET_QUANTITIES = """
mutation($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id }
    userErrors { field message code }
  }
}"""

#: Points one aliased `inventoryItems(first: 3)` look-up costs (connection 2 + 3 nodes).
ITEM_LOOKUP_COST = 5

SUBSCRIPTION_CREATE = """
mutation($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}"""


class ShopifyTransient(Exception):
    """The call may succeed later (throttled too long, 429, 5xx, timeout, connection refused)."""


class ShopifyError(Exception):
    """Shopify refused the call for a reason retrying will not fix (GraphQL errors, userErrors)."""


@dataclass
class ConnectionState:
    """What GetConnection reports: last success and failure, and the throttle budget (M5)."""

    base_url: str = ""
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_failure: str = ""
    maximum_available: float = 0.0
    currently_available: float = 0.0
    restore_rate: float = 0.0
    observed_at: float = field(default_factory=time.monotonic)
    #: Points of the calls sent and not answered yet: the last answer cannot know them.
    in_flight: float = 0.0

    def budget_available(self) -> float:
        """Share of the bucket free now (0..1), estimated from the last answer and the restore rate."""
        if self.maximum_available <= 0:
            return 1.0
        refilled = self.currently_available + self.restore_rate * (time.monotonic() - self.observed_at)
        return max(0.0, min(1.0, refilled / self.maximum_available))

    def wait_for(self, cost: float) -> float:
        """Seconds to wait until the bucket holds `cost` points besides the calls in flight (0 when
        it already does)."""
        if self.maximum_available <= 0 or self.restore_rate <= 0:
            return 0.0
        refilled = self.currently_available + self.restore_rate * (time.monotonic() - self.observed_at)
        free = min(refilled, self.maximum_available) - self.in_flight
        missing = min(cost, self.maximum_available) - free
        return max(0.0, missing / self.restore_rate)


class ShopifyAdmin:
    """One shop's Admin GraphQL endpoint.

    Args:
        base_url: shop admin base URL (`https://<shop>.myshopify.com`, or the sandbox).
        api_version: Admin API version (`2026-04`).
        access_token: callable returning the current access token (re-read on rotation).
        timeout_s: timeout of one HTTP call.
        max_attempts: attempts per call for transient failures and throttling.
        max_wait_s: the longest single wait for the throttle or Retry-After.
    """

    def __init__(
        self,
        base_url: str,
        api_version: str,
        access_token: Any,
        *,
        timeout_s: float = 10.0,
        max_attempts: int = 5,
        max_wait_s: float = 30.0,
    ) -> None:
        self.endpoint = f"{base_url.rstrip('/')}/admin/api/{api_version}/graphql.json"
        self._token = access_token
        self._timeout_s = timeout_s
        # On aiohttp directly (libs.http.answer): every fulfillment and push is a call here.
        self._http: aiohttp.ClientSession | None = None  # made on the running loop, on first use
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.state = ConnectionState(base_url=base_url.rstrip("/"))
        self._last_cost: dict[str, float] = {}
        self._answered = asyncio.Event()

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _failed(self, reason: str) -> None:
        self.state.last_failure_at = datetime.now(UTC)
        self.state.last_failure = reason[:500]

    def _observe(self, body: dict[str, Any]) -> dict[str, Any]:
        cost = ((body.get("extensions") or {}).get("cost")) or {}
        status = cost.get("throttleStatus") or {}
        if status:
            self.state.maximum_available = float(status.get("maximumAvailable") or 0)
            self.state.currently_available = float(status.get("currentlyAvailable") or 0)
            self.state.restore_rate = float(status.get("restoreRate") or 0)
            self.state.observed_at = time.monotonic()
        return cost

    async def _affordable(self, query: str, keep_free: float, urgent_at: float | None) -> float:
        """Wait until the bucket holds this query's last seen cost (plus `keep_free` of the bucket
        until `urgent_at`) besides the calls in flight, then return the cost.

        Waiting callers look again when they wake, so those that wake together go one by one as
        points come back instead of all at once into a throttle. While calls are in flight, a
        waiter also looks again as soon as one of them is answered (its points are then known):
        a read's requested cost, which Shopify must find free to start it, is often many times
        what it is finally charged. After `max_wait_s` a call goes anyway, and Shopify's
        THROTTLED answer paces it from there.
        """
        started, counted = time.monotonic(), False
        while True:
            cost = self._last_cost.get(query, 0.0)
            wait = self.state.wait_for(cost + keep_free * self.state.maximum_available)
            if urgent_at is not None and wait > 0:
                until_urgent = urgent_at - time.monotonic()
                if wait > until_urgent:
                    wait = max(until_urgent, self.state.wait_for(cost))
            waited = time.monotonic() - started
            if wait <= 0 or waited >= self.max_wait_s:
                return cost
            if not counted:
                THROTTLE_WAITS.inc()
                counted = True
            step = min(wait, self.max_wait_s - waited)
            if self.state.in_flight > 0:
                answered = self._answered
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(answered.wait(), step)
            else:
                await asyncio.sleep(step)

    async def _send(
        self, query: str, variables: dict[str, Any] | None, points: float
    ) -> tuple[Answer, dict[str, Any] | None, dict[str, Any]]:
        """POST one call with its `points` counted in flight; returns the answer, its JSON body
        (None when it has none) and its cost. The answer's throttle status is read before the
        points leave `in_flight` and the waiters look again."""
        if self._http is None:
            self._http = session(self._timeout_s)
        self.state.in_flight += points
        try:
            response = await exchange(
                self._http,
                "POST",
                self.endpoint,
                json={"query": query, "variables": variables or {}},
                headers={"X-Shopify-Access-Token": self._token() or "", "Content-Type": "application/json"},
            )
            body: dict[str, Any] | None = None
            if response.status_code < 400:
                with contextlib.suppress(ValueError):
                    body = response.json()
            return response, body, self._observe(body) if body is not None else {}
        finally:
            self.state.in_flight -= points
            answered, self._answered = self._answered, asyncio.Event()
            answered.set()

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        keep_free: float = 0.0,
        urgent_at: float | None = None,
    ) -> dict[str, Any]:
        """Run one query or mutation; return its `data`.

        Args:
            query: the GraphQL document.
            variables: its variables.
            keep_free: share of the bucket (0..1) this call must leave to others: bulk lanes
                (inventory) pass a share so customer-facing calls always find points (M5).
            urgent_at: `time.monotonic()` from which the call no longer waits for that share,
                only for its own cost (a bulk call that must not wait behind others forever).

        Raises:
            ShopifyTransient: still throttled or failing transiently after the attempts.
            ShopifyError: GraphQL errors (other than THROTTLED) or 4xx other than 429.
        """
        delay = 0.5
        for attempt in range(1, self.max_attempts + 1):
            points = await self._affordable(query, keep_free, urgent_at)
            try:
                response, body, cost = await self._send(query, variables, points)
            except (TimeoutError, aiohttp.ClientError) as exc:
                self._failed(f"{type(exc).__name__}")
                if attempt == self.max_attempts:
                    raise ShopifyTransient(f"Shopify unreachable: {type(exc).__name__}") from None
                await asyncio.sleep(delay * (1 + random.random() / 2))
                delay = min(delay * 2, self.max_wait_s)
                continue
            if response.status_code == 429 or response.status_code >= 500:
                self._failed(f"HTTP {response.status_code}")
                if attempt == self.max_attempts:
                    raise ShopifyTransient(f"Shopify answered HTTP {response.status_code}")
                retry_after = _retry_after(response.headers.get("Retry-After"))
                await asyncio.sleep(min(retry_after if retry_after is not None else delay, self.max_wait_s))
                delay = min(delay * 2, self.max_wait_s)
                continue
            if response.status_code >= 400:
                self._failed(f"HTTP {response.status_code}")
                raise ShopifyError(f"Shopify answered HTTP {response.status_code}")
            if body is None:
                self._failed("answer is not JSON")
                raise ShopifyTransient("Shopify answered a body that is not JSON")
            if cost.get("requestedQueryCost") is not None:
                self._last_cost[query] = float(cost["requestedQueryCost"])
            errors = body.get("errors") or []
            if any(((e.get("extensions") or {}).get("code")) == "THROTTLED" for e in errors):
                self._failed("THROTTLED")
                THROTTLED.inc()
                if attempt == self.max_attempts:
                    raise ShopifyTransient("Shopify throttled the call")
                wait = self.state.wait_for(
                    float(cost.get("requestedQueryCost") or self._last_cost.get(query, 50.0))
                )
                await asyncio.sleep(min(max(wait, 0.05), self.max_wait_s))
                continue
            if errors:
                message = "; ".join(str(e.get("message")) for e in errors)[:500]
                self._failed(message)
                raise ShopifyError(message)
            self.state.last_success_at = datetime.now(UTC)
            return body.get("data") or {}
        raise ShopifyTransient("Shopify call not attempted")  # pragma: no cover - loop always returns

    # ----- the calls the adapter makes -----------------------------------------------------------

    async def locations(self, *, keep_free: float = 0.0) -> dict[str, str]:
        """Location GID → name (`EAST`, `WEST`)."""
        data = await self.execute(LOCATIONS, keep_free=keep_free)
        return {node["id"]: node["name"] for node in data["locations"]["nodes"]}

    async def order(self, gid: str) -> dict[str, Any] | None:
        """One order with the fields `translate.order.order_from_graphql` reads."""
        return (await self.execute(ORDER, {"id": gid})).get("order")

    async def orders_updated_since(self, since: str, *, page_size: int = 100) -> list[dict[str, Any]]:
        """`{id, updatedAt}` of every order updated at or after `since` (UTC), oldest first."""
        found: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            data = await self.execute(
                ORDERS_UPDATED_SINCE, {"first": page_size, "after": after, "query": f"updated_at:>='{since}'"}
            )
            connection = data["orders"]
            found.extend(connection["nodes"])
            if not connection["pageInfo"]["hasNextPage"]:
                return found
            after = connection["pageInfo"]["endCursor"]

    async def fulfillment_orders(self, order_gid: str) -> dict[str, Any] | None:
        """The order's fulfillments (with tracking) and fulfillment orders (with open lines).

        Read with the small query first, and again with the larger one when a page of the first
        was full (`FULFILLMENT_ORDERS`).
        """
        return await self._order_read(FULFILLMENT_ORDERS, FULFILLMENT_ORDERS_MORE, order_gid)

    async def assignments(self, order_gid: str, *, keep_free: float = 0.0) -> dict[str, Any] | None:
        """The order's fulfillment orders with their assigned locations and open lines (the small
        read first, the larger one when a page was full)."""
        return await self._order_read(ASSIGNMENTS, ASSIGNMENTS_MORE, order_gid, keep_free=keep_free)

    async def _order_read(
        self, small: str, large: str, order_gid: str, *, keep_free: float = 0.0
    ) -> dict[str, Any] | None:
        """One order read with the small query, and again with the large one when a page was full."""
        order = (await self.execute(small, {"id": order_gid}, keep_free=keep_free)).get("order")
        if order is not None and _may_hold_more(order):
            order = (await self.execute(large, {"id": order_gid}, keep_free=keep_free)).get("order")
        return order

    async def create_fulfillment(self, fulfillment: dict[str, Any]) -> dict[str, Any]:
        """`fulfillmentCreate`; returns the fulfillment.

        Raises:
            ShopifyError: userErrors (the message lists them).
        """
        payload = (await self.execute(FULFILLMENT_CREATE, {"fulfillment": fulfillment}))["fulfillmentCreate"]
        if payload.get("userErrors"):
            raise ShopifyError("; ".join(e["message"] for e in payload["userErrors"])[:500])
        return payload["fulfillment"]

    async def move_fulfillment_order(
        self,
        fulfillment_order_gid: str,
        location_gid: str,
        items: list[dict[str, Any]],
        *,
        keep_free: float = 0.0,
    ) -> str:
        """`fulfillmentOrderMove` of these fulfillment-order line items (`{id, quantity}`) to the
        location; returns the fulfillment order that now holds them.

        Raises:
            ShopifyError: userErrors (closed, already there, not stocked there...).
        """
        data = await self.execute(
            FULFILLMENT_ORDER_MOVE,
            {"id": fulfillment_order_gid, "location": location_gid, "items": items},
            keep_free=keep_free,
        )
        payload = data["fulfillmentOrderMove"]
        if payload.get("userErrors"):
            raise ShopifyError("; ".join(e["message"] for e in payload["userErrors"])[:500])
        return (payload.get("movedFulfillmentOrder") or {}).get("id") or fulfillment_order_gid

    async def inventory_items_by_sku(self, skus: list[str], *, keep_free: float = 0.0) -> dict[str, str]:
        """SKU → inventory item GID for the SKUs Shopify knows (exact SKU match), in one call.

        One aliased `inventoryItems(query: "sku:...")` per SKU: the search works the same on
        every plan and needs no `OR` syntax. Callers keep the list short enough for the bucket.
        """
        if not skus:
            return {}
        header = ", ".join(f"$q{i}: String!" for i in range(len(skus)))
        body = " ".join(
            f"s{i}: inventoryItems(first: 3, query: $q{i}) {{ nodes {{ id sku }} }}" for i in range(len(skus))
        )
        data = await self.execute(
            f"query({header}) {{ {body} }}",
            {f"q{i}": f'sku:"{sku}"' for i, sku in enumerate(skus)},
            keep_free=keep_free,
        )
        found: dict[str, str] = {}
        for i, sku in enumerate(skus):
            for node in (data.get(f"s{i}") or {}).get("nodes") or []:
                if node.get("sku") == sku:
                    found[sku] = node["id"]
                    break
        return found

    async def available_at(
        self,
        location_gid: str,
        item_gids: list[str],
        *,
        keep_free: float = 0.0,
        urgent_at: float | None = None,
    ) -> dict[str, int | None]:
        """Item GID → Shopify's current `available` at the location (None: not stocked there)."""
        if not item_gids:
            return {}
        data = await self.execute(
            INVENTORY_LEVELS_AT,
            {"ids": item_gids, "location": location_gid},
            keep_free=keep_free,
            urgent_at=urgent_at,
        )
        levels: dict[str, int | None] = dict.fromkeys(item_gids)
        for node in data.get("nodes") or []:
            if not node or not node.get("id"):
                continue
            level = node.get("inventoryLevel") or {}
            for quantity in level.get("quantities") or []:
                if quantity.get("name") == "available":
                    levels[node["id"]] = int(quantity["quantity"])
        return levels

    async def set_quantities(
        self, payload: dict[str, Any], key: str, *, keep_free: float = 0.0, urgent_at: float | None = None
    ) -> dict[str, Any]:
        """`inventorySetQuantities(input) @idempotent(key)`; returns the payload with its userErrors
        (the caller decides per quantity: a stale compare-and-set is not a failure of the batch)."""
        variables = {"input": payload, "key": key}
        data = await self.execute(
            INVENTORY_SET_QUANTITIES, variables, keep_free=keep_free, urgent_at=urgent_at
        )
        return data.get("inventorySetQuantities") or {"userErrors": [{"message": "no payload"}]}

    async def subscriptions(self) -> list[dict[str, Any]]:
        """Every webhook subscription of the app: `{id, topic, uri}`."""
        found: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            connection = (await self.execute(SUBSCRIPTIONS, {"after": after}))["webhookSubscriptions"]
            found.extend(connection["nodes"])
            if not connection["pageInfo"]["hasNextPage"]:
                return found
            after = connection["pageInfo"]["endCursor"]

    async def create_subscription(self, topic: str, uri: str) -> str:
        """`webhookSubscriptionCreate` (JSON format); returns the subscription GID."""
        payload = (await self.execute(SUBSCRIPTION_CREATE, {"topic": topic, "uri": uri}))[
            "webhookSubscriptionCreate"
        ]
        if payload.get("userErrors"):
            raise ShopifyError("; ".join(e["message"] for e in payload["userErrors"])[:500])
        return payload["webhookSubscription"]["id"]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _may_hold_more(order: dict[str, Any]) -> bool:
    """Whether the small fulfillment read may have left fulfillments, orders or lines out."""
    if len(order.get("fulfillments") or []) >= FEW_FULFILLMENTS:
        return True
    orders = order.get("fulfillmentOrders") or {}
    if (orders.get("pageInfo") or {}).get("hasNextPage"):
        return True
    return any(
        ((node.get("lineItems") or {}).get("pageInfo") or {}).get("hasNextPage")
        for node in orders.get("nodes") or []
    )
