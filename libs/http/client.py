"""The adapters' outbound HTTP client: httpx's API on aiohttp's connections.

httpx's own asyncio transport (httpcore on anyio) cost 0.9-1.4 ms of CPU per request on the
bench machine, aiohttp 0.1-0.2 ms; httpx on the `httpx-aiohttp` transport 0.3-0.45 ms
(`bench/README.md`). The adapters keep httpx's requests, responses, timeouts, event hooks and
`MockTransport` in their tests; only the connections change.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


def _mapped(error: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx error an operator expects to read for an aiohttp failure."""
    message = str(error) or type(error).__name__
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(error, aiohttp.SocketTimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(error, TimeoutError):
        return httpx.TimeoutException(message, request=request)
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(error, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return httpx.ReadError(message, request=request)
    return httpx.TransportError(message, request=request)


class _Transport(AiohttpTransport):
    """`AiohttpTransport` whose every failure is the httpx error httpx itself would raise.

    The library maps a refused connection to `ConnectTimeout` (what an operator then reads as the
    adapter's `last_failure`), and an aiohttp error it does not know would escape the adapters'
    `except httpx.HTTPError` and be taken for a bug instead of a transient failure.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.HTTPError as error:
            cause = error.__cause__
            if cause is None or isinstance(cause, httpx.HTTPError):
                raise
            raise _mapped(cause, request) from cause
        except (TimeoutError, aiohttp.ClientError) as error:
            raise _mapped(error, request) from error


def async_client(*, transport: httpx.AsyncBaseTransport | None = None, **options: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` on aiohttp's connections (or on `transport`, for tests).

    Args:
        transport: a transport to use instead (tests pass `httpx.MockTransport`).
        options: `httpx.AsyncClient` options (`base_url`, `headers`, `timeout`, `event_hooks`).
    """
    return httpx.AsyncClient(transport=transport or _Transport(trust_env=False), **options)
