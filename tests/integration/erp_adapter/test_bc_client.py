"""The Business Central client's own HTTP (aiohttp): what a missing or silent ERP becomes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from libs.bus.embedded import free_port
from libs.http.answer import Answer
from libs.http.budget import Lane, RequestBudget
from services.erp_adapter.clients.business_central import (
    BcError,
    BcTransientError,
    BusinessCentralClient,
)


def client(base_url: str, **options) -> BusinessCentralClient:
    return BusinessCentralClient(
        base_url=base_url,
        tenant_id="tenant",
        client_id="mesh",
        client_secret=lambda: "secret",
        budget=RequestBudget(100, 60),
        company_id="c1",
        **options,
    )


@pytest.fixture
async def erp() -> AsyncIterator[str]:
    """An ERP that grants tokens, answers one order, and never answers `slow`."""

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        assert form["grant_type"] == "client_credentials"
        return web.json_response({"access_token": "t", "expires_in": 3600})

    async def order(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer t"
        assert request.query["$filter"] == "number eq 'S-1'"
        return web.json_response({"value": [{"id": "so-1"}]}, headers={"ETag": 'W/"1"'})

    released = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await released.wait()  # until the test is over
        return web.json_response({})

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/api/v2.0/companies(c1)/salesOrders")

    app = web.Application()
    app.router.add_post("/tenant/oauth2/v2.0/token", token)
    app.router.add_get("/api/v2.0/companies(c1)/salesOrders", order)
    app.router.add_get("/api/v2.0/companies(c1)/slow", slow)
    app.router.add_post("/api/v2.0/companies(c1)/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        released.set()
        await runner.cleanup()


async def test_a_request_with_its_query_and_token_is_answered_and_shown_to_the_hooks(erp: str) -> None:
    seen: list[Answer] = []

    async def hook(answer: Answer) -> None:
        seen.append(answer)

    async with client(erp, on_response=[hook]) as bc:
        found = await bc.find("salesOrders", "number eq 'S-1'", lane=Lane.ORDERS)

    assert found == [{"id": "so-1"}]
    assert [(a.method, a.path, a.status_code) for a in seen] == [
        ("POST", "/tenant/oauth2/v2.0/token", 200),
        ("GET", "/api/v2.0/companies(c1)/salesOrders", 200),
    ]
    assert seen[1].headers["ETag"] == 'W/"1"' and seen[1].is_success


async def test_an_erp_that_does_not_answer_in_time_is_a_transient_timeout(erp: str) -> None:
    async with client(erp, timeout_s=0.3) as bc:
        with pytest.raises(BcTransientError) as raised:
            await bc.request("GET", "slow", lane=Lane.ORDERS)

    assert (raised.value.status, raised.value.code) == (0, "Timeout")
    assert bc.health.last_failure == "0 Timeout"


async def test_an_erp_nobody_listens_for_is_a_transient_failure_of_the_token() -> None:
    async with client(f"http://127.0.0.1:{free_port()}") as bc:
        with pytest.raises(BcTransientError) as raised:
            await bc.request("GET", "salesOrders", lane=Lane.ORDERS)

    assert (raised.value.status, raised.value.code) == (0, "TokenUnreachable")
    assert raised.value.message == "ConnectionError"


async def test_a_redirect_is_an_answer_not_followed(erp: str) -> None:
    async with client(erp) as bc:
        with pytest.raises(BcError) as raised:
            await bc.request("POST", "moved", lane=Lane.ORDERS, json={})

    assert raised.value.status == 307
