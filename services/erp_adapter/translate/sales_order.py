"""Canonical SalesOrder → Business Central salesOrder (deep insert), and BC amounts → Money.

The idempotency key at the ERP (M2) is the sales order's `externalDocumentNumber`: the channel
order's name (Shopify `#1001`), because that is what finance and customer service search BC by
and what the ERP's own payment and fraud holds are keyed by. BC's field is Code[35]; a name that
does not fit, a missing name, and replacement orders (which carry their original's channel name)
use the mesh order id instead, or a stable digest of it when even that is longer than 35.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from retail.common.v1 import common_pb2
from retail.orders.v1 import orders_pb2

#: BC's `External Document No.` is Code[35].
EXTERNAL_DOCUMENT_NUMBER_MAX = 35
#: Gap between line sequence numbers, as BC numbers lines (10000, 20000, ...).
SEQUENCE_STEP = 10000
#: Currencies whose minor unit is not 1/100 (ISO 4217 exponent).
_EXPONENTS = {
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "CLP": 0,
    "ISK": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}


def external_document_number(order: orders_pb2.SalesOrder) -> str:
    """The ERP idempotency key of an order (see the module docstring)."""
    name = order.channel_order.name.strip()
    if name and not order.replacement_of_order_id and len(name) <= EXTERNAL_DOCUMENT_NUMBER_MAX:
        return name
    if len(order.order_id) <= EXTERNAL_DOCUMENT_NUMBER_MAX:
        return order.order_id
    return "RM-" + hashlib.sha256(order.order_id.encode()).hexdigest()[:32]


def customer_number(order: orders_pb2.SalesOrder, customer_map: Mapping[str, str], default: str) -> str:
    """The ERP customer to post to: the order's own, the mapped channel customer, or the default.

    `customer_map` is keyed by the channel customer's id (a Shopify GID) or its trailing number.
    """
    if order.customer.erp_customer_number:
        return order.customer.erp_customer_number
    channel_id = order.customer.channel_customer.id
    if channel_id:
        for key in (channel_id, channel_id.rsplit("/", 1)[-1]):
            if key in customer_map:
                return customer_map[key]
    return default


def exponent(currency: str) -> int:
    """Decimal places of a currency's minor unit."""
    return _EXPONENTS.get(currency.upper(), 2)


def to_decimal(money: common_pb2.Money) -> Decimal:
    """Money in minor units → a decimal amount (`1099 USD` → `10.99`)."""
    return Decimal(money.minor_units).scaleb(-exponent(money.currency or "USD"))


def to_money(amount: Any, currency: str) -> common_pb2.Money:
    """A BC decimal amount (JSON number) → Money in minor units, rounded half up."""
    places = exponent(currency)
    minor = (Decimal(str(amount or 0)).scaleb(places)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return common_pb2.Money(minor_units=int(minor), currency=currency)


def sequence_of(index: int) -> int:
    """BC line sequence of the order's line at `index`."""
    return SEQUENCE_STEP * (index + 1)


def sales_order_body(
    order: orders_pb2.SalesOrder,
    *,
    customer: str,
    location_ids: Mapping[str, str],
) -> dict[str, Any]:
    """The POST body of `salesOrders` with deep-inserted `salesOrderLines`.

    Args:
        order: the accepted order.
        customer: the ERP customer number.
        location_ids: canonical location id (= BC location code) → BC location systemId, for the
            lines' `locationId`; lines of unknown locations get the ERP's default location.
    """
    body: dict[str, Any] = {
        "externalDocumentNumber": external_document_number(order),
        "customerNumber": customer,
    }
    if order.HasField("placed_at"):
        body["orderDate"] = order.placed_at.ToDatetime().date().isoformat()
    if order.HasField("shipping_address"):
        body.update(ship_to_fields(order.shipping_address))
    body["salesOrderLines"] = [
        _line_body(index, line, location_ids) for index, line in enumerate(order.lines)
    ]
    return body


def ship_to_fields(address: common_pb2.Address) -> dict[str, str]:
    """The salesOrder ship-to fields of an address, cut to BC's field lengths."""
    lines = list(address.lines)
    return {
        "shipToName": address.name[:100],
        "shipToAddressLine1": (lines[0] if lines else "")[:100],
        "shipToAddressLine2": (", ".join(lines[1:]))[:50],
        "shipToCity": address.city[:30],
        "shipToState": address.province_code[:30],
        "shipToCountry": address.country_code,
        "shipToPostCode": address.postal_code[:20],
    }


def _line_body(index: int, line: orders_pb2.OrderLine, location_ids: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sequence": sequence_of(index),
        "lineType": "Item",
        "lineObjectNumber": line.sku,
        "quantity": line.quantity,
    }
    if line.HasField("unit_price"):
        body["unitPrice"] = float(to_decimal(line.unit_price))
    if line.HasField("discount_total") and line.discount_total.minor_units:
        body["discountAmount"] = float(to_decimal(line.discount_total))
    location = location_ids.get(line.fulfillment_location_id)
    if location:
        body["locationId"] = location
    return body


def line_map(order: orders_pb2.SalesOrder, bc_lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Canonical line id → the BC line created for it (matched by sequence), as stored."""
    by_sequence = {int(line.get("sequence", 0)): line for line in bc_lines}
    mapping: dict[str, dict[str, Any]] = {}
    for index, line in enumerate(order.lines):
        sequence = sequence_of(index)
        bc_line = by_sequence.get(sequence, {})
        mapping[line.line_id] = {
            "sequence": sequence,
            "bc_line_id": str(bc_line.get("id", "")),
            "sku": line.sku,
            "quantity": line.quantity,
            "cancelled": 0,
        }
    return mapping
