"""The HTTP listener for the 3PL's webhooks: POST /webhooks/tpl, run by uvicorn inside the
service process. A delivery is answered 2xx only after it is verified and durably stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.tpl_adapter.webhooks.inbox import WebhookInbox
from services.tpl_adapter.webhooks.signature import verify
from services.tpl_adapter.webhooks.subscriptions import WebhookSecrets

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
PATH = "/webhooks/tpl"


def webhook_app(inbox: WebhookInbox, secrets: WebhookSecrets) -> Starlette:
    """The ASGI app: signature check (401), size limit (413), store, then 200."""

    async def receive(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        topic = request.headers.get("shipbob-topic", "")
        webhook_id = request.headers.get("webhook-id", "")
        ok = webhook_id and verify(
            secrets.for_topic(topic),
            webhook_id,
            request.headers.get("webhook-timestamp", ""),
            request.headers.get("webhook-signature", ""),
            body,
            now=time.time(),
        )
        if not ok:
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        created = await inbox.store(webhook_id, topic, body)
        return JSONResponse({"stored": True, "duplicate": not created})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route(PATH, receive, methods=["POST"]), Route("/healthz", health)])


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service's lifecycle owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebhookListener:
    """uvicorn serving the webhook app on (host, port) in this event loop; port 0 picks one."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self._server = _Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False)
        )
        self._task: asyncio.Task[None] | None = None
        self.port = port

    async def start(self) -> int:
        """Bind and serve; returns the bound port."""
        self._task = asyncio.create_task(self._server.serve(), name="tpl-webhook-listener")
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop accepting and finish requests in flight."""
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
