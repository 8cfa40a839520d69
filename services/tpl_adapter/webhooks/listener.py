"""The app for the 3PL's webhooks, POST /webhooks/tpl, served in-process by libs.http.HttpListener.
A delivery is answered 2xx only after it is verified and durably stored."""

from __future__ import annotations

import logging
import time

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
