"""Work one round of a worker's items concurrently, keeping each key's items in order.

An adapter's worker finds a batch of due items (stored webhooks, fulfillment jobs) and works each
with one or two HTTP or gRPC round trips. Worked one after another, the tenth item of a batch
waits for nine round trips; a flash sale ships in batches. `in_lanes` works the items of different
keys at once (at most `concurrency`) and the items of one key one after another, in the order
given, so what must stay ordered (two reports about one shipment, two fulfillments of one order)
still is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable

log = logging.getLogger(__name__)


async def in_lanes(
    items: Iterable[tuple[Hashable, Callable[[], Awaitable[object]]]],
    *,
    concurrency: int,
    name: str,
) -> int:
    """Run every `(key, work)` and return how many raised.

    Items with the same key run one after another, in the order given; lanes run at once, at most
    `concurrency` items at a time. An item that raises is logged with `name` and its lane goes on
    with the next item: one bad item never holds back the others.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    lanes: dict[Hashable, list[Callable[[], Awaitable[object]]]] = {}
    for key, work in items:
        lanes.setdefault(key, []).append(work)
    slots = asyncio.Semaphore(concurrency)
    failed = 0

    async def lane(works: list[Callable[[], Awaitable[object]]]) -> None:
        nonlocal failed
        for work in works:
            async with slots:
                try:
                    await work()
                except Exception:
                    failed += 1
                    log.exception("%s: item failed", name)

    if len(lanes) == 1:  # the common quiet case: no task to create
        await lane(next(iter(lanes.values())))
    elif lanes:
        await asyncio.gather(*(lane(works) for works in lanes.values()))
    return failed
