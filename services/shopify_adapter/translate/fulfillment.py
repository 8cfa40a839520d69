"""Canonical `ShipmentNotice` → Shopify `FulfillmentInput` on the right fulfillment-order lines (O6).

Pure functions over the Admin GraphQL shapes selected by `clients.admin.FULFILLMENT_ORDERS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from retail.shipments.v1 import shipments_pb2
from services.shopify_adapter.translate.order import TranslationError

#: Canonical carrier codes → the company names Shopify recognises for tracking links.
CARRIERS = {
    "UPS": "UPS",
    "FEDEX": "FedEx",
    "USPS": "USPS",
    "DHL": "DHL Express",
    "DHL_EXPRESS": "DHL Express",
    "CANADA_POST": "Canada Post",
    "ROYAL_MAIL": "Royal Mail",
}


def location_code(name: str) -> str:
    """The mesh's location id of a Shopify location name: `EAST` for `EAST` or `East Warehouse`.

    The mesh's canonical ids are the first word of the Shopify location's name, upper case.
    """
    words = (name or "").strip().split()
    return words[0].upper() if words else ""


def location_gids(names: dict[str, str]) -> dict[str, str]:
    """The mesh's location id → Shopify location GID, from `ShopifyAdmin.locations` (GID → name)."""
    return {location_code(name): gid for gid, name in names.items()}


def assigned_location(fulfillment_order: dict[str, Any]) -> str:
    """The mesh's location id of the location a fulfillment order is assigned to."""
    assigned = fulfillment_order.get("assignedLocation") or {}
    return location_code((assigned.get("location") or {}).get("name") or assigned.get("name") or "")


def _line_items_of(fulfillment_order: dict[str, Any], line_id: str) -> list[dict[str, Any]]:
    """The fulfillment order's lines of the order line `line_id` (a Shopify line item's numeric id)."""
    return [
        item
        for item in (fulfillment_order.get("lineItems") or {}).get("nodes") or []
        if (((item.get("lineItem") or {}).get("id")) or "").endswith(f"/{line_id}")
    ]


def tracking_numbers(notice: shipments_pb2.ShipmentNotice) -> list[str]:
    """The shipment's tracking numbers, one per package that has one, in package order."""
    seen: list[str] = []
    for package in notice.packages:
        if package.tracking_number and package.tracking_number not in seen:
            seen.append(package.tracking_number)
    return seen


def tracking_info(notice: shipments_pb2.ShipmentNotice) -> dict[str, Any]:
    """`FulfillmentTrackingInput`: company, number(s) and URL(s) of the shipment's packages."""
    numbers = tracking_numbers(notice)
    urls = [p.tracking_url for p in notice.packages if p.tracking_url]
    carrier = next((p.carrier for p in notice.packages if p.carrier), "")
    info: dict[str, Any] = {}
    if carrier:
        info["company"] = CARRIERS.get(carrier.upper(), carrier)
    if len(numbers) == 1:
        info["number"] = numbers[0]
    elif numbers:
        info["numbers"] = numbers
    if len(urls) == 1:
        info["url"] = urls[0]
    elif urls:
        info["urls"] = urls
    return info


def shipped_quantities(notice: shipments_pb2.ShipmentNotice) -> dict[str, int]:
    """Quantity shipped per order line id, summed over packages."""
    totals: dict[str, int] = {}
    for package in notice.packages:
        for line in package.lines:
            totals[line.line_id] = totals.get(line.line_id, 0) + line.quantity
    return totals


def existing_fulfillment(fulfillments: list[dict[str, Any]], numbers: list[str]) -> dict[str, Any] | None:
    """The order's fulfillment already carrying one of these tracking numbers, if any (the
    look-up-before-create that makes fulfillment creation exactly once)."""
    if not numbers:
        return None
    wanted = set(numbers)
    for fulfillment in fulfillments:
        if fulfillment.get("status") == "CANCELLED":
            continue
        for info in fulfillment.get("trackingInfo") or []:
            if info.get("number") in wanted:
                return fulfillment
    return None


def line_items_by_fulfillment_order(
    notice: shipments_pb2.ShipmentNotice, fulfillment_orders: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`lineItemsByFulfillmentOrder` covering exactly what the notice shipped.

    Each shipped order line (line_id = the Shopify line item's numeric id) is taken from open
    fulfillment-order lines of that line item, those assigned to the shipment's location first.

    Raises:
        TranslationError: a shipped line has no open fulfillment-order quantity left.
    """
    wanted = shipped_quantities(notice)
    location = notice.location_id.upper()

    def rank(fo: dict[str, Any]) -> int:
        return 0 if assigned_location(fo) == location else 1

    open_orders = [
        fo for fo in fulfillment_orders if fo.get("status") in ("OPEN", "IN_PROGRESS", "SCHEDULED")
    ]
    chosen: dict[str, dict[str, int]] = {}
    for line_id, quantity in wanted.items():
        left = quantity
        for fo in sorted(open_orders, key=rank):
            for item in _line_items_of(fo, line_id):
                if left == 0:
                    continue
                already = chosen.get(fo["id"], {}).get(item["id"], 0)
                take = min(left, int(item.get("remainingQuantity") or 0) - already)
                if take > 0:
                    chosen.setdefault(fo["id"], {})[item["id"]] = already + take
                    left -= take
        if left:
            raise TranslationError(
                f"line {line_id}: {left} shipped unit(s) have no open fulfillment-order line"
            )
    return [
        {
            "fulfillmentOrderId": fo_id,
            "fulfillmentOrderLineItems": [{"id": item_id, "quantity": qty} for item_id, qty in items.items()],
        }
        for fo_id, items in chosen.items()
    ]


def fulfillment_input(
    notice: shipments_pb2.ShipmentNotice, fulfillment_orders: list[dict[str, Any]]
) -> dict[str, Any]:
    """The `FulfillmentInput` of `fulfillmentCreate` for one shipment notice."""
    fulfillment: dict[str, Any] = {
        "lineItemsByFulfillmentOrder": line_items_by_fulfillment_order(notice, fulfillment_orders),
        "notifyCustomer": True,
    }
    info = tracking_info(notice)
    if info:
        fulfillment["trackingInfo"] = info
    return fulfillment


@dataclass
class Move:
    """One `fulfillmentOrderMove`: these lines of a fulfillment order to the mesh's location.

    Attributes:
        fulfillment_order_id: the fulfillment order's GID.
        from_location: the mesh's id of the location Shopify had assigned it to.
        items: `FulfillmentOrderLineItemInput`s, `{id, quantity}`.
        units: units moved per SKU.
    """

    fulfillment_order_id: str
    from_location: str
    items: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, int] = field(default_factory=dict)


def moves_to(location: str, released: dict[str, int], fulfillment_orders: list[dict[str, Any]]) -> list[Move]:
    """The moves that bring a release's units to the fulfillment orders of its location.

    Shopify assigns each line of a checkout to a location by its own routing; the mesh reserves
    and releases it where its routing says (decision 0011). For each released order line (line id
    → quantity), the units Shopify holds open at `location` count first; the rest is taken from
    OPEN fulfillment orders assigned elsewhere, in Shopify's order. A fulfillment order already in
    progress, on hold, or requested from a fulfillment service is left where it is (Shopify
    refuses to move it), so a release may be moved only in part.
    """
    open_here = [
        fo
        for fo in fulfillment_orders
        if fo.get("status") in ("OPEN", "IN_PROGRESS", "SCHEDULED") and assigned_location(fo) == location
    ]
    elsewhere = [
        fo for fo in fulfillment_orders if fo.get("status") == "OPEN" and assigned_location(fo) != location
    ]
    moves: dict[str, Move] = {}
    for line_id, quantity in released.items():
        here = sum(
            int(i.get("remainingQuantity") or 0) for fo in open_here for i in _line_items_of(fo, line_id)
        )
        left = quantity - here
        for fo in elsewhere:
            for item in _line_items_of(fo, line_id):
                take = min(left, int(item.get("remainingQuantity") or 0))
                if take <= 0:
                    continue
                move = moves.setdefault(fo["id"], Move(fo["id"], assigned_location(fo)))
                move.items.append({"id": item["id"], "quantity": take})
                sku = item.get("sku") or ""
                move.units[sku] = move.units.get(sku, 0) + take
                left -= take
    return list(moves.values())
