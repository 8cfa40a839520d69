"""The ShipBob-like JSON API (date-versioned paths) and the 3PL's own control routes.

Every API request: bearer token (401), then the 150-per-minute sliding window per token (429 with
``x-retry-after``/``Retry-After``; every answer carries ``x-remaining-calls``), then the fault of
its operation (latency, errors, timeouts, dropped responses after commit).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common.control import CONTROL_PREFIX
from sandbox.common.faults import error_response, retry_after_header
from sandbox.tpl.payload import inventory_json, order_json, return_json, shipment_json
from sandbox.tpl.state import Line, Refused, ReturnItem
from sandbox.tpl.warehouse import Warehouse
from sandbox.tpl.webhook import TOPICS

Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    """A body the API cannot use (400)."""


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be an integer") from None


def api_routes(warehouse: Warehouse) -> list[Route]:
    """The ShipBob-like routes under ``/<api_version>/``."""
    settings = warehouse.settings
    state = warehouse.state
    prefix = f"/{settings.api_version}"

    def guarded(operation: str, handler: Handler, *, needs_channel: bool = False) -> Handler:
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
            if needs_channel:
                channel = request.headers.get("shipbob_channel_id", "")
                if not channel.isdigit() or int(channel) not in settings.channels:
                    response = error_response(
                        403,
                        "Forbidden",
                        f"shipbob_channel_id {channel!r} is missing or not a channel of this user",
                    )
                    response.headers["x-remaining-calls"] = remaining
                    return response
                request.state.channel_id = int(channel)

            async def handle() -> Response:
                try:
                    return await handler(request)
                except BadRequest as exc:
                    return error_response(400, "BadRequest", str(exc))
                except Refused as exc:
                    return error_response(exc.status, exc.code, exc.message)

            response = await warehouse.faults.guard(operation, handle)
            response.headers["x-remaining-calls"] = remaining
            return response

        return endpoint

    async def create_order(request: Request) -> Response:
        body = await _body(request)
        reference_id = str(body.get("reference_id") or "").strip()
        if not reference_id:
            raise BadRequest("reference_id is required")
        lines = []
        for product in body.get("products") or []:
            sku = str(product.get("reference_id") or product.get("sku") or "")
            lines.append(Line(sku, _int(product.get("quantity"), "products[].quantity")))
        channel_id = request.state.channel_id
        location = body.get("location_id")
        try:
            order = state.create_order(
                channel_id=channel_id,
                reference_id=reference_id,
                order_number=str(body.get("order_number") or ""),
                lines=lines,
                recipient=body.get("recipient") or {},
                shipping_method=str(body.get("shipping_method") or "Standard"),
                due_at=warehouse.first_due_at(),
                location_id=None if location is None else state.center_id(_int(location, "location_id")),
            )
        except Refused:
            warehouse.counter.record("orders", reference_id, created=False)
            raise
        warehouse.counter.record("orders", reference_id, created=True)
        return JSONResponse(order_json(state, order), status_code=201)

    async def list_orders(request: Request) -> Response:
        wanted = {r for r in request.query_params.get("ReferenceIds", "").split(",") if r}
        orders = [o for o in state.orders.values() if not wanted or o.reference_id in wanted]
        return JSONResponse([order_json(state, o) for o in orders])

    async def get_order(request: Request) -> Response:
        order = state.order(_int(request.path_params["order_id"], "order id"))
        return JSONResponse(order_json(state, order))

    async def cancel_order(request: Request) -> Response:
        order = state.cancel_order(_int(request.path_params["order_id"], "order id"))
        return JSONResponse(order_json(state, order))

    async def update_shipment_address(request: Request) -> Response:
        body = await _body(request)
        missing = [k for k in ("street_address1", "city") if not str(body.get(k) or "").strip()]
        if missing:
            raise BadRequest(f"{', '.join(missing)} required")
        shipment_id = _int(request.path_params["shipment_id"], "shipment id")
        order, _ = state.shipment(shipment_id)
        name = body.get("name") or order.recipient.get("name", "")
        recipient = {
            "name": str(name or ""),
            "company_name": body.get("company_name"),
            "email": body.get("email"),
            "phone_number": body.get("phone_number"),
            "address": {
                "address1": str(body["street_address1"]),
                "address2": str(body.get("street_address2") or ""),
                "city": str(body["city"]),
                "state": str(body.get("state") or ""),
                "zip_code": str(body.get("zip_code") or ""),
                "country": str(body.get("country_code") or ""),
            },
        }
        events = state.update_shipment_address(shipment_id, recipient)
        warehouse.dispatch(events)
        _, shipment = state.shipment(shipment_id)
        return JSONResponse(shipment_json(state, order, shipment))

    async def list_locations(request: Request) -> Response:
        return JSONResponse([{**c, "is_active": True} for c in state.centers.values()])

    async def list_inventory(request: Request) -> Response:
        wanted = [s for s in request.query_params.get("SKUs", "").split(",") if s]
        unknown = [s for s in wanted if s not in state.inventory_ids]
        if unknown:
            raise Refused(404, "NotFound", f"Unknown SKU(s): {', '.join(unknown)}")
        return JSONResponse([inventory_json(state, sku) for sku in wanted or state.inventory_ids])

    async def create_return(request: Request) -> Response:
        body = await _body(request)
        reference_id = str(body.get("reference_id") or "").strip()
        if not reference_id:
            raise BadRequest("reference_id is required")
        items = [
            ReturnItem(
                str(i.get("sku") or i.get("reference_id") or ""),
                _int(i.get("quantity"), "inventory[].quantity"),
            )
            for i in body.get("inventory") or []
        ]
        center = (body.get("fulfillment_center") or {}).get("id") or (
            body.get("fulfillment_center") or {}
        ).get("name")
        try:
            ret = state.create_return(
                channel_id=request.state.channel_id,
                reference_id=reference_id,
                center=center if center is not None else 1,
                items=items,
                original_shipment_id=body.get("original_shipment_id"),
                tracking_number=str(body.get("tracking_number") or ""),
                due_at=warehouse.return_due_at(),
            )
        except Refused:
            warehouse.counter.record("returns", reference_id, created=False)
            raise
        warehouse.counter.record("returns", reference_id, created=True)
        return JSONResponse(return_json(state, ret), status_code=201)

    async def get_return(request: Request) -> Response:
        ret = state.returns.get(_int(request.path_params["return_id"], "return id"))
        if ret is None:
            raise Refused(404, "NotFound", f"Return {request.path_params['return_id']} not found")
        return JSONResponse(return_json(state, ret))

    async def create_webhook(request: Request) -> Response:
        body = await _body(request)
        topic = str(body.get("topic") or "")
        url = str(body.get("subscription_url") or "")
        if topic not in TOPICS:
            raise BadRequest(f"topic must be one of {', '.join(TOPICS)}")
        if not url.startswith(("http://", "https://")):
            raise BadRequest("subscription_url must be an http(s) URL")
        subscription = warehouse.webhooks.subscribe(topic, url, str(body.get("description") or ""))
        return JSONResponse(subscription.json(), status_code=201)

    async def list_webhooks(request: Request) -> Response:
        return JSONResponse([s.json() for s in warehouse.webhooks.subscriptions.values()])

    async def delete_webhook(request: Request) -> Response:
        subscription_id = _int(request.path_params["webhook_id"], "webhook id")
        if warehouse.webhooks.subscriptions.pop(subscription_id, None) is None:
            raise Refused(404, "NotFound", f"Webhook {subscription_id} not found")
        return Response(status_code=204)

    return [
        Route(f"{prefix}/order", guarded("order.create", create_order, needs_channel=True), methods=["POST"]),
        Route(f"{prefix}/order", guarded("order.list", list_orders), methods=["GET"]),
        Route(f"{prefix}/order/{{order_id}}", guarded("order.get", get_order), methods=["GET"]),
        Route(f"{prefix}/order/{{order_id}}/cancel", guarded("order.cancel", cancel_order), methods=["POST"]),
        Route(f"{prefix}/order/{{order_id}}:cancel", guarded("order.cancel", cancel_order), methods=["POST"]),
        Route(
            f"{prefix}/shipment/{{shipment_id}}:updateAddress",
            guarded("shipment.update_address", update_shipment_address),
            methods=["PUT"],
        ),
        Route(f"{prefix}/location", guarded("location.list", list_locations), methods=["GET"]),
        Route(f"{prefix}/inventory-level", guarded("inventory.list", list_inventory), methods=["GET"]),
        Route(
            f"{prefix}/return", guarded("return.create", create_return, needs_channel=True), methods=["POST"]
        ),
        Route(f"{prefix}/return/{{return_id}}", guarded("return.get", get_return), methods=["GET"]),
        Route(f"{prefix}/webhook", guarded("webhook.create", create_webhook), methods=["POST"]),
        Route(f"{prefix}/webhook", guarded("webhook.list", list_webhooks), methods=["GET"]),
        Route(
            f"{prefix}/webhook/{{webhook_id}}", guarded("webhook.delete", delete_webhook), methods=["DELETE"]
        ),
    ]


def tpl_control_routes(warehouse: Warehouse) -> list[Route]:
    """The 3PL's own ``/_sandbox/...`` routes: run the warehouse now, inspect deliveries and files."""

    def refusals(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except BadRequest as exc:
                return error_response(400, "BadRequest", str(exc))
            except Refused as exc:
                return error_response(exc.status, exc.code, exc.message)

        return endpoint

    async def advance(request: Request) -> Response:
        body = await _body(request)
        steps = _int(body.get("steps", 1), "steps")
        events = warehouse.advance(force=bool(body.get("force", True)), steps=max(0, min(steps, 100)))
        return JSONResponse({"events": events})

    async def ship(request: Request) -> Response:
        body = await _body(request)
        order_id = _int(request.path_params["order_id"], "order id")
        events = warehouse.ship_now(order_id, split=bool(body.get("split", False)))
        return JSONResponse(
            {"events": events, "order": order_json(warehouse.state, warehouse.state.order(order_id))}
        )

    async def receive(request: Request) -> Response:
        body = await _body(request)
        damaged = body.get("damaged")
        events = warehouse.state.receive_return(
            _int(request.path_params["return_id"], "return id"),
            damaged={str(k): _int(v, "damaged") for k, v in damaged.items()}
            if isinstance(damaged, dict)
            else None,
        )
        return JSONResponse({"events": warehouse.dispatch(events)})

    async def set_inventory(request: Request) -> Response:
        body = await _body(request)
        stock = warehouse.state.set_stock(
            str(body.get("sku")), body.get("location", 1), _int(body.get("on_hand"), "on_hand")
        )
        return JSONResponse(
            {"on_hand": stock.on_hand, "committed": stock.committed, "fulfillable": stock.fulfillable}
        )

    async def adjust_inventory(request: Request) -> Response:
        body = await _body(request)
        adjustment = warehouse.adjust(
            str(body.get("sku")),
            body.get("location", 1),
            _int(body.get("delta"), "delta"),
            str(body.get("reason", "")),
        )
        stock = warehouse.state.stock[(adjustment.sku, adjustment.center_id)]
        return JSONResponse(
            {
                "id": adjustment.id,
                "adjusted_at": adjustment.adjusted_at,
                "on_hand": stock.on_hand,
                "damaged": stock.damaged,
                "committed": stock.committed,
                "fulfillable": stock.fulfillable,
            }
        )

    async def deliveries(request: Request) -> Response:
        return JSONResponse(warehouse.webhooks.log)

    async def edi_poll(request: Request) -> Response:
        if warehouse.mailbox is None:
            raise Refused(409, "EdiDisabled", "EDI mode is off: start with --edi-dir")
        result = warehouse.poll_mailbox()
        return JSONResponse(result.__dict__)

    async def edi_inventory_advice(request: Request) -> Response:
        if warehouse.mailbox is None:
            raise Refused(409, "EdiDisabled", "EDI mode is off: start with --edi-dir")
        name = warehouse.mailbox.write_inventory_advice()
        warehouse.written.append(name)
        return JSONResponse({"written": [name]})

    async def edi_written(request: Request) -> Response:
        return JSONResponse({"written": warehouse.written})

    p = CONTROL_PREFIX
    return [
        Route(f"{p}/advance", refusals(advance), methods=["POST"]),
        Route(f"{p}/orders/{{order_id}}/ship", refusals(ship), methods=["POST"]),
        Route(f"{p}/returns/{{return_id}}/receive", refusals(receive), methods=["POST"]),
        Route(f"{p}/inventory", refusals(set_inventory), methods=["POST"]),
        Route(f"{p}/inventory/adjust", refusals(adjust_inventory), methods=["POST"]),
        Route(f"{p}/webhooks/deliveries", refusals(deliveries), methods=["GET"]),
        Route(f"{p}/edi/poll", refusals(edi_poll), methods=["POST"]),
        Route(f"{p}/edi/inventory-advice", refusals(edi_inventory_advice), methods=["POST"]),
        Route(f"{p}/edi/written", refusals(edi_written), methods=["GET"]),
    ]
