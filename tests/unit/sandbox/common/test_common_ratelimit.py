"""Unit tests of sandbox.common.ratelimit with a hand-driven clock."""

import pytest

from sandbox.common.ratelimit import ConcurrencyLimit, LeakyBucket, SlidingWindow


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_refuses_past_the_limit_and_says_when_to_retry():
    clock = FakeClock()
    window = SlidingWindow(limit=3, window_s=10, clock=clock)
    for _ in range(2):
        assert window.try_acquire() == (True, 0.0)
        clock.now += 1
    assert window.try_acquire() == (True, 0.0)

    ok, retry_after = window.try_acquire()

    assert ok is False
    assert retry_after == pytest.approx(8.0)


def test_sliding_window_slides():
    clock = FakeClock()
    window = SlidingWindow(limit=2, window_s=10, clock=clock)
    window.try_acquire()
    clock.now += 5
    window.try_acquire()

    clock.now += 5

    assert window.try_acquire()[0] is True
    assert window.try_acquire()[0] is False
    assert window.in_window() == 2


def test_leaky_bucket_takes_refuses_and_restores():
    clock = FakeClock()
    bucket = LeakyBucket(capacity=100, restore_rate_per_s=10, clock=clock)

    assert bucket.try_take(80) == (True, 20.0)
    assert bucket.try_take(50) == (False, 20.0)
    assert bucket.seconds_until(50) == pytest.approx(3.0)
    clock.now += 3
    assert bucket.try_take(50) == (True, 0.0)
    clock.now += 1000
    assert bucket.available() == 100.0


def test_leaky_bucket_never_fits_more_than_capacity():
    bucket = LeakyBucket(capacity=10, restore_rate_per_s=1, clock=FakeClock())

    assert bucket.try_take(11) == (False, 10.0)
    assert bucket.seconds_until(11) == float("inf")


def test_concurrency_limit_counts_requests_in_flight():
    limit = ConcurrencyLimit(2)

    assert limit.try_enter() and limit.try_enter()
    assert limit.try_enter() is False
    limit.leave()
    assert limit.try_enter() is True
