"""A request budget (M5): a client-side sliding window with priority lanes, for an API that allows
a fixed number of requests per window and answers 429 beyond it.

Business Central allows 6,000 requests per 5 minutes per user, ShipBob 150 a minute per user and
app. An adapter counts its own requests against the same window, so it never provokes the 429
storm in the first place, and decides who goes first when the window is full: customer-facing
order flow before postings before bulk work (catalog, reconciliation, stock snapshots). Lanes
other than ORDERS may use only `bulk_share` of the window, so order flow always finds headroom
even while a reconciliation runs flat out. Used by the erp-adapter and the tpl-adapter.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum


class Lane(IntEnum):
    """Priority lanes; a lower value goes first."""

    ORDERS = 0
    POSTINGS = 1
    BULK = 2


class BudgetExhausted(Exception):
    """No slot became free within the caller's `max_wait`.

    Attributes:
        retry_after: seconds until a slot is expected to be free.
    """

    def __init__(self, lane: Lane, retry_after: float) -> None:
        super().__init__(f"request budget exhausted for lane {lane.name}; free in {retry_after:.1f}s")
        self.lane = lane
        self.retry_after = retry_after


class RequestBudget:
    """A sliding window of `limit` requests per `window_s` seconds, granted in lane order.

    Args:
        limit: requests per window.
        window_s: window length in seconds.
        bulk_share: share of `limit` that lanes other than ORDERS may use.
        clock: monotonic clock (seconds).
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        bulk_share: float = 0.8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window_s <= 0 or not 0 < bulk_share <= 1:
            raise ValueError("limit >= 1, window_s > 0 and 0 < bulk_share <= 1 are required")
        self.limit = limit
        self.window_s = window_s
        self.bulk_limit = max(1, int(limit * bulk_share))
        self._clock = clock
        self._granted: deque[float] = deque()
        self._paused_until = 0.0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._sequence = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        #: Grants per lane since start, for metrics and tests.
        self.granted_by_lane: dict[Lane, int] = dict.fromkeys(Lane, 0)

    def _cap(self, lane: Lane) -> int:
        return self.limit if lane is Lane.ORDERS else self.bulk_limit

    def _expire(self, now: float) -> None:
        while self._granted and self._granted[0] <= now - self.window_s:
            self._granted.popleft()

    def delay(self, lane: Lane) -> float:
        """Seconds until `lane` may send a request (0 = now), ignoring queued waiters."""
        now = self._clock()
        self._expire(now)
        paused = max(0.0, self._paused_until - now)
        cap = self._cap(lane)
        if len(self._granted) < cap:
            return paused
        # Enough of the oldest grants must leave the window to bring the count below the cap.
        leaves_at = self._granted[len(self._granted) - cap] + self.window_s
        return max(paused, leaves_at - now, 0.0)

    def available(self) -> float:
        """Share of the window free right now, 0 to 1 (GetConnection's `budget_available`)."""
        self._expire(self._clock())
        if self._paused_until > self._clock():
            return 0.0
        return max(0.0, 1.0 - len(self._granted) / self.limit)

    def pause(self, seconds: float) -> None:
        """Stop granting for `seconds`: the ERP answered 429 with this Retry-After."""
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def _grant(self, lane: Lane) -> None:
        self._granted.append(self._clock())
        self.granted_by_lane[lane] += 1

    async def acquire(self, lane: Lane, max_wait: float | None = None) -> None:
        """Take one request slot for `lane`, waiting behind higher-priority lanes.

        Raises:
            BudgetExhausted: no slot within `max_wait` seconds (None waits as long as it takes).
        """
        if not self._waiters and self.delay(lane) == 0:
            self._grant(lane)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(lane), next(self._sequence), future))
        self._dispatch()
        try:
            await asyncio.wait_for(asyncio.shield(future), max_wait)
        except TimeoutError:
            if not future.done():
                future.cancel()
                raise BudgetExhausted(lane, self.delay(lane)) from None
            # Granted in the same instant the wait ran out: keep the slot.

    def _dispatch(self) -> None:
        """Grant waiters in lane order while slots are free; otherwise wake up when one frees."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiters:
            lane_value, _, future = self._waiters[0]
            if future.done():
                heapq.heappop(self._waiters)
                continue
            lane = Lane(lane_value)
            wait = self.delay(lane)
            if wait > 0:
                # Strict priority: lower lanes never overtake a waiting higher lane, because every
                # lane's cap is at most the cap of the lanes above it.
                self._timer = asyncio.get_running_loop().call_later(wait, self._dispatch)
                return
            heapq.heappop(self._waiters)
            self._grant(lane)
            future.set_result(None)
