"""The peers' plain HTTP clients for Shopify (Admin GraphQL), Business Central (API v2.0) and the 3PL.

What a team writes in an afternoon with `httpx`: synchronous calls, a cached OAuth token, one
exception for "try again later" (timeouts, 429, 5xx) and one for "refused". Both peers use them,
so neither gets a better client than the other; the mesh has its own in services/.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from typing import Any

import httpx

SHOPIFY_API = "2026-04"
TPL_API = "2026-07"

ORDER_FULFILLMENT = """query($id: ID!) { order(id: $id) {
  fulfillments { trackingInfo { number } }
  fulfillmentOrders(first: 5) { nodes { id
    lineItems(first: 50) { nodes { id sku remainingQuantity } } } } } }"""
FULFILL = """mutation($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) {
  fulfillment { id } userErrors { field message } } }"""
ITEMS = """query($q: String!) { inventoryItems(first: 1, query: $q) { nodes { id
  inventoryLevels(first: 5) { nodes { location { id name }
    quantities(names: ["available"]) { name quantity } } } } } }"""
SET_QUANTITIES = """mutation($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id } userErrors { field message code } } }"""
SUBSCRIBE = """mutation($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id } userErrors { field message } } }"""


class TryLater(Exception):
    """Timeout, 412 (a write that lost a race), 429, 5xx or a throttled GraphQL call: the same call
    may work later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Refused(Exception):
    """The system said no (4xx other than 429, GraphQL userErrors)."""


def _check(response: httpx.Response) -> httpx.Response:
    # 412: an If-Match write lost to another writer (BC: "Read the record again and retry"). Two
    # parcels of one order posted at once meet it; the handlers read the order again when retried.
    if response.status_code in (412, 429) or response.status_code >= 500:
        after = response.headers.get("Retry-After")
        raise TryLater(f"{response.status_code} {response.text[:200]}", float(after) if after else None)
    if response.status_code >= 400:
        raise Refused(f"{response.status_code} {response.text[:300]}")
    return response


def shopify_hmac_ok(body: bytes, header: str, secret: str) -> bool:
    """Shopify's webhook signature: base64 HMAC-SHA256 of the raw body."""
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(digest, header or "")


def tpl_signature_ok(body: bytes, headers: Any, secret: str) -> bool:
    """The 3PL's Standard Webhooks signature: `v1,` + base64 HMAC of `id.timestamp.body`."""
    message = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
    key = secret.removeprefix("whsec_").encode()
    expected = "v1," + base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in (headers.get("webhook-signature") or "").split())


class Shopify:
    """Admin GraphQL with the access token; a THROTTLED answer is a TryLater."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self._http = httpx.Client(
            base_url=base_url, headers={"X-Shopify-Access-Token": token}, timeout=timeout, trust_env=False
        )

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = _check(
                self._http.post(
                    f"/admin/api/{SHOPIFY_API}/graphql.json",
                    json={"query": query, "variables": variables or {}},
                )
            )
        except httpx.HTTPError as exc:
            raise TryLater(f"shopify: {exc!r}") from exc
        body = response.json()
        if body.get("errors"):
            if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in body["errors"]):
                raise TryLater("shopify: throttled", 1.0)
            raise Refused(f"shopify: {body['errors']}")
        return body["data"]

    def subscribe(self, topic: str, uri: str) -> None:
        made = self.query(SUBSCRIBE, {"topic": topic, "uri": uri})["webhookSubscriptionCreate"]
        if made["userErrors"]:
            raise Refused(str(made["userErrors"]))

    def fulfill(self, order_gid: str, units: dict[str, int], company: str, number: str) -> bool:
        """Fulfil `units` (SKU → quantity) of the order with one tracking number; False if that
        tracking number is already on the order (a redelivered shipment notice)."""
        order = self.query(ORDER_FULFILLMENT, {"id": order_gid})["order"]
        if any(t["number"] == number for f in order["fulfillments"] for t in f["trackingInfo"]):
            return False
        wanted = dict(units)
        by_fo = []
        for fo in order["fulfillmentOrders"]["nodes"]:
            lines = []
            for line in fo["lineItems"]["nodes"]:
                take = min(wanted.get(line["sku"], 0), line["remainingQuantity"])
                if take > 0:
                    lines.append({"id": line["id"], "quantity": take})
                    wanted[line["sku"]] -= take
            if lines:
                by_fo.append({"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": lines})
        if not by_fo:
            raise Refused(f"nothing left to fulfil on {order_gid} for {units}")
        made = self.query(
            FULFILL,
            {
                "f": {
                    "lineItemsByFulfillmentOrder": by_fo,
                    "trackingInfo": {"company": company, "number": number},
                    "notifyCustomer": False,
                }
            },
        )["fulfillmentCreate"]
        if made["userErrors"]:
            raise Refused(str(made["userErrors"]))
        return True

    def set_available(self, sku: str, by_location: dict[str, int], key: str) -> None:
        """Set `available` of a SKU per location (by location name prefix EAST/WEST), unchecked."""
        nodes = self.query(ITEMS, {"q": f"sku:{sku}"})["inventoryItems"]["nodes"]
        if not nodes:
            return
        quantities = []
        for level in nodes[0]["inventoryLevels"]["nodes"]:
            code = level["location"]["name"].split()[0].upper()
            current = {q["name"]: q["quantity"] for q in level["quantities"]}.get("available")
            if code in by_location and current != by_location[code]:
                quantities.append(
                    {
                        "inventoryItemId": nodes[0]["id"],
                        "locationId": level["location"]["id"],
                        "quantity": by_location[code],
                        "changeFromQuantity": None,
                    }
                )
        if not quantities:
            return
        made = self.query(
            SET_QUANTITIES,
            {"key": key, "input": {"name": "available", "reason": "correction", "quantities": quantities}},
        )["inventorySetQuantities"]
        if made["userErrors"]:
            raise Refused(str(made["userErrors"]))


class BusinessCentral:
    """BC API v2.0 under the first company, with a client-credentials token."""

    def __init__(self, base_url: str, client_id: str, client_secret: str, timeout: float = 30.0) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout, trust_env=False)
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": "https://api.businesscentral.dynamics.com/.default",
        }
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_until = 0.0
        self._company: str | None = None

    def _auth(self) -> dict[str, str]:
        with self._lock:
            if self._token is None or time.monotonic() > self._token_until:
                try:
                    reply = _check(self._http.post("/sandbox/oauth2/v2.0/token", data=self._form)).json()
                except httpx.HTTPError as exc:
                    raise TryLater(f"bc token: {exc!r}") from exc
                self._token = reply["access_token"]
                self._token_until = time.monotonic() + float(reply.get("expires_in", 3599)) - 60
            return {"Authorization": f"Bearer {self._token}"}

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._company is None and not path.startswith("/api/v2.0/companies"):
            self._company = self.call("GET", "/api/v2.0/companies").json()["value"][0]["id"]
        url = path if path.startswith("/api/") else f"/api/v2.0/companies({self._company}){path}"
        headers = {**self._auth(), **kwargs.pop("headers", {})}
        try:
            return _check(self._http.request(method, url, headers=headers, **kwargs))
        except httpx.HTTPError as exc:
            raise TryLater(f"bc {method} {path}: {exc!r}") from exc

    def sales_order(self, external_number: str) -> dict[str, Any] | None:
        """The open sales order with this external document number, lines expanded, or None."""
        found = self.call(
            "GET",
            "/salesOrders",
            params={
                "$filter": f"externalDocumentNumber eq '{external_number}'",
                "$expand": "salesOrderLines",
            },
        ).json()["value"]
        return found[0] if found else None

    def create_sales_order(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/salesOrders", json=body).json()

    def ship_and_invoice(self, order: dict[str, Any], units: dict[str, int]) -> None:
        """Post shipment and invoice of `units` (SKU → quantity) of the order."""
        for line in order.get("salesOrderLines", []):
            wanted = units.get(line["lineObjectNumber"], 0)
            if line.get("shipQuantity") != wanted:
                self.call(
                    "PATCH",
                    f"/salesOrders({order['id']})/salesOrderLines({line['id']})",
                    json={"shipQuantity": wanted},
                    headers={"If-Match": line["@odata.etag"]},
                )
        self.call("POST", f"/salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice")


class Tpl:
    """The 3PL's JSON API with the bearer token and channel header."""

    def __init__(self, base_url: str, token: str, channel_id: str = "1001", timeout: float = 10.0) -> None:
        self._http = httpx.Client(
            base_url=f"{base_url}/{TPL_API}",
            headers={"Authorization": f"Bearer {token}", "shipbob_channel_id": channel_id},
            timeout=timeout,
            trust_env=False,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TryLater(f"tpl {method} {path}: {exc!r}") from exc
        if response.status_code == 429:
            after = response.headers.get("Retry-After")
            raise TryLater("tpl: 429", float(after) if after else None)
        return _check(response).json() if response.content else None

    def create_order(self, body: dict[str, Any]) -> None:
        """POST /order; a reference id the 3PL already has is fine (a redelivered webhook)."""
        try:
            self.call("POST", "/order", json=body)
        except Refused as exc:
            if "Duplicate reference ID" not in str(exc):
                raise

    def subscribe(self, topic: str, url: str) -> str:
        """A webhook subscription; returns its signing secret."""
        made = self.call(
            "POST", "/webhook", json={"topic": topic, "subscription_url": url, "description": "peer"}
        )
        return str(made["secret"])

    def stock(self) -> dict[str, dict[str, int]]:
        """SKU → center name prefix (EAST/WEST) → fulfillable units."""
        levels: dict[str, dict[str, int]] = {}
        for item in self.call("GET", "/inventory-level"):
            for center in item.get("locations", []):
                code = str(center.get("location_name", "")).split()[0].upper()
                levels.setdefault(item["sku"], {})[code] = int(center["fulfillable_quantity"])
        return levels


def order_bodies(order: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Shopify order webhook body → (the BC sales order body, the 3PL order body)."""
    lines = [li for li in order["line_items"] if li.get("sku")]
    bc = {
        "externalDocumentNumber": order["name"],
        "customerNumber": "C10000",
        "salesOrderLines": [
            {
                "sequence": 10000 * (i + 1),
                "lineType": "Item",
                "lineObjectNumber": li["sku"],
                "quantity": li["quantity"],
                "unitPrice": float(li["price"]),
            }
            for i, li in enumerate(lines)
        ],
    }
    address = order.get("shipping_address") or {}
    tpl = {
        "reference_id": str(order["id"]),
        "order_number": order["name"],
        "shipping_method": "Standard",
        "recipient": {
            "name": address.get("name") or "Customer",
            "address": {
                "address1": address.get("address1", ""),
                "city": address.get("city", ""),
                "state": address.get("province_code", ""),
                "country": address.get("country_code", "US"),
                "zip_code": address.get("zip", ""),
            },
        },
        "products": [{"reference_id": li["sku"], "quantity": li["quantity"]} for li in lines],
    }
    return bc, tpl


def shipped_units(shipment: dict[str, Any]) -> dict[str, int]:
    """A 3PL shipment webhook body → SKU → units in this parcel."""
    units: dict[str, int] = {}
    for product in shipment.get("products", []):
        sku = product.get("sku") or product.get("reference_id")
        units[sku] = units.get(sku, 0) + int(product.get("quantity", 0))
    return units


class Systems:
    """The three clients built from the environment the bench starts a peer with.

    `PEER_SHOPIFY_URL`, `PEER_BC_URL`, `PEER_TPL_URL`, `PEER_CALLBACK_URL` (this peer's own base
    URL, for webhook subscriptions), `PEER_INVENTORY_EVERY_S`; credentials are the sandbox's
    published ones (`SHOPIFY_*`, `BC_CLIENT_*`, `TPL_API_TOKEN` as in tools/topology.py).
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.shopify = Shopify(
            env["PEER_SHOPIFY_URL"], env.get("SHOPIFY_ACCESS_TOKEN", "shpat_sandbox_token")
        )
        self.bc = BusinessCentral(
            env["PEER_BC_URL"],
            env.get("BC_CLIENT_ID", "retail-mesh"),
            env.get("BC_CLIENT_SECRET", "sandbox-secret"),
        )
        self.tpl = Tpl(env["PEER_TPL_URL"], env.get("TPL_API_TOKEN", ""))
        self.webhook_secret = env.get("SHOPIFY_WEBHOOK_SECRET", "")
        self.callback_url = env.get("PEER_CALLBACK_URL", "")
        self.inventory_every_s = float(env.get("PEER_INVENTORY_EVERY_S", "2"))

    def close(self) -> None:
        """Close the three clients' connections (a peer process keeps its own until it exits)."""
        for client in (self.shopify, self.bc, self.tpl):
            client._http.close()

    def __enter__(self) -> Systems:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def sync_inventory(self) -> None:
        """Copy the 3PL's fulfillable units to Shopify's `available`, SKU by SKU."""
        for sku, by_center in sorted(self.tpl.stock().items()):
            self.shopify.set_available(sku, by_center, key=f"peer-sync-{sku}-{time.time_ns()}")
