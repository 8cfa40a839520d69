"""Warehouse receiving orders (ShipBob's WROs): inbound stock announced by the merchant, received
at a fulfillment center, then read back by the merchant's integration.

API (same auth, request window and faults as the rest of the 3PL API):

    POST /<v>/receiving                    create a WRO (fulfillment_center, purchase_order_number,
                                           boxes[].box_items[] {inventory_id or sku, quantity})
    GET  /<v>/receiving?Statuses=&ExternalSync=&PurchaseOrderNumbers=   list WROs
    GET  /<v>/receiving/{id}               one WRO
    POST /<v>/receiving:setExternalSync    {ids, is_external_sync}: mark WROs as synced

Control: ``POST /_sandbox/receiving/{id}/receive`` ``{"received": {sku: n}, "damaged": {sku: n}}``
(defaults: everything expected, nothing damaged) receives the WRO now: good units come on hand,
damaged ones go to the center's damaged stock, the WRO is ``Completed``; in EDI mode a 944 with
``N9*PO*<purchase order number>`` is written to ``outbound/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from libs.x12 import Party, ReceiptAdvice, ReceiptException, ReceivedLine, Reference
from libs.x12 import receipt_advice as x944
from sandbox.common.control import CONTROL_PREFIX
from sandbox.common.faults import error_response, retry_after_header
from sandbox.tpl.state import Refused, now_iso


@dataclass
class ReceivingItem:
    """One SKU of a WRO: expected, then received (some maybe damaged)."""

    sku: str
    expected: int
    received: int = 0
    damaged: int = 0


@dataclass
class ReceivingOrder:
    """A warehouse receiving order."""

    id: int
    center_id: int
    purchase_order_number: str
    items: list[ReceivingItem]
    expected_arrival_date: str
    insert_date: str
    last_updated_date: str
    status: str = "Awaiting"
    external_sync_timestamp: str | None = None


@dataclass
class ReceivingBook:
    """Every WRO of the warehouse; cleared on reset."""

    orders: dict[int, ReceivingOrder] = field(default_factory=dict)
    next_id: int = 400001

    def clear(self) -> None:
        """Forget every WRO."""
        self.orders.clear()
        self.next_id = 400001


def wro_json(warehouse: Any, wro: ReceivingOrder) -> dict[str, Any]:
    """A WRO as the API shows it."""
    state = warehouse.state
    center = state.centers[wro.center_id]
    return {
        "id": wro.id,
        "status": wro.status,
        "purchase_order_number": wro.purchase_order_number,
        "package_type": "Package",
        "box_packaging_type": "EverythingInOneBox",
        "expected_arrival_date": wro.expected_arrival_date,
        "insert_date": wro.insert_date,
        "last_updated_date": wro.last_updated_date,
        "external_sync_timestamp": wro.external_sync_timestamp,
        "fulfillment_center": {"id": center["id"], "name": center["name"]},
        "inventory_quantities": [
            {
                "inventory_id": state.inventory_ids[item.sku],
                "sku": item.sku,
                "expected_quantity": item.expected,
                "received_quantity": item.received,
                "stowed_quantity": item.received - item.damaged,
            }
            for item in wro.items
        ],
    }


def receive(
    warehouse: Any, wro_id: int, received: dict[str, int] | None, damaged: dict[str, int]
) -> ReceivingOrder:
    """Receive a WRO now; good units on hand, damaged ones aside; a 944 in EDI mode."""
    book: ReceivingBook = warehouse.receiving
    wro = book.orders.get(wro_id)
    if wro is None:
        raise Refused(404, "NotFound", f"Receiving order {wro_id} not found")
    if wro.status != "Awaiting":
        raise Refused(422, "AlreadyReceived", f"Receiving order {wro_id} is {wro.status}")
    for item in wro.items:
        units = item.expected if received is None else max(0, int(received.get(item.sku, 0)))
        bad = min(units, max(0, int(damaged.get(item.sku, 0))))
        item.received, item.damaged = units, bad
        stock = warehouse.state.stock[(item.sku, wro.center_id)]
        stock.on_hand += units - bad
        stock.damaged += bad
    wro.status = "Completed"
    wro.last_updated_date = now_iso()
    if warehouse.mailbox is not None:
        warehouse.written.append(_write_944(warehouse, wro))
    return wro


def _write_944(warehouse: Any, wro: ReceivingOrder) -> str:
    center = warehouse.state.centers[wro.center_id]
    advice = ReceiptAdvice(
        receipt_number=str(wro.id),
        date=wro.last_updated_date[:10].replace("-", ""),
        order_number=wro.purchase_order_number,
        parties=[Party(code="WH", name=center["name"], id_qualifier="92", id=center["name"])],
        references=[Reference("PO", wro.purchase_order_number)] if wro.purchase_order_number else [],
        lines=[
            ReceivedLine(
                line_number=str(n),
                quantity=Decimal(item.received),
                product_ids={"SK": item.sku},
                exceptions=[ReceiptException(quantity=Decimal(item.damaged), condition=x944.DAMAGED)]
                if item.damaged
                else [],
            )
            for n, item in enumerate(wro.items, start=1)
            if item.received
        ],
    )
    return warehouse.mailbox.write_transactions([advice.to_transaction("0001")])


def receiving_routes(warehouse: Any) -> list[Route]:
    """The WRO API under ``/<api_version>/`` and the receive control route."""
    settings = warehouse.settings
    state = warehouse.state
    book: ReceivingBook = warehouse.receiving
    prefix = f"/{settings.api_version}"

    def guarded(operation: str, handler):
        async def endpoint(request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
            if token not in settings.tokens:
                return error_response(401, "Unauthorized", "Missing or invalid bearer token")
            window = warehouse.limiter(token)
            ok, wait = window.try_acquire()
            remaining = str(max(0, window.limit - window.in_window()))
            if not ok:
                after = retry_after_header(wait)
                return error_response(
                    429,
                    "TooManyRequests",
                    f"Rate limit of {window.limit} requests per {int(window.window_s)} s exceeded",
                    headers={"x-retry-after": after, "Retry-After": after, "x-remaining-calls": "0"},
                )

            async def handle() -> Response:
                try:
                    return await handler(request)
                except Refused as exc:
                    return error_response(exc.status, exc.code, exc.message)
                except (ValueError, TypeError, KeyError) as exc:
                    return error_response(400, "BadRequest", str(exc))

            response = await warehouse.faults.guard(operation, handle)
            response.headers["x-remaining-calls"] = remaining
            return response

        return endpoint

    async def create(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        center = state.center_id((body.get("fulfillment_center") or {}).get("id", ""))
        by_inventory_id = {v: k for k, v in state.inventory_ids.items()}
        expected: dict[str, int] = {}
        for box in body.get("boxes") or []:
            for item in box.get("box_items") or []:
                sku = item.get("sku") or by_inventory_id.get(int(item.get("inventory_id") or 0), "")
                if sku not in state.inventory_ids or int(item.get("quantity") or 0) <= 0:
                    raise Refused(422, "ValidationError", f"Invalid box item {item!r}")
                expected[sku] = expected.get(sku, 0) + int(item["quantity"])
        if not expected:
            raise Refused(422, "ValidationError", "A receiving order needs at least one box item")
        stamp = now_iso()
        wro = ReceivingOrder(
            id=book.next_id,
            center_id=center,
            purchase_order_number=str(body.get("purchase_order_number") or ""),
            items=[ReceivingItem(sku, quantity) for sku, quantity in expected.items()],
            expected_arrival_date=str(body.get("expected_arrival_date") or stamp),
            insert_date=stamp,
            last_updated_date=stamp,
        )
        book.next_id += 1
        book.orders[wro.id] = wro
        return JSONResponse(wro_json(warehouse, wro), status_code=201)

    async def list_wros(request: Request) -> Response:
        params = request.query_params
        statuses = {s for s in params.get("Statuses", "").split(",") if s}
        numbers = {s for s in params.get("PurchaseOrderNumbers", "").split(",") if s}
        sync = params.get("ExternalSync")
        found = [
            w
            for w in book.orders.values()
            if (not statuses or w.status in statuses)
            and (not numbers or w.purchase_order_number in numbers)
            and (sync is None or (w.external_sync_timestamp is not None) == (sync.lower() == "true"))
        ]
        return JSONResponse([wro_json(warehouse, w) for w in found])

    async def get_wro(request: Request) -> Response:
        wro = book.orders.get(int(request.path_params["wro_id"]))
        if wro is None:
            raise Refused(404, "NotFound", "Receiving order not found")
        return JSONResponse(wro_json(warehouse, wro))

    async def set_external_sync(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        flag = bool(body.get("is_external_sync"))
        changed = []
        for wro_id in body.get("ids") or []:
            wro = book.orders.get(int(wro_id))
            if wro is None:
                raise Refused(404, "NotFound", f"Receiving order {wro_id} not found")
            wro.external_sync_timestamp = datetime.now(UTC).isoformat() if flag else None
            changed.append(wro_json(warehouse, wro))
        return JSONResponse(changed)

    async def receive_now(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            wro = receive(
                warehouse,
                int(request.path_params["wro_id"]),
                body.get("received"),
                body.get("damaged") or {},
            )
        except Refused as exc:
            return error_response(exc.status, exc.code, exc.message)
        return JSONResponse(wro_json(warehouse, wro))

    return [
        Route(f"{prefix}/receiving", guarded("receiving.create", create), methods=["POST"]),
        Route(f"{prefix}/receiving", guarded("receiving.list", list_wros), methods=["GET"]),
        Route(
            f"{prefix}/receiving:setExternalSync",
            guarded("receiving.sync", set_external_sync),
            methods=["POST"],
        ),
        Route(f"{prefix}/receiving/{{wro_id:int}}", guarded("receiving.get", get_wro), methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/receiving/{{wro_id:int}}/receive", receive_now, methods=["POST"]),
    ]
