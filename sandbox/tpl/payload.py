"""JSON shapes of the 3PL stand-in, modelled on ShipBob's order, shipment, return and inventory."""

from __future__ import annotations

from typing import Any

from sandbox.tpl.state import STAGES, Order, Return, Shipment, TplState

TRACKING_URL = "https://www.ups.com/track?tracknum={}"


def _products(state: TplState, lines) -> list[dict[str, Any]]:
    return [
        {
            "id": state.inventory_ids[line.sku],
            "reference_id": line.sku,
            "sku": line.sku,
            "quantity": line.quantity,
        }
        for line in lines
    ]


def shipment_json(state: TplState, order: Order, shipment: Shipment) -> dict[str, Any]:
    """A shipment: status, location, tracking once shipped, products, the package it left in."""
    center = state.centers[shipment.center_id]
    tracking = None
    if shipment.shipped:
        tracking = {
            "carrier": shipment.carrier,
            "carrier_service": "Ground",
            "tracking_number": shipment.tracking_number,
            "tracking_url": TRACKING_URL.format(shipment.tracking_number),
            "shipping_date": shipment.shipped_at,
        }
    products = _products(state, shipment.lines)
    return {
        "id": shipment.id,
        "order_id": order.id,
        "reference_id": order.reference_id,
        "status": shipment.status,
        "status_details": [{"name": STAGES[min(shipment.stage, len(STAGES) - 1)]}],
        "location": {"id": center["id"], "name": center["name"]},
        "recipient": shipment.recipient or order.recipient,
        "tracking": tracking,
        "actual_fulfillment_date": shipment.shipped_at or None,
        "delivery_date": shipment.delivered_at or None,
        "ship_option": order.shipping_method,
        "products": products,
        "parent_cartons": (
            [
                {
                    "type": "Box",
                    "barcode": f"PKG-{shipment.id}",
                    "tracking_number": shipment.tracking_number,
                    "products": products,
                }
            ]
            if shipment.shipped
            else []
        ),
    }


def order_json(state: TplState, order: Order) -> dict[str, Any]:
    """An order with its shipments."""
    return {
        "id": order.id,
        "created_date": order.created_at,
        "purchase_date": order.created_at,
        "reference_id": order.reference_id,
        "order_number": order.order_number,
        "status": order.status,
        "type": "DTC",
        "channel": {"id": order.channel_id, "name": state_channel_name(order)},
        "shipping_method": order.shipping_method,
        "recipient": order.recipient,
        "products": _products(state, order.lines),
        "shipments": [shipment_json(state, order, s) for s in order.shipments],
    }


def state_channel_name(order: Order) -> str:
    """The channel's display name (EDI orders come through the EDI channel)."""
    return "EDI" if order.source == "edi" else "retail-mesh"


def return_json(state: TplState, ret: Return) -> dict[str, Any]:
    """A return with what was received and what was done with it."""
    center = state.centers[ret.center_id]
    inventory = []
    for item in ret.items:
        actions = []
        if ret.status == "Completed":
            if item.received - item.damaged:
                actions.append({"action": "Restock", "quantity": item.received - item.damaged})
            if item.damaged:
                actions.append({"action": "Quarantine", "quantity": item.damaged, "reason": "Damaged"})
        inventory.append(
            {
                "id": state.inventory_ids[item.sku],
                "sku": item.sku,
                "quantity": item.quantity,
                "quantity_received": item.received,
                "quantity_damaged": item.damaged,
                "action_taken": actions,
            }
        )
    return {
        "id": ret.id,
        "reference_id": ret.reference_id,
        "status": ret.status,
        "channel": {"id": ret.channel_id},
        "fulfillment_center": {"id": center["id"], "name": center["name"]},
        "original_shipment_id": ret.original_shipment_id,
        "tracking_number": ret.tracking_number,
        "insert_date": ret.created_at,
        "completed_date": ret.completed_at or None,
        "inventory": inventory,
    }


def inventory_json(state: TplState, sku: str) -> dict[str, Any]:
    """One item's stock: totals and per fulfillment center (on hand, committed, fulfillable)."""
    locations = []
    for cid, center in state.centers.items():
        stock = state.stock[(sku, cid)]
        locations.append(
            {
                "location_id": cid,
                "location_name": center["name"],
                "on_hand_quantity": stock.on_hand,
                "committed_quantity": stock.committed,
                "fulfillable_quantity": stock.fulfillable,
                "damaged_quantity": stock.damaged,
            }
        )
    return {
        "inventory_id": state.inventory_ids[sku],
        "sku": sku,
        "name": f"Demo item {sku}",
        "total_on_hand_quantity": sum(x["on_hand_quantity"] for x in locations),
        "total_committed_quantity": sum(x["committed_quantity"] for x in locations),
        "total_fulfillable_quantity": sum(x["fulfillable_quantity"] for x in locations),
        "locations": locations,
    }


def snapshot(state: TplState) -> dict[str, Any]:
    """The whole state for ``GET /_sandbox/state``."""
    return {
        "seed": state.seed,
        "fulfillment_centers": list(state.centers.values()),
        "inventory": [inventory_json(state, sku) for sku in state.inventory_ids],
        "orders": [order_json(state, o) for o in state.orders.values()],
        "returns": [return_json(state, r) for r in state.returns.values()],
    }
