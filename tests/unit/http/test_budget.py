"""libs.http.budget (M5): window, bulk share, priority lanes, 429 pauses."""

from __future__ import annotations

import asyncio

import pytest

from libs.http.budget import BudgetExhausted, Lane, RequestBudget


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bulk_lanes_stop_at_their_share_while_orders_still_get_slots() -> None:
    clock = Clock()
    budget = RequestBudget(10, 300, bulk_share=0.8, clock=clock)
    for _ in range(8):
        assert budget.delay(Lane.BULK) == 0
        budget._grant(Lane.BULK)

    assert budget.delay(Lane.BULK) == pytest.approx(300)
    assert budget.delay(Lane.POSTINGS) == pytest.approx(300)
    assert budget.delay(Lane.ORDERS) == 0


def test_the_window_slides_and_frees_slots() -> None:
    clock = Clock()
    budget = RequestBudget(2, 10, bulk_share=1.0, clock=clock)
    budget._grant(Lane.ORDERS)
    clock.now += 4
    budget._grant(Lane.ORDERS)

    assert budget.delay(Lane.ORDERS) == pytest.approx(6)
    clock.now += 6
    assert budget.delay(Lane.ORDERS) == 0
    assert budget.available() == pytest.approx(0.5)


def test_a_429_pause_stops_every_lane_for_retry_after() -> None:
    clock = Clock()
    budget = RequestBudget(100, 300, clock=clock)

    budget.pause(7)

    assert budget.delay(Lane.ORDERS) == pytest.approx(7)
    assert budget.available() == 0
    clock.now += 7
    assert budget.delay(Lane.ORDERS) == 0


async def test_with_the_budget_exhausted_an_order_create_goes_before_queued_bulk_work() -> None:
    budget = RequestBudget(2, 0.3, bulk_share=1.0)
    await budget.acquire(Lane.ORDERS)
    await budget.acquire(Lane.ORDERS)
    granted: list[str] = []

    async def take(lane: Lane, name: str) -> None:
        await budget.acquire(lane)
        granted.append(name)

    bulk = [asyncio.create_task(take(Lane.BULK, f"bulk-{i}")) for i in range(3)]
    posting = asyncio.create_task(take(Lane.POSTINGS, "posting"))
    await asyncio.sleep(0)  # the bulk and posting requests queue first
    order = asyncio.create_task(take(Lane.ORDERS, "order"))
    await asyncio.wait_for(asyncio.gather(*bulk, posting, order), timeout=5)

    assert granted[0] == "order"
    assert granted[1] == "posting"
    assert granted[2:] == ["bulk-0", "bulk-1", "bulk-2"]


async def test_a_caller_that_cannot_wait_gets_budget_exhausted_with_a_retry_after() -> None:
    budget = RequestBudget(1, 60, bulk_share=1.0)
    await budget.acquire(Lane.BULK)

    with pytest.raises(BudgetExhausted) as exhausted:
        await budget.acquire(Lane.BULK, max_wait=0.01)

    assert 0 < exhausted.value.retry_after <= 60
