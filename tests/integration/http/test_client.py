"""libs.http.client against a real aiohttp server on loopback: what the adapters rely on from
httpx (base URL, headers, params, JSON both ways, form bodies, event hooks) still holds on aiohttp's
connections, and every failure reaches the caller as an `httpx.HTTPError`."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from libs.http.client import async_client


async def _echo(request: web.Request) -> web.StreamResponse:
    if request.path == "/slow":
        await asyncio.sleep(2)
    if request.path == "/hang-up":
        assert request.transport is not None
        request.transport.close()
        return web.Response()
    if request.content_type == "application/x-www-form-urlencoded":
        body: object = dict(await request.post())
    else:
        body = await request.json() if request.can_read_body else None
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "auth": request.headers.get("Authorization"),
            "body": body,
        },
        status=201 if request.method == "POST" else 200,
        headers={"x-remaining-calls": "149"},
    )


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_a_request_and_its_answer_go_through_as_httpx_sends_them(server: str) -> None:
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async with async_client(
        base_url=server, headers={"Authorization": "Bearer t"}, timeout=5, event_hooks={"request": [hook]}
    ) as http:
        response = await http.post("/v1/orders", params={"page": "2"}, json={"sku": "A", "qty": 2})
        form = await http.post("/token", data={"grant_type": "client_credentials"})

    assert response.status_code == 201
    assert response.headers["x-remaining-calls"] == "149"
    assert response.json() == {
        "method": "POST",
        "path": "/v1/orders",
        "query": {"page": "2"},
        "auth": "Bearer t",
        "body": {"sku": "A", "qty": 2},
    }
    assert form.json()["body"] == {"grant_type": "client_credentials"}
    assert seen == ["/v1/orders", "/token"]


async def test_a_late_answer_is_a_timeout(server: str) -> None:
    async with async_client(base_url=server, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/slow")


async def test_a_refused_connection_and_a_hang_up_are_transport_errors(server: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    async with async_client(timeout=2) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{closed}/")
        with pytest.raises(httpx.TransportError):
            await http.get(f"{server}/hang-up")


async def test_a_test_transport_replaces_the_connections() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    async with async_client(transport=transport) as http:
        assert (await http.get("http://erp.invalid/")).status_code == 204
