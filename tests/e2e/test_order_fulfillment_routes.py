"""Order-to-cash across fulfillment routes through real processes: split fulfillment and backorders.

One mesh runs for the module as processes (NATS, every service, the three stand-ins). Stock is
arranged the way it really changes: the 3PL's count (its `/_sandbox/inventory`), pulled by the
tpl-adapter's inventory snapshot into the inventory service, pushed by the shopify-adapter to
Shopify. The scenarios themselves (tests/support/scenarios.py) run on PostgreSQL too
(test_order_to_cash_postgres.py); what each asserts is in its docstring.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support import scenarios
from tests.support.mesh import Running, running_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """The mesh on SQLite; backordered orders wait for a stock signal (no early blind retry)."""
    async with running_mesh(
        tmp_path_factory.mktemp("fulfillment-routes") / "mesh", extra_env={"BACKORDER_RETRY_S": "900"}
    ) as mesh:
        yield mesh


async def test_an_order_split_over_two_locations_ships_twice_and_is_fully_invoiced(running: Running):
    await scenarios.order_split_over_two_locations_ships_twice_and_is_fully_invoiced(running)


async def test_a_backordered_line_waits_for_stock_at_the_3pl_then_ships_and_is_invoiced(running: Running):
    await scenarios.backordered_line_waits_for_stock_then_ships_and_is_invoiced(running)


async def test_a_line_backordered_with_one_of_three_keeps_that_unit_and_ships_all_three_when_stock_arrives(
    running: Running,
):
    await scenarios.backordered_line_with_partial_stock_keeps_what_it_has_and_ships_whole(running)
