"""The receiver floor: a webhook endpoint that checks the signature and answers 200, nothing more.

Not a peer a retailer would build: it stores nothing and does nothing with the order. It is what
the burst scenario's acknowledgement figures would be if receiving cost only the HTTP server and
the HMAC, on the same server stack the mesh's ingress uses (Starlette on uvicorn with httptools),
so the Shopify stand-in's own share of `webhook_ack_*` (one Python process sending through up to
1,000 connections on the same two cores) can be told apart from the receiver's.

Registers its `orders/create` subscription at start.
Run: `python -m bench.peers.null --port N` with the environment of `bench.peers.clients.Systems`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.peers.clients import Systems, shopify_hmac_ok
from sandbox.common.server import LOOPBACK, run


def create_app(systems: Systems) -> Starlette:
    """One endpoint that verifies and answers."""

    async def shopify_hook(request: Request) -> Response:
        body = await request.body()
        if not shopify_hmac_ok(
            body, request.headers.get("X-Shopify-Hmac-Sha256", ""), systems.webhook_secret
        ):
            return Response(status_code=401)
        return Response(status_code=200)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(
            systems.shopify.subscribe, "ORDERS_CREATE", f"{systems.callback_url}/webhooks/shopify"
        )
        yield

    return Starlette(routes=[Route("/webhooks/shopify", shopify_hook, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.null", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    run(create_app(Systems(dict(os.environ))), host=LOOPBACK, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
