"""Customer-facing order flow keeps priority over bulk work in a tight ERP window (M5; issue #4,
scenario 6): the erp-adapter as wired in app.py, a real nats-server, the Business Central stand-in
over HTTP enforcing the same small request window the adapter budgets for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from libs.http.budget import Lane
from retail.orders.v1 import events_pb2 as order_events
from tests.integration.erp_adapter.conftest import Erp, Exchange, accepted, sales_order

#: Requests per window, at Business Central and in the adapter's budget.
LIMIT = 10
#: Business Central's window. The adapter counts against a window one second longer, so that a
#: request it sends as soon as its own window frees a slot is never counted at BC in the old one.
BC_WINDOW_S = 8.0
#: Bulk lanes go only while the window is less than half used; the rest is kept for order creation.
BULK_SHARE = 0.5
#: Bulk requests served at once: half the window, less the adapter's company look-up.
FIRST_BULK = int(LIMIT * BULK_SHARE) - 1
#: The bulk job: twice that, so half of it has to wait for the window to move.
BACKLOG = 2 * FIRST_BULK


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: what is tested is the adapter's use of the ERP, not its database."""
    return sqlite_url


@pytest.fixture
def bc_settings() -> dict[str, Any]:
    """Business Central allows LIMIT requests per BC_WINDOW_S and answers 429 beyond."""
    return {"rate_limit": LIMIT, "rate_window_s": BC_WINDOW_S}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """The adapter's budget: the same limit, a slightly longer window, bulk work waits its turn."""
    return {
        "bc_rate_limit": LIMIT,
        "bc_rate_window_s": BC_WINDOW_S + 1,
        "bc_bulk_share": BULK_SHARE,
        "bc_max_budget_wait_s": 60.0,
    }


async def test_an_accepted_order_reaches_the_erp_before_queued_bulk_work_and_nothing_is_refused(erp: Erp):
    client = erp.handlers.client
    await client.company_id()  # the adapter's first request, as at start-up
    # A bulk job (the purchase-order poll's request) asks for more than the bulk lanes' share at once;
    # with the order's requests, more than Business Central allows in one window.
    backlog = [
        asyncio.create_task(
            client.request("GET", "purchaseOrders", lane=Lane.BULK, params={"$select": "id,number"})
        )
        for _ in range(BACKLOG)
    ]
    await _until(
        lambda: (
            _served_bulk(erp) == client.budget.granted_by_lane[Lane.BULK]
            and (client.budget.delay(Lane.BULK) > 0 or all(task.done() for task in backlog))
        ),
        "the bulk job served as far as the budget lets it",
    )
    assert _served_bulk(erp) == FIRST_BULK  # the rest of the job waits for the window to move

    await erp.publish(accepted(sales_order("O-P1", "#2001")), key="O-P1")

    [created] = await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-P1")
    assert created.erp_sales_order.id
    assert _served_bulk(erp) == FIRST_BULK
    assert sum(task.done() for task in backlog) == FIRST_BULK
    # The job is delayed, not dropped: the rest is served once the window has moved.
    answers = await asyncio.wait_for(asyncio.gather(*backlog), timeout=2 * BC_WINDOW_S + 60)
    assert all("value" in answer for answer in answers)
    exchanges = list(erp.exchanges)
    order = [i for i, x in enumerate(exchanges) if x.method == "POST" and x.path.endswith("/salesOrders")]
    bulk = [i for i, x in enumerate(exchanges) if _is_bulk(x)]
    assert len(order) == 1 and len(bulk) == BACKLOG
    assert sum(i < order[0] for i in bulk) == FIRST_BULK  # the queued half went after the sales order
    assert len(exchanges) > LIMIT  # more than one window's worth: without the budget, 429s
    assert [x for x in exchanges if x.status == 429] == []
    assert await erp.created("#2001") == 1


def _is_bulk(exchange: Exchange) -> bool:
    return exchange.method == "GET" and exchange.path.endswith("/purchaseOrders")


def _served_bulk(erp: Erp) -> int:
    return sum(_is_bulk(x) for x in erp.exchanges)


async def _until(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
