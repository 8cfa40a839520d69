"""AckBatch: the acks of a moment are published together, and none is left behind on flush."""

from __future__ import annotations

import asyncio

from libs.bus.consumer import AckBatch


class FakeMsg:
    """A delivered message that records when it was acked and by which task."""

    def __init__(self, acked: list[tuple[str, float, object]], name: str) -> None:
        self.acked = acked
        self.name = name

    async def ack(self) -> None:
        self.acked.append((self.name, asyncio.get_running_loop().time(), asyncio.current_task()))


async def test_acks_of_a_moment_wait_for_the_delay_and_go_together() -> None:
    acked: list[tuple[str, float, object]] = []
    batch = AckBatch(delay=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for name in ("a", "b", "c"):
        batch.add(FakeMsg(acked, name))
    await asyncio.sleep(0)
    assert acked == []  # none sent at once
    await asyncio.sleep(0.06)  # the delay passed: sent

    await asyncio.wait_for(asyncio.gather(*batch._sending), 5)  # the one send under way
    assert [name for name, *_ in acked] == ["a", "b", "c"]
    assert acked[0][1] - started >= 0.05
    assert len({task for *_, task in acked}) == 1  # in one go


async def test_flush_sends_what_waits_at_once() -> None:
    acked: list[tuple[str, float, object]] = []
    batch = AckBatch(delay=60)
    batch.add(FakeMsg(acked, "a"))
    await batch.flush()
    assert [name for name, *_ in acked] == ["a"]
    await batch.flush()  # nothing left: a no-op
    assert len(acked) == 1


async def test_an_ack_that_fails_does_not_stop_the_others() -> None:
    acked: list[tuple[str, float, object]] = []

    class Broken(FakeMsg):
        async def ack(self) -> None:
            raise ConnectionError("disconnected")

    batch = AckBatch(delay=60)
    batch.add(Broken(acked, "x"))
    batch.add(FakeMsg(acked, "b"))
    await batch.flush()
    assert [name for name, *_ in acked] == ["b"]
