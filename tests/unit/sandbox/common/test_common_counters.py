"""Unit tests of sandbox.common.counters.CreateCounter."""

from sandbox.common.counters import CreateCounter


def test_counts_attempts_and_created_separately():
    counter = CreateCounter()

    counter.record("orders", "A-1")
    counter.record("orders", "A-1", created=False)
    counter.record("orders", "A-2")

    assert counter.snapshot() == {"orders": {"A-1": 2, "A-2": 1}}
    assert counter.created() == {"orders": {"A-1": 1, "A-2": 1}}
    assert counter.duplicates() == {}


def test_a_key_created_twice_is_a_duplicate():
    counter = CreateCounter()

    counter.record("salesOrders", "1001")
    counter.record("salesOrders", "1001")
    counter.record("salesCreditMemos", "R-1")

    assert counter.duplicates() == {"salesOrders": {"1001": 2}}


def test_reset_forgets_everything():
    counter = CreateCounter()
    counter.record("orders", "A-1")

    counter.reset()

    assert counter.snapshot() == {}
    assert counter.created() == {}


def test_each_create_is_stamped_with_the_stand_ins_clock_and_refusals_are_not():
    counter = CreateCounter()
    ticks = iter([100.0, 101.5])
    counter._clock = lambda: next(ticks)

    counter.record("salesOrders", "#1001")
    counter.record("salesOrders", "#1001", created=False)
    counter.record("salesOrders", "#1001")

    assert counter.created_at() == {"salesOrders": {"#1001": [100.0, 101.5]}}
    counter.reset()
    assert counter.created_at() == {}
