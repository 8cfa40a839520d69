"""Peer 1, point-to-point inline: the webhook handler calls the ERP and the 3PL before answering.

The shape the seed warns about, written as a team would write it with Starlette: synchronous
handlers (run in the server's thread pool), one process.

- `POST /webhooks/shopify` (`orders/create`): check the HMAC; look the order up in Business Central
  by its name and create the sales order if it is not there; create the 3PL order (its reference
  id makes a repeat harmless); answer 200. Anything transient answers 500 so Shopify retries.
- `POST /webhooks/tpl` (`order.shipped`, one per parcel): check the signature; create the Shopify
  fulfillment with the parcel's tracking number (skipped if that number is already on the order),
  then ship and invoice the parcel's units in Business Central; answer 200, or 500 to be retried.
- A background thread copies the 3PL's fulfillable stock to Shopify every `PEER_INVENTORY_EVERY_S`.

Run: `python -m bench.peers.inline --port N` with the environment of `bench.peers.clients.Systems`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import threading
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.peers.clients import Refused, Systems, TryLater, order_bodies, shipped_units, shopify_hmac_ok
from bench.peers.clients import tpl_signature_ok as tpl_ok
from sandbox.common.server import LOOPBACK, run

log = logging.getLogger("peer.inline")


def create_app(systems: Systems) -> Starlette:
    """The inline peer: two webhook endpoints and an inventory sync thread."""
    tpl_secret: dict[str, str] = {}
    stop = threading.Event()

    def order_created(body: bytes, hmac_header: str) -> Response:
        if not shopify_hmac_ok(body, hmac_header, systems.webhook_secret):
            return Response(status_code=401)
        order = json.loads(body)
        bc_order, tpl_order = order_bodies(order)
        try:
            if systems.bc.sales_order(order["name"]) is None:
                systems.bc.create_sales_order(bc_order)
            systems.tpl.create_order(tpl_order)
        except TryLater as exc:
            log.warning("order %s: %s; Shopify will retry", order["name"], exc)
            return Response(status_code=500)
        except Refused as exc:
            log.error("order %s refused: %s", order["name"], exc)
        return Response(status_code=200)

    def order_shipped(body: bytes, headers: dict[str, str]) -> Response:
        if not tpl_ok(body, headers, tpl_secret.get("order.shipped", "")):
            return Response(status_code=401)
        shipment = json.loads(body)
        units = shipped_units(shipment)
        tracking = shipment["tracking"] or {}
        name = (shipment.get("order") or {}).get("order_number", "")
        try:
            systems.shopify.fulfill(
                f"gid://shopify/Order/{shipment['reference_id']}",
                units,
                tracking.get("carrier", "UPS"),
                tracking.get("tracking_number", ""),
            )
            bc_order = systems.bc.sales_order(name)
            if bc_order is not None:  # BC deletes an order once it is fully invoiced
                systems.bc.ship_and_invoice(bc_order, units)
        except TryLater as exc:
            log.warning("shipment %s: %s; the 3PL will retry", shipment.get("id"), exc)
            return Response(status_code=500)
        except Refused as exc:
            log.error("shipment %s refused: %s", shipment.get("id"), exc)
        return Response(status_code=200)

    async def shopify_hook(request: Request) -> Response:
        body = await request.body()
        # The blocking calls run in Starlette's thread pool, as a plain-function endpoint would.
        return await run_in_threadpool(order_created, body, request.headers.get("X-Shopify-Hmac-Sha256", ""))

    async def tpl_hook(request: Request) -> Response:
        body = await request.body()
        return await run_in_threadpool(order_shipped, body, dict(request.headers))

    def sync_forever() -> None:
        while not stop.wait(systems.inventory_every_s):
            try:
                systems.sync_inventory()
            except (TryLater, Refused) as exc:
                log.warning("inventory sync: %s", exc)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        systems.shopify.subscribe("ORDERS_CREATE", f"{systems.callback_url}/webhooks/shopify")
        tpl_secret["order.shipped"] = systems.tpl.subscribe(
            "order.shipped", f"{systems.callback_url}/webhooks/tpl"
        )
        syncer = threading.Thread(target=sync_forever, name="inventory-sync", daemon=True)
        syncer.start()
        yield
        stop.set()

    return Starlette(
        routes=[
            Route("/webhooks/shopify", shopify_hook, methods=["POST"]),
            Route("/webhooks/tpl", tpl_hook, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.inline", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run(create_app(Systems(dict(os.environ))), host=LOOPBACK, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
