"""Work a worker's items in the background as they are found, keeping each key's items in order.

An adapter's worker finds due items (stored webhooks, fulfillment jobs) and works each with one or
two HTTP or gRPC round trips. Worked one after another, the tenth item of a wave waits for nine
round trips; worked in rounds, an item found while a round is under way waits for the round's
slowest item (decision 0040). `Lanes` starts every item as soon as it is found: items of
different keys at once (at most `concurrency`), items of one key one after another in the order
started, so what must stay ordered (two reports about one shipment, two fulfillments of one
order) still is. An item already being worked is not started twice, so a worker can look for due
items again while earlier ones are still in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)


class Lanes:
    """Items worked in tasks: one key's in order, different keys at once within `concurrency`.

    Args:
        concurrency: items worked at once, over every key.
        name: the worker's name, for logs and task names.
    """

    def __init__(self, *, concurrency: int, name: str) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.name = name
        #: Items that raised since the start (each is logged).
        self.failed = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._users: defaultdict[Hashable, int] = defaultdict(int)
        self._items: set[Hashable] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def __contains__(self, item: Hashable) -> bool:
        """Whether `item` is started and not finished yet."""
        return item in self._items

    def __len__(self) -> int:
        """Items started and not finished yet."""
        return len(self._items)

    def start(self, item: Hashable, key: Hashable, work: Callable[[], Awaitable[object]]) -> bool:
        """Work `item` in `key`'s lane, after the items started there before it; False (and
        nothing started) when `item` is still being worked."""
        if item in self._items:
            return False
        self._items.add(item)
        self._users[key] += 1
        task = asyncio.create_task(self._work(item, key, work), name=f"{self.name}:{item}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _work(self, item: Hashable, key: Hashable, work: Callable[[], Awaitable[object]]) -> None:
        lane = self._locks.setdefault(key, asyncio.Lock())
        try:
            # The key's lane first (asyncio.Lock is first come, first served), then a slot.
            async with lane, self._slots:
                await work()
        except Exception:
            self.failed += 1
            log.exception("%s: item failed", self.name, extra={"item": str(item)})
        finally:
            self._items.discard(item)
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                self._locks.pop(key, None)

    async def idle(self) -> None:
        """Wait until every item started so far, and any started meanwhile, is finished."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self, grace: float = 5.0) -> None:
        """Let the items in progress finish for `grace` seconds, then cancel the rest. A worker's
        items are durable rows, so a cancelled one stays due and is worked after the restart."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
