"""Load-test routes of the Shopify stand-in: a bulk checkout and the shop's timed records.

HTTP (mounted by the app)::

    POST /_sandbox/checkout/bulk  {"orders": [{"lines": [{"sku", "quantity"}], "email"?}, ...]}
    GET  /_sandbox/records

The bulk checkout places every order in one turn of the event loop, exactly as ``/_sandbox/checkout``
places one, so their webhooks all leave at once (a flash-sale burst that one HTTP client could not
offer); a refused order (no stock) is reported and the rest go on. It answers 200 ``{"created":
[{"id", "name", "created_at"}], "refused": [{"index", "errors"}]}``. Fault operation
``checkout.bulk``.

The records are what a benchmark reads its figures from, stamped by the stand-in's own clock (Unix
seconds, microsecond precision, unlike the whole seconds of the webhook bodies): every order with
its lines and routed location, every fulfillment with its tracking numbers and the units it
fulfilled, every inventory adjustment group (``inventorySetQuantities`` and
``inventoryAdjustQuantities``) with the quantities it set, and every fulfillment order move
(``fulfillmentOrderMove``) with the units it took from one location to another. A line's location
stays the one checkout routed it to; a move's record says when its committed units changed place.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common.counters import CreateCounter
from sandbox.common.faults import FaultInjector, error_response
from sandbox.shopify.state import Rejected, Store


def _stamp(at: Any) -> float | None:
    return at.timestamp() if at is not None else None


def records(store: Store) -> dict[str, Any]:
    """The timed records of orders, fulfillments, inventory adjustments and moves, JSON-ready."""
    routed_from: dict[int, str] = {}
    for move in store.fulfillment_order_moves:
        for line_id, _ in move.lines:
            routed_from.setdefault(line_id, store.locations[move.from_location_id].code)
    orders = []
    for order in store.orders.values():
        location_of: dict[int, str] = {}
        for fo_id in order.fulfillment_order_ids:
            fo = store.fulfillment_orders[fo_id]
            for fo_line in fo.line_items:
                location_of[fo_line.line_item_id] = store.locations[fo.location_id].code
        # A move changes the fulfillment orders, not where checkout committed the stock.
        location_of.update((li.id, routed_from[li.id]) for li in order.line_items if li.id in routed_from)
        fulfillments = []
        for f_id in order.fulfillment_ids:
            fulfillment = store.fulfillments[f_id]
            units: dict[str, int] = {}
            for f_line in fulfillment.line_items:
                line = store.line_item(order, f_line.line_item_id)
                sku = line.sku if line is not None else str(f_line.line_item_id)
                units[sku] = units.get(sku, 0) + f_line.quantity
            fulfillments.append(
                {
                    "id": fulfillment.gid,
                    "created_at": _stamp(fulfillment.created_at),
                    "status": fulfillment.status,
                    "tracking_numbers": [t.number for t in fulfillment.tracking if t.number],
                    "units": units,
                    "fulfillment_order_ids": [str(i) for i in fulfillment.fulfillment_order_ids],
                }
            )
        orders.append(
            {
                "id": order.id,
                "name": order.name,
                "created_at": _stamp(order.created_at),
                "cancelled": order.cancelled_at is not None,
                "lines": [
                    {"sku": li.sku, "quantity": li.quantity, "location": location_of.get(li.id)}
                    for li in order.line_items
                ],
                "fulfillments": fulfillments,
            }
        )
    adjustments = []
    for group in store.adjustment_groups.values():
        adjustments.append(
            {
                "id": group.gid,
                "created_at": _stamp(group.created_at),
                "reason": group.reason,
                "changes": [
                    {
                        "name": change.name,
                        "sku": store.inventory_items[change.item_id].sku,
                        "location": store.locations[change.location_id].code,
                        "delta": change.delta,
                        "quantity_after_change": change.quantity_after_change,
                    }
                    for change in group.changes
                ],
            }
        )
    adjustments.sort(key=lambda g: g["created_at"] or 0.0)
    moves = []
    for move in store.fulfillment_order_moves:
        order = store.orders[move.order_id]
        units: dict[str, int] = {}
        for line_id, quantity in move.lines:
            line = store.line_item(order, line_id)
            sku = line.sku if line is not None else str(line_id)
            units[sku] = units.get(sku, 0) + quantity
        moves.append(
            {
                "created_at": _stamp(move.created_at),
                "order": order.name,
                "original_fulfillment_order_id": str(move.original_id),
                "moved_fulfillment_order_id": str(move.moved_id),
                "from": store.locations[move.from_location_id].code,
                "to": store.locations[move.to_location_id].code,
                "units": units,
            }
        )
    return {"orders": orders, "inventory_adjustments": adjustments, "fulfillment_order_moves": moves}


def routes(store: Store, faults: FaultInjector, counter: CreateCounter) -> list[Route]:
    """The bulk checkout and the records route."""

    async def bulk_checkout(request: Request) -> Response:
        try:
            raw = await request.body()
            body = json.loads(raw) if raw.strip() else {}
            wanted = [
                [(str(x["sku"]), int(x.get("quantity", 1))) for x in spec.get("lines", [])]
                for spec in body["orders"]
            ]
            emails = [spec.get("email") for spec in body["orders"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return error_response(400, "BadRequest", f"expected {{'orders': [{{'lines': [...]}}]}}: {exc!r}")

        async def place_all() -> Response:
            created, refused = [], []
            for index, (lines, email) in enumerate(zip(wanted, emails, strict=True)):
                try:
                    order = store.checkout(lines, customer_email=email)
                except Rejected as exc:
                    refused.append({"index": index, "errors": [e.message for e in exc.errors]})
                    continue
                counter.record("orders", order.name, created=True)
                created.append({"id": order.id, "name": order.name, "created_at": _stamp(order.created_at)})
            return JSONResponse({"created": created, "refused": refused})

        return await faults.guard("checkout.bulk", place_all)

    async def get_records(request: Request) -> Response:
        return JSONResponse(records(store))

    return [
        Route("/_sandbox/checkout/bulk", bulk_checkout, methods=["POST"]),
        Route("/_sandbox/records", get_records, methods=["GET"]),
    ]
