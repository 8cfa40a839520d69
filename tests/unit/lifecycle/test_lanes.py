"""`in_lanes`: one key's items in order, different keys at once within the bound, a failed item
logged and its lane going on."""

from __future__ import annotations

import asyncio
import logging

import pytest

from libs.lifecycle.lanes import in_lanes

WITHIN_S = 5.0


async def test_items_of_different_keys_run_at_once():
    started = {key: asyncio.Event() for key in ("a", "b")}

    def item(key: str, other: str):
        async def work() -> None:
            started[key].set()
            # Each waits for the other to have started: worked one after another, this would hang.
            await asyncio.wait_for(started[other].wait(), WITHIN_S)

        return work

    failed = await in_lanes([("a", item("a", "b")), ("b", item("b", "a"))], concurrency=2, name="t")

    assert failed == 0


async def test_items_of_one_key_run_one_after_another_in_the_order_given():
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

    await in_lanes([("k", item(str(n))) for n in range(4)], concurrency=4, name="t")

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

    failed = await in_lanes([(key, work) for key in range(9)], concurrency=3, name="t")

    assert (failed, most) == (0, 3)


async def test_a_failed_item_is_logged_and_its_lane_goes_on(caplog: pytest.LogCaptureFixture):
    done: list[str] = []

    async def broken() -> None:
        raise RuntimeError("boom")

    def ok(name: str):
        async def work() -> None:
            done.append(name)

        return work

    with caplog.at_level(logging.ERROR):
        failed = await in_lanes(
            [("k", broken), ("k", ok("after")), ("other", ok("other"))], concurrency=2, name="worker-x"
        )

    assert failed == 1
    assert sorted(done) == ["after", "other"]
    assert any("worker-x: item failed" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_nothing_to_do_and_a_bad_bound():
    assert await in_lanes([], concurrency=1, name="t") == 0
    with pytest.raises(ValueError, match="concurrency"):
        await in_lanes([], concurrency=0, name="t")
