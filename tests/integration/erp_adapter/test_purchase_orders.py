"""Purchase orders as incoming stock (MISSION I5, issue 5): the erp-adapter's poll reads the
Business Central stand-in over real HTTP and records each order with a real inventory servicer
(its outbox relayed to a real nats-server: fixture `mesh` of the inventory integration tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.bus import MIGRATIONS
from libs.store import migrated
from services.erp_adapter import store
from services.erp_adapter.app import business_central
from services.erp_adapter.config import ErpAdapterSettings
from services.erp_adapter.inbound import PurchaseOrderPoller
from tests.integration.inventory import test_reconciliation as reconciliation
from tests.integration.inventory.test_reconciliation import Mesh, position

mesh = reconciliation.mesh  # the fixture: inventory servicer, outbox relayed to a real nats-server


@pytest.fixture
async def poller(
    mesh: Mesh,
    bc_url: str,
    tmp_path: Path,
) -> AsyncIterator[tuple[PurchaseOrderPoller, httpx.AsyncClient]]:
    """The erp-adapter's purchase-order poll (polled by the test) and an authorized BC client."""
    settings = ErpAdapterSettings(
        grpc_port=0,
        metrics_port=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'erp.db'}",
        bc_base_url=bc_url,
        bc_client_secret="sandbox-secret",
    )
    async with migrated(settings.database_url, [MIGRATIONS, store.MIGRATIONS]) as db:
        async with business_central(settings) as client:
            async with httpx.AsyncClient(base_url=bc_url, timeout=10) as http:
                token = (
                    await http.post(
                        "/sandbox/oauth2/v2.0/token",
                        data={
                            "grant_type": "client_credentials",
                            "client_id": "retail-mesh",
                            "client_secret": "sandbox-secret",
                            "scope": settings.bc_scope,
                        },
                    )
                ).json()["access_token"]
                company = (
                    await http.get("/api/v2.0/companies", headers={"Authorization": f"Bearer {token}"})
                ).json()
                http.base_url = f"{bc_url}/api/v2.0/companies({company['value'][0]['id']})"
                http.headers["Authorization"] = f"Bearer {token}"
                yield PurchaseOrderPoller(db, client, mesh.stub), http


async def create(http: httpx.AsyncClient, *lines: tuple[str, int]) -> dict[str, Any]:
    reply = await http.post(
        "/purchaseOrders",
        json={
            "vendorNumber": "V10000",
            "purchaseOrderLines": [
                {"lineType": "Item", "lineObjectNumber": s, "quantity": q} for s, q in lines
            ],
        },
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


async def test_an_open_purchase_order_becomes_incoming_once_and_stops_counting_when_received(
    mesh: Mesh,
    poller: tuple[PurchaseOrderPoller, httpx.AsyncClient],
):
    poll, http = poller
    order = await create(http, ("SKU-1003", 12), ("SKU-1004", 5))

    first = await poll.poll()
    version = (await position(mesh, "SKU-1003")).version
    again = await poll.poll()

    assert first.recorded == [order["number"]] and again.recorded == []
    assert ((await position(mesh, "SKU-1003")).incoming, (await position(mesh, "SKU-1004")).incoming) == (
        12,
        5,
    )
    assert (await position(mesh, "SKU-1003")).version == version

    posted = await http.post(f"/purchaseOrders({order['id']})/Microsoft.NAV.receiveAndInvoice")
    assert posted.status_code == 204, posted.text
    closing = await poll.poll()

    assert closing.closed == [order["number"]]
    assert ((await position(mesh, "SKU-1003")).incoming, (await position(mesh, "SKU-1004")).incoming) == (
        0,
        0,
    )


async def test_only_orders_changed_since_the_watermark_are_read_again(
    mesh: Mesh,
    poller: tuple[PurchaseOrderPoller, httpx.AsyncClient],
):
    poll, http = poller
    first = await create(http, ("SKU-1003", 2))
    await poll.poll()

    second = await create(http, ("SKU-1003", 3))
    result = await poll.poll()

    assert result.recorded == [second["number"]] and first["number"] not in result.recorded
    assert (await position(mesh, "SKU-1003")).incoming == 5
