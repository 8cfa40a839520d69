"""`Lanes`: an item starts as soon as it is given, whatever is in flight; one key's items in order,
different keys at once within the bound; an item in progress is not started twice; a failed item
is logged and its lane goes on; `close` cancels what outlives its grace."""

from __future__ import annotations

import asyncio
import logging

import pytest

from libs.lifecycle.lanes import Lanes

WITHIN_S = 5.0


async def test_items_of_different_keys_run_at_once():
    started = {key: asyncio.Event() for key in ("a", "b")}

    def item(key: str, other: str):
        async def work() -> None:
            started[key].set()
            # Each waits for the other to have started: worked one after another, this would hang.
            await asyncio.wait_for(started[other].wait(), WITHIN_S)

        return work

    lanes = Lanes(concurrency=2, name="t")
    lanes.start("1", "a", item("a", "b"))
    lanes.start("2", "b", item("b", "a"))
    await asyncio.wait_for(lanes.idle(), WITHIN_S)

    assert (lanes.failed, len(lanes)) == (0, 0)


async def test_an_item_started_while_another_is_in_flight_does_not_wait_for_it():
    gate, quick_done = asyncio.Event(), asyncio.Event()
    done: list[str] = []

    async def slow() -> None:
        await asyncio.wait_for(gate.wait(), WITHIN_S)
        done.append("slow")

    async def quick() -> None:
        done.append("quick")
        quick_done.set()

    lanes = Lanes(concurrency=4, name="t")
    lanes.start("slow", "a", slow)
    await asyncio.sleep(0)  # the slow item is under way
    lanes.start("quick", "b", quick)
    await asyncio.wait_for(quick_done.wait(), WITHIN_S)  # in rounds, this would wait for `gate`
    in_flight = len(lanes)
    gate.set()
    await asyncio.wait_for(lanes.idle(), WITHIN_S)

    assert in_flight == 1
    assert done == ["quick", "slow"]


async def test_items_of_one_key_run_one_after_another_in_the_order_started():
    log: list[str] = []
    running = 0

    def item(name: str):
        async def work() -> None:
            nonlocal running
            running += 1
            log.append(f"start {name}")
            assert running == 1
            await asyncio.sleep(0)  # let any other item of the key run, if it could
            log.append(f"end {name}")
            running -= 1

        return work

    lanes = Lanes(concurrency=4, name="t")
    for n in range(2):
        lanes.start(n, "k", item(str(n)))
    await asyncio.sleep(0)  # the first is under way when the next two are given
    for n in range(2, 4):
        lanes.start(n, "k", item(str(n)))
    await asyncio.wait_for(lanes.idle(), WITHIN_S)

    assert lanes.failed == 0
    assert log == [f"{edge} {n}" for n in range(4) for edge in ("start", "end")]


async def test_no_more_than_concurrency_items_run_at_once():
    running, most = 0, 0
    gate = asyncio.Event()

    async def work() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        if most == 3:
            gate.set()
        await asyncio.wait_for(gate.wait(), WITHIN_S)
        running -= 1

    lanes = Lanes(concurrency=3, name="t")
    for key in range(9):
        lanes.start(key, key, work)
    await asyncio.wait_for(lanes.idle(), WITHIN_S)

    assert (lanes.failed, most) == (0, 3)


async def test_an_item_in_progress_is_not_started_twice():
    gate = asyncio.Event()
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1
        await asyncio.wait_for(gate.wait(), WITHIN_S)

    lanes = Lanes(concurrency=2, name="t")
    first = lanes.start("job-1", "k", work)
    again = lanes.start("job-1", "k", work)
    known = "job-1" in lanes
    gate.set()
    await asyncio.wait_for(lanes.idle(), WITHIN_S)
    after = lanes.start("job-1", "k", work)  # finished: may be started again (a retry)
    await asyncio.wait_for(lanes.idle(), WITHIN_S)

    assert (first, again, known, after, runs) == (True, False, True, True, 2)
    assert "job-1" not in lanes


async def test_a_failed_item_is_logged_and_its_lane_goes_on(caplog: pytest.LogCaptureFixture):
    done: list[str] = []

    async def broken() -> None:
        raise RuntimeError("boom")

    def ok(name: str):
        async def work() -> None:
            done.append(name)

        return work

    lanes = Lanes(concurrency=2, name="worker-x")
    with caplog.at_level(logging.ERROR):
        lanes.start(1, "k", broken)
        lanes.start(2, "k", ok("after"))
        lanes.start(3, "other", ok("other"))
        await asyncio.wait_for(lanes.idle(), WITHIN_S)

    assert lanes.failed == 1
    assert sorted(done) == ["after", "other"]
    assert any("worker-x: item failed" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_close_lets_quick_items_finish_and_cancels_what_outlives_the_grace():
    finished: list[str] = []
    cancelled: list[str] = []
    forever = asyncio.Event()

    async def quick() -> None:
        await asyncio.sleep(0)
        finished.append("quick")

    async def stuck() -> None:
        try:
            await forever.wait()
        except asyncio.CancelledError:
            cancelled.append("stuck")
            raise

    lanes = Lanes(concurrency=2, name="t")
    lanes.start("quick", "a", quick)
    lanes.start("stuck", "b", stuck)
    await asyncio.wait_for(lanes.close(grace=0.2), WITHIN_S)

    assert (finished, cancelled, len(lanes), lanes.failed) == (["quick"], ["stuck"], 0, 0)


def test_a_bad_bound():
    with pytest.raises(ValueError, match="concurrency"):
        Lanes(concurrency=0, name="t")
