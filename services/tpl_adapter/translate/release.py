"""A warehouse release (retail.orders.v1.OrderReleasedToWarehouse) as the 3PL's order: a JSON API
order body, or a 940 shipping order; and the stored facts about a release the answers refer to."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from libs.x12 import OrderLine, Party, Reference, ShippingOrder
from libs.x12 import shipping_order as x940
from retail.common.v1 import common_pb2
from retail.orders.v1 import events_pb2 as order_events

#: Canonical shipping service levels → the 3PL's shipping method names.
SHIPPING_METHODS = {
    "": "Standard",
    "STANDARD": "Standard",
    "GROUND": "Standard",
    "2DAY": "2-Day",
    "OVERNIGHT": "Overnight",
}


@dataclass(frozen=True)
class ReleaseLine:
    """One order line of a release."""

    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class Release:
    """What the adapter remembers of a release to map the warehouse's answers back to it."""

    release_id: str
    order_id: str
    location_id: str
    lines: tuple[ReleaseLine, ...]

    @classmethod
    def of(cls, event: order_events.OrderReleasedToWarehouse) -> Release:
        """The release an event describes."""
        return cls(
            release_id=event.release_id,
            order_id=event.order_id,
            location_id=event.location_id,
            lines=tuple(ReleaseLine(x.line_id, x.sku, x.quantity) for x in event.lines),
        )

    def lines_json(self) -> list[dict[str, Any]]:
        """The lines as stored JSON."""
        return [{"line_id": x.line_id, "sku": x.sku, "quantity": x.quantity} for x in self.lines]

    @classmethod
    def from_json(
        cls, release_id: str, order_id: str, location_id: str, lines: list[dict[str, Any]]
    ) -> Release:
        """A release from its stored row."""
        return cls(
            release_id,
            order_id,
            location_id,
            tuple(ReleaseLine(x["line_id"], x["sku"], int(x["quantity"])) for x in lines),
        )


def _x12(text: str) -> str:
    """Text safe inside an X12 element: our delimiters (`*`, `>`, `~`) become spaces."""
    return text.translate(str.maketrans("*>~\n\r", "     ")).strip()


def recipient(address: common_pb2.Address) -> dict[str, Any]:
    """A canonical address as the 3PL's `recipient`."""
    return {
        "name": address.name,
        "company_name": address.company,
        "phone_number": address.phone,
        "address": {
            "address1": address.lines[0] if address.lines else "",
            "address2": ", ".join(address.lines[1:]),
            "city": address.city,
            "state": address.province_code,
            "zip_code": address.postal_code,
            "country": address.country_code,
        },
    }


def address_update(address: common_pb2.Address) -> dict[str, Any]:
    """A canonical address as ShipBob's `UpdateAddressRequest` (`PUT /shipment/{id}:updateAddress`)."""
    return {
        "name": address.name,
        "company_name": address.company or None,
        "phone_number": address.phone or None,
        "street_address1": address.lines[0] if address.lines else "",
        "street_address2": ", ".join(address.lines[1:]),
        "city": address.city,
        "state": address.province_code,
        "zip_code": address.postal_code,
        "country_code": address.country_code,
    }


def order_body(event: order_events.OrderReleasedToWarehouse, center_id: int | None = None) -> dict[str, Any]:
    """The JSON API order for a release: `reference_id` = release id (the 3PL's idempotency key,
    M2), one product per SKU, and `location_id` = the 3PL's id of the center the mesh routed to
    (`center_id`; the center whose stock the mesh reserved). Without it the 3PL picks a center."""
    quantities: dict[str, int] = {}
    for line in event.lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    body: dict[str, Any] = {
        "reference_id": event.release_id,
        "order_number": event.channel_order.name or event.order_id,
        "type": "DTC",
        "shipping_method": SHIPPING_METHODS.get(event.shipping_method.upper(), event.shipping_method),
        "recipient": recipient(event.shipping_address),
        "products": [{"reference_id": sku, "quantity": qty} for sku, qty in quantities.items()],
    }
    if center_id is not None:
        body["location_id"] = center_id
    return body


def shipping_order(event: order_events.OrderReleasedToWarehouse) -> ShippingOrder:
    """The 940 for a release: W05-02 = release id (the partner's duplicate key), N1*ST the
    address, N1*SF the routed location, one LX/W01 per line with the mesh line id in N9*LI."""
    address = event.shipping_address
    return ShippingOrder(
        order_number=event.release_id,
        purchase_order=_x12(event.channel_order.name or event.order_id),
        status=x940.ORIGINAL,
        parties=[
            Party(code="SF", name=event.location_id, id_qualifier="92", id=event.location_id),
            Party(
                code="ST",
                name=_x12(address.name),
                address=[_x12(x) for x in address.lines[:2]],
                city=_x12(address.city),
                state=_x12(address.province_code),
                postal_code=_x12(address.postal_code),
                country=address.country_code,
            ),
        ],
        carrier_routing=SHIPPING_METHODS.get(event.shipping_method.upper(), event.shipping_method),
        lines=[
            OrderLine(
                line_number=str(n),
                quantity=Decimal(line.quantity),
                product_ids={"SK": line.sku},
                references=[Reference(qualifier="LI", value=line.line_id)],
            )
            for n, line in enumerate(event.lines, start=1)
        ],
    )


def cancel_order(release_id: str, purchase_order: str = "") -> ShippingOrder:
    """The 940 cancelling a release (W05-01 `C`)."""
    return ShippingOrder(order_number=release_id, purchase_order=purchase_order, status=x940.CANCEL)
