"""An ASGI recorder in front of a sandbox stand-in: when each request of one kind began and ended,
and for which business key, so a test can show requests of different keys were in flight at once
(overlap, not wall-clock thresholds)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Call:
    """One recorded request, for the business object with key `key`."""

    method: str
    path: str
    key: str
    started: float
    ended: float | None = None


class InFlight:
    """ASGI middleware recording the requests whose path ends with `path_suffix`.

    Args:
        app: the stand-in's ASGI app.
        path_suffix: which requests to record (`/salesOrders`, `/order`).
        key_from_query: the key of a look-up, from the parsed query string.
        body_key: the JSON body field holding the key of a create.
    """

    def __init__(
        self,
        app: Any,
        *,
        path_suffix: str,
        key_from_query: Callable[[dict[str, list[str]]], str],
        body_key: str,
    ) -> None:
        self.app = app
        self.path_suffix = path_suffix
        self.key_from_query = key_from_query
        self.body_key = body_key
        self.calls: list[Call] = []

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(self.path_suffix):
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope["query_string"].decode())
        call = Call(scope["method"], scope["path"], self.key_from_query(query), time.monotonic())
        self.calls.append(call)
        body = bytearray()
        more = True
        while more:  # read the whole body now: the stand-in reads it only after its latency
            message = await receive()
            body.extend(message.get("body", b""))
            more = message.get("more_body", False)
        if call.method == "POST" and body:
            call.key = str(json.loads(body).get(self.body_key, ""))

        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()  # the disconnect, when the app waits for it
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        try:
            await self.app(scope, replay, send)
        finally:
            call.ended = time.monotonic()

    def most_keys_in_flight(self) -> int:
        """The most distinct keys with a request in flight at one moment."""
        done = [c for c in self.calls if c.key and c.ended is not None]
        return max(
            (len({c.key for c in done if c.started <= at < c.ended}) for at in (c.started for c in done)),
            default=0,
        )

    def creates(self, key: str) -> list[Call]:
        """The POST requests of one key."""
        return [c for c in self.calls if c.method == "POST" and c.key == key]
