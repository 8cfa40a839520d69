"""The 3PL's shipment reports (an `order.shipped` webhook body, a 945) as canonical ShipmentNotice,
and its delivery report as a tracking update."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from libs.x12 import ShippingAdvice
from retail.common.v1 import common_pb2
from retail.shipments.v1 import shipments_pb2
from services.tpl_adapter.translate.release import Release

#: The 3PL's carrier names and SCACs → canonical carrier codes.
CARRIERS = {
    "UPS": "UPS",
    "UPSN": "UPS",
    "FEDEX": "FEDEX",
    "FDEG": "FEDEX",
    "FDXE": "FEDEX",
    "USPS": "USPS",
    "DHL": "DHL",
}
#: Carrier service names → canonical service levels.
SERVICE_LEVELS = {
    "GROUND": "GROUND",
    "STANDARD": "GROUND",
    "2-DAY": "2DAY",
    "2DAY": "2DAY",
    "OVERNIGHT": "OVERNIGHT",
}
TRACKING_URLS = {"UPS": "https://www.ups.com/track?tracknum={}"}


def parse_time(value: str) -> datetime:
    """A 3PL timestamp (`2026-07-01T12:00:00.000Z`, naive = UTC)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def carrier_code(name: str) -> str:
    """Canonical carrier code of a 3PL carrier name or SCAC (upper-cased name when unknown)."""
    key = name.strip().upper()
    return CARRIERS.get(key, key[:32])


def allocate_lines(release: Release, shipped: Iterable[tuple[str, int]]) -> list[shipments_pb2.ShipmentLine]:
    """Map shipped SKU quantities back to the release's order lines, in line order.

    The 3PL knows SKUs, not our line ids; a SKU on several lines fills them in order. A SKU the
    release does not hold keeps the SKU as its line id (visible, never dropped).
    """
    remaining = {line.line_id: line.quantity for line in release.lines}
    out: dict[tuple[str, str], int] = {}
    for sku, quantity in shipped:
        left = quantity
        for line in release.lines:
            if left <= 0:
                break
            if line.sku != sku or remaining[line.line_id] <= 0:
                continue
            take = min(left, remaining[line.line_id])
            remaining[line.line_id] -= take
            out[(line.line_id, sku)] = out.get((line.line_id, sku), 0) + take
            left -= take
        if left > 0:
            fallback = next((x.line_id for x in release.lines if x.sku == sku), sku)
            out[(fallback, sku)] = out.get((fallback, sku), 0) + left
    return [shipments_pb2.ShipmentLine(line_id=lid, sku=sku, quantity=q) for (lid, sku), q in out.items()]


def _products(products: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(str(p.get("sku") or p.get("reference_id")), int(p.get("quantity") or 0)) for p in products]


def notice_from_webhook(payload: dict[str, Any], release: Release) -> shipments_pb2.ShipmentNotice:
    """An `order.shipped` body (the shipment with its tracking, cartons and order) as a notice.

    Each carton is a package with its own tracking; a shipment without cartons is one package.
    `partial` is set when the order still has unshipped shipments.
    """
    tracking = payload.get("tracking") or {}
    carrier = carrier_code(str(tracking.get("carrier") or ""))
    service = SERVICE_LEVELS.get(str(tracking.get("carrier_service") or "").upper(), "")
    cartons = payload.get("parent_cartons") or [
        {
            "barcode": f"PKG-{payload['id']}",
            "tracking_number": tracking.get("tracking_number"),
            "products": payload.get("products") or [],
        }
    ]
    notice = shipments_pb2.ShipmentNotice(
        order_id=release.order_id,
        release_id=release.release_id,
        location_id=release.location_id,
        warehouse_shipment=common_pb2.ExternalRef(
            system=common_pb2.SOURCE_SYSTEM_TPL,
            id=str(payload["id"]),
            name=str(payload.get("order_id") or ""),
        ),
    )
    shipped = tracking.get("shipping_date") or payload.get("actual_fulfillment_date")
    notice.shipped_at.FromDatetime(parse_time(shipped) if shipped else datetime.now(UTC))
    for n, carton in enumerate(cartons, start=1):
        number = str(carton.get("tracking_number") or tracking.get("tracking_number") or "")
        url = tracking.get("tracking_url") if number == tracking.get("tracking_number") else ""
        notice.packages.add(
            package_id=str(carton.get("barcode") or f"{payload['id']}-{n}")[:64],
            tracking_number=number,
            carrier=carrier,
            service_level=service,
            tracking_url=url
            or (TRACKING_URLS[carrier].format(number) if carrier in TRACKING_URLS and number else ""),
            lines=allocate_lines(release, _products(carton.get("products") or [])),
        )
    order = payload.get("order") or {}
    others = [s for s in order.get("shipments") or [] if s.get("id") != payload["id"]]
    notice.partial = any(s.get("status") not in ("Completed", "Delivered", "Cancelled") for s in others)
    if not notice.partial:
        shipped_units = sum(q for _, q in _products(payload.get("products") or []))
        shipped_units += sum(
            q
            for s in others
            if s.get("status") in ("Completed", "Delivered")
            for _, q in _products(s.get("products") or [])
        )
        notice.partial = shipped_units < sum(x.quantity for x in release.lines)
    return notice


def notice_from_945(advice: ShippingAdvice, release: Release) -> shipments_pb2.ShipmentNotice:
    """A 945 as a notice: W06-04 is the warehouse's shipment id (the same id its API and webhooks
    use, so one shipment reported both ways is recorded once); one package per tracking number."""
    carrier = carrier_code(advice.carrier)
    notice = shipments_pb2.ShipmentNotice(
        order_id=release.order_id,
        release_id=release.release_id,
        location_id=release.location_id,
        warehouse_shipment=common_pb2.ExternalRef(
            system=common_pb2.SOURCE_SYSTEM_TPL, id=advice.shipment_id or advice.order_number
        ),
        partial=advice.reporting_code == "P" or advice.partial,
    )
    date = advice.ship_date or datetime.now(UTC).strftime("%Y%m%d")
    notice.shipped_at.FromDatetime(datetime.strptime(date, "%Y%m%d").replace(tzinfo=UTC))
    by_package: dict[str, list[tuple[str, int]]] = {}
    header = advice.tracking_numbers[:1] or [f"{notice.warehouse_shipment.id}-1"]
    for line in advice.lines:
        for package in line.packages or header:
            by_package.setdefault(package, []).append((line.sku, int(line.quantity_shipped)))
            break  # a line's units are in its first package; cartons per line are not split here
    service = SERVICE_LEVELS.get(advice.routing.upper(), "")
    for number, shipped in by_package.items():
        notice.packages.add(
            package_id=number[:64],
            tracking_number=number,
            carrier=carrier,
            service_level=service,
            tracking_url=TRACKING_URLS[carrier].format(number) if carrier in TRACKING_URLS else "",
            lines=allocate_lines(release, shipped),
        )
    return notice
