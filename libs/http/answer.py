"""Outbound HTTP on aiohttp directly, for the adapters' hottest clients: one request, its answer read
whole.

`libs.http.client` gives httpx's API on aiohttp's connections (the 3PL client uses it). On the calls
an order makes many of (Business Central's seven, Shopify's Admin API), httpx's request building (its
pure-Python URL parsing) and send wrappers cost more than aiohttp's own work under them: 23 % of the
erp-adapter's CPU in the flash-sale burst. Those clients call `exchange` (decision 0048).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read whole.

    Attributes:
        method: the request's method.
        url: the request's URL, with its query.
        status_code: HTTP status.
        reason_phrase: HTTP reason.
        headers: the answer's headers.
        content: the body.
    """

    method: str
    url: str
    status_code: int
    reason_phrase: str
    headers: Mapping[str, str]  # aiohttp's, case-insensitive
    content: bytes

    @property
    def path(self) -> str:
        """The URL's path (no query)."""
        return urlsplit(self.url).path

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON (ValueError when it is not)."""
        return json.loads(self.content)


def session(timeout_s: float, *, limit: int = 100) -> aiohttp.ClientSession:
    """A client session (make it on the running loop): `timeout_s` per request, `limit` connections,
    no proxy settings from the environment."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        connector=aiohttp.TCPConnector(limit=limit),
        trust_env=False,
    )


async def exchange(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    json: Any = None,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """One request and its whole answer. A redirect is an answer, not followed (as httpx does by
    default): an API that redirects a call is told about, not obeyed with a changed method.

    Raises:
        TimeoutError: no answer within the session's timeout.
        aiohttp.ClientError: no connection, or it broke.
    """
    async with http.request(
        method, url, params=params, json=json, data=data, headers=headers, allow_redirects=False
    ) as response:
        return Answer(
            method,
            str(response.url),
            response.status,
            response.reason or "",
            response.headers,
            await response.read(),
        )
