"""The Celery peer's webhook receiver: check the signature, enqueue a task, answer 200.

Registers its subscriptions (Shopify `orders/create`, the 3PL's `order.shipped`) at start.
Run: `python -m bench.peers.celery_peer.webhooks --port N` with the environment of
`bench.peers.clients.Systems` and `CELERY_BROKER_URL`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.peers.celery_peer import tasks
from bench.peers.clients import Systems, order_bodies, shopify_hmac_ok, tpl_signature_ok
from sandbox.common.server import LOOPBACK, run


def create_app(systems: Systems) -> Starlette:
    """Two endpoints that only verify and enqueue."""
    tpl_secret: dict[str, str] = {}

    async def shopify_hook(request: Request) -> Response:
        body = await request.body()
        if not shopify_hmac_ok(
            body, request.headers.get("X-Shopify-Hmac-Sha256", ""), systems.webhook_secret
        ):
            return Response(status_code=401)
        order = json.loads(body)
        bc_order, tpl_order = order_bodies(order)
        # redis-py is blocking: enqueue from the thread pool, as a sync framework would.
        await run_in_threadpool(tasks.accept_order.delay, order["name"], bc_order, tpl_order)
        return Response(status_code=200)

    async def tpl_hook(request: Request) -> Response:
        body = await request.body()
        if not tpl_signature_ok(body, request.headers, tpl_secret.get("order.shipped", "")):
            return Response(status_code=401)
        await run_in_threadpool(tasks.fulfil_parcel.delay, json.loads(body))
        return Response(status_code=200)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(
            systems.shopify.subscribe, "ORDERS_CREATE", f"{systems.callback_url}/webhooks/shopify"
        )
        tpl_secret["order.shipped"] = await run_in_threadpool(
            systems.tpl.subscribe, "order.shipped", f"{systems.callback_url}/webhooks/tpl"
        )
        yield

    return Starlette(
        routes=[
            Route("/webhooks/shopify", shopify_hook, methods=["POST"]),
            Route("/webhooks/tpl", tpl_hook, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.celery_peer.webhooks")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    run(create_app(Systems(dict(os.environ))), host=LOOPBACK, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
