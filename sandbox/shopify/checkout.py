"""Customer and merchant actions that have no Admin API here: checkout, order edits, return requests.

HTTP (mounted by the app)::

    POST /_sandbox/checkout                  {"lines": [{"sku": "SKU-1001", "quantity": 2}], "email": ...}
    POST /_sandbox/orders/{order_id}/update  {"note": ..., "tags": [...], "email": ...,
                                             "shipping_address": {"address1", "city", "zip", ...}}
    POST /_sandbox/orders/{order_id}/edit    {"add": [{"sku", "quantity"}],
                                             "remove": [{"line_item_id", "quantity"}]}
    POST /_sandbox/orders/{order_id}/cancel  {"reason": "CUSTOMER", "restock": true}
    POST /_sandbox/orders/{order_id}/returns {"lines": [{"line_item_id", "quantity", "reason", "note"}]}

Each answers with the Shopify-shaped body of what it made (the same body the webhook carries);
refusals answer 422 ``{"errors": [{"field", "message", "code"}]}``.

CLI (places orders against a running stand-in, for demos and load)::

    python -m sandbox.shopify.checkout --base-url http://127.0.0.1:8001 --sku SKU-1001:2 --sku SKU-1004:1
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common.counters import CreateCounter
from sandbox.common.faults import FaultInjector
from sandbox.shopify import payloads
from sandbox.shopify.state import Rejected, Store, parse_gid


def _rejected(exc: Rejected) -> Response:
    status = 404 if any(e.code == "NOT_FOUND" and e.field == ["id"] for e in exc.errors) else 422
    return JSONResponse(
        {"errors": [{"field": e.field, "message": e.message, "code": e.code} for e in exc.errors]},
        status_code=status,
    )


def _bad_request(message: str) -> Response:
    return JSONResponse(
        {"errors": [{"field": None, "message": message, "code": "BAD_REQUEST"}]}, status_code=400
    )


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    data = json.loads(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def routes(store: Store, faults: FaultInjector, counter: CreateCounter) -> list[Route]:
    """The action routes, each guarded by the fault injector under its operation name."""

    def action(
        operation: str, handle: Callable[[Request, dict[str, Any]], Response]
    ) -> Callable[..., Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                body = await _body(request)
            except ValueError as exc:
                return _bad_request(f"invalid JSON body: {exc}")

            async def run() -> Response:
                try:
                    return handle(request, body)
                except Rejected as exc:
                    return _rejected(exc)
                except (KeyError, TypeError, ValueError) as exc:
                    return _bad_request(f"invalid request: {exc!r}")

            return await faults.guard(operation, run)

        return endpoint

    def order_id(request: Request) -> int:
        found = parse_gid(request.path_params["order_id"], "Order")
        if found is None:
            raise ValueError("order id must be a number or an Order gid")
        return found

    def place(request: Request, body: dict[str, Any]) -> Response:
        lines = [(str(x["sku"]), int(x.get("quantity", 1))) for x in body.get("lines", [])]
        order = store.checkout(
            lines,
            customer_email=body.get("email"),
            first_name=body.get("first_name"),
            last_name=body.get("last_name"),
            shipping_address=body.get("shipping_address"),
            note=body.get("note"),
            tags=body.get("tags") or (),
            test=bool(body.get("test", True)),
        )
        counter.record("orders", order.name, created=True)
        return JSONResponse({"order": payloads.order(store, order)}, status_code=201)

    def update(request: Request, body: dict[str, Any]) -> Response:
        order = store.update_order(
            order_id(request),
            note=body.get("note"),
            tags=body.get("tags"),
            email=body.get("email"),
            shipping_address=body.get("shipping_address"),
        )
        return JSONResponse({"order": payloads.order(store, order)})

    def edit(request: Request, body: dict[str, Any]) -> Response:
        order = store.edit_order(
            order_id(request),
            add=[(str(x["sku"]), int(x["quantity"])) for x in body.get("add", [])],
            remove=[
                (int(parse_gid(str(x["line_item_id"]), "LineItem") or 0), int(x["quantity"]))
                for x in body.get("remove", [])
            ],
        )
        return JSONResponse({"order": payloads.order(store, order)})

    def cancel(request: Request, body: dict[str, Any]) -> Response:
        ident = order_id(request)
        store.cancel_order(
            ident,
            reason=str(body.get("reason", "CUSTOMER")).upper(),
            restock=bool(body.get("restock", True)),
            staff_note=body.get("staff_note"),
        )
        return JSONResponse({"order": payloads.order(store, store.orders[ident])})

    def request_return(request: Request, body: dict[str, Any]) -> Response:
        ret = store.request_return(
            order_id(request),
            [
                (
                    int(parse_gid(str(x["line_item_id"]), "LineItem") or 0),
                    int(x.get("quantity", 1)),
                    str(x.get("reason", "UNKNOWN")).upper(),
                    str(x.get("note", "")),
                )
                for x in body.get("lines", [])
            ],
        )
        counter.record("returns", ret.name, created=True)
        return JSONResponse({"return": payloads.return_(store, ret)}, status_code=201)

    return [
        Route("/_sandbox/checkout", action("checkout", place), methods=["POST"]),
        Route("/_sandbox/orders/{order_id}/update", action("orders.update", update), methods=["POST"]),
        Route("/_sandbox/orders/{order_id}/edit", action("orders.edit", edit), methods=["POST"]),
        Route("/_sandbox/orders/{order_id}/cancel", action("orders.cancel", cancel), methods=["POST"]),
        Route(
            "/_sandbox/orders/{order_id}/returns", action("orders.return", request_return), methods=["POST"]
        ),
    ]


def _sku(value: str) -> dict[str, Any]:
    sku, _, qty = value.partition(":")
    if not sku:
        raise argparse.ArgumentTypeError("expected SKU or SKU:QUANTITY")
    return {"sku": sku, "quantity": int(qty or 1)}


def main(argv: list[str] | None = None) -> int:
    """Place orders on a running Shopify stand-in and print each order's id, gid and name."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.shopify.checkout", description=main.__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8001", help="the stand-in's base URL")
    parser.add_argument(
        "--sku",
        action="append",
        type=_sku,
        required=True,
        metavar="SKU[:QTY]",
        help="a line to buy; repeat for more lines",
    )
    parser.add_argument("--email", help="the customer's email (default: a seeded customer)")
    parser.add_argument("--count", type=int, default=1, help="how many identical orders to place")
    parser.add_argument("--note", help="order note")
    args = parser.parse_args(argv)
    body = {"lines": args.sku, "email": args.email, "note": args.note}
    with httpx.Client(base_url=args.base_url, timeout=10.0, trust_env=False) as client:
        for _ in range(args.count):
            response = client.post("/_sandbox/checkout", json=body)
            if response.status_code != 201:
                print(f"checkout failed ({response.status_code}): {response.text}", file=sys.stderr)
                return 1
            order = response.json()["order"]
            print(
                json.dumps(
                    {
                        "id": order["id"],
                        "admin_graphql_api_id": order["admin_graphql_api_id"],
                        "name": order["name"],
                        "total_price": order["total_price"],
                    }
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
