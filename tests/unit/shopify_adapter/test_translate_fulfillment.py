"""ShipmentNotice → FulfillmentInput on the right fulfillment-order lines, the tracking look-up, and
the fulfillment-order moves that bring a release's units to its location."""

from __future__ import annotations

import pytest

from retail.shipments.v1 import shipments_pb2
from services.shopify_adapter.translate.fulfillment import (
    existing_fulfillment,
    fulfillment_input,
    location_code,
    moves_to,
)
from services.shopify_adapter.translate.order import TranslationError


def _notice(location: str, *lines: tuple[str, int], tracking: str = "1Z1") -> shipments_pb2.ShipmentNotice:
    return shipments_pb2.ShipmentNotice(
        location_id=location,
        packages=[
            shipments_pb2.Package(
                package_id="p1",
                tracking_number=tracking,
                carrier="FEDEX",
                lines=[shipments_pb2.ShipmentLine(line_id=lid, sku="SKU-1", quantity=q) for lid, q in lines],
            )
        ],
    )


def _fo(fo_id: str, location: str, *items: tuple[str, str, int], status: str = "OPEN") -> dict:
    return {
        "id": f"gid://shopify/FulfillmentOrder/{fo_id}",
        "status": status,
        "assignedLocation": {"location": {"name": location}},
        "lineItems": {
            "nodes": [
                {
                    "id": f"gid://shopify/FulfillmentOrderLineItem/{item}",
                    "remainingQuantity": q,
                    "sku": f"SKU-{line}",
                    "lineItem": {"id": f"gid://shopify/LineItem/{line}"},
                }
                for item, line, q in items
            ]
        },
    }


def test_shipped_lines_land_on_the_fulfillment_order_of_the_shipping_location():
    orders = [_fo("1", "West Warehouse", ("11", "100", 2)), _fo("2", "East Warehouse", ("21", "100", 2))]

    made = fulfillment_input(_notice("EAST", ("100", 2)), orders)

    assert made["lineItemsByFulfillmentOrder"] == [
        {
            "fulfillmentOrderId": "gid://shopify/FulfillmentOrder/2",
            "fulfillmentOrderLineItems": [{"id": "gid://shopify/FulfillmentOrderLineItem/21", "quantity": 2}],
        }
    ]
    assert made["trackingInfo"] == {"company": "FedEx", "number": "1Z1"}


def test_more_shipped_than_open_is_refused_instead_of_fulfilling_twice():
    with pytest.raises(TranslationError, match="no open fulfillment-order line"):
        fulfillment_input(_notice("EAST", ("100", 3)), [_fo("2", "East Warehouse", ("21", "100", 2))])


def test_an_existing_fulfillment_is_found_by_its_tracking_number_unless_cancelled():
    fulfillments = [
        {"id": "f1", "status": "CANCELLED", "trackingInfo": [{"number": "1Z1"}]},
        {"id": "f2", "status": "SUCCESS", "trackingInfo": [{"number": "1Z1"}]},
    ]

    assert existing_fulfillment(fulfillments, ["1Z1"])["id"] == "f2"
    assert existing_fulfillment(fulfillments, ["other"]) is None
    assert existing_fulfillment(fulfillments, []) is None


def test_location_names_map_to_the_mesh_location_ids():
    assert location_code("East Warehouse") == "EAST"
    assert location_code("WEST") == "WEST"


def _moved(moves: list) -> list[tuple[str, str, list[tuple[str, int]], dict[str, int]]]:
    return [
        (
            m.fulfillment_order_id.rsplit("/", 1)[1],
            m.from_location,
            [(i["id"].rsplit("/", 1)[1], i["quantity"]) for i in m.items],
            m.units,
        )
        for m in moves
    ]


def test_a_release_where_shopify_assigned_its_lines_elsewhere_moves_them():
    orders = [_fo("1", "West Warehouse", ("11", "100", 2), ("12", "200", 1))]

    moves = moves_to("EAST", {"100": 2, "200": 1}, orders)

    assert _moved(moves) == [("1", "WEST", [("11", 2), ("12", 1)], {"SKU-100": 2, "SKU-200": 1})]


def test_units_shopify_already_holds_at_the_location_are_not_moved():
    orders = [_fo("1", "East Warehouse", ("11", "100", 1)), _fo("2", "West Warehouse", ("21", "100", 2))]

    assert _moved(moves_to("EAST", {"100": 3}, orders)) == [("2", "WEST", [("21", 2)], {"SKU-100": 2})]
    assert moves_to("EAST", {"100": 1}, orders) == []


def test_a_split_release_moves_only_its_own_lines_and_quantities():
    orders = [_fo("1", "West Warehouse", ("11", "100", 3), ("12", "200", 2))]

    moves = moves_to("EAST", {"100": 1}, orders)

    assert _moved(moves) == [("1", "WEST", [("11", 1)], {"SKU-100": 1})]


def test_fulfillment_orders_shopify_would_refuse_to_move_are_left_where_they_are():
    orders = [
        _fo("1", "West Warehouse", ("11", "100", 1), status="IN_PROGRESS"),
        _fo("2", "West Warehouse", ("21", "100", 1), status="ON_HOLD"),
        _fo("3", "West Warehouse", ("31", "100", 1), status="CLOSED"),
        _fo("4", "North Warehouse", ("41", "100", 1)),
    ]

    assert _moved(moves_to("EAST", {"100": 4}, orders)) == [("4", "NORTH", [("41", 1)], {"SKU-100": 1})]
