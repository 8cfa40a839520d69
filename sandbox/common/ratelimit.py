"""Request limiters the stand-ins use to answer 429 the way the real systems do."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]


class SlidingWindow:
    """At most ``limit`` requests in any ``window_s`` seconds (Business Central, ShipBob).

    Args:
        limit: requests allowed per window.
        window_s: window length in seconds.
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(self, limit: int, window_s: float, clock: Clock = time.monotonic) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stamps: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._stamps and self._stamps[0] <= now - self.window_s:
            self._stamps.popleft()

    def try_acquire(self) -> tuple[bool, float]:
        """Count one request if the window has room.

        Returns:
            ``(True, 0.0)`` when accepted, else ``(False, seconds until the oldest request leaves)``.
        """
        with self._lock:
            now = self._clock()
            self._expire(now)
            if len(self._stamps) < self.limit:
                self._stamps.append(now)
                return True, 0.0
            return False, max(0.0, self._stamps[0] + self.window_s - now)

    def in_window(self) -> int:
        """Requests counted in the current window."""
        with self._lock:
            self._expire(self._clock())
            return len(self._stamps)

    def reset(self) -> None:
        """Empty the window."""
        with self._lock:
            self._stamps.clear()


class LeakyBucket:
    """A cost bucket that refills at a constant rate (Shopify's GraphQL throttle).

    Args:
        capacity: the most points the bucket holds (``maximumAvailable``).
        restore_rate_per_s: points restored per second (``restoreRate``).
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(self, capacity: float, restore_rate_per_s: float, clock: Clock = time.monotonic) -> None:
        if capacity <= 0 or restore_rate_per_s < 0:
            raise ValueError("capacity must be > 0 and restore_rate_per_s >= 0")
        self.capacity = float(capacity)
        self.restore_rate_per_s = float(restore_rate_per_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._available = float(capacity)
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._available = min(self.capacity, self._available + (now - self._at) * self.restore_rate_per_s)
        self._at = now

    def try_take(self, cost: float) -> tuple[bool, float]:
        """Take ``cost`` points if they are available.

        Returns:
            ``(ok, currently_available)``: the points left after taking, or the points there are
            when refused (nothing is taken then).
        """
        with self._lock:
            self._refill()
            if cost <= self._available:
                self._available -= cost
                return True, self._available
            return False, self._available

    def refund(self, points: float) -> float:
        """Give points back (Shopify refunds requested minus actual cost); returns the new level."""
        with self._lock:
            self._refill()
            self._available = min(self.capacity, self._available + points)
            return self._available

    def available(self) -> float:
        """Points available now."""
        with self._lock:
            self._refill()
            return self._available

    def seconds_until(self, cost: float) -> float:
        """Seconds until ``cost`` points will be available (``inf`` if never)."""
        with self._lock:
            self._refill()
            missing = cost - self._available
            if missing <= 0:
                return 0.0
            if cost > self.capacity or self.restore_rate_per_s == 0:
                return float("inf")
            return missing / self.restore_rate_per_s

    def reset(self) -> None:
        """Fill the bucket."""
        with self._lock:
            self._available = self.capacity
            self._at = self._clock()


class ConcurrencyLimit:
    """At most ``limit`` requests in flight at once (Business Central's 100 simultaneous requests)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self._lock = threading.Lock()
        self._in_flight = 0

    def try_enter(self) -> bool:
        """Count one request in flight if there is room; pair every True with :meth:`leave`."""
        with self._lock:
            if self._in_flight >= self.limit:
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        """One request finished."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    @property
    def in_flight(self) -> int:
        """Requests in flight now."""
        return self._in_flight
