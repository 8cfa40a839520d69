"""The 3PL's clock in the bench: advances on a fixed grid, whatever each request takes."""

from __future__ import annotations

import pytest

from bench.__main__ import next_tick


def test_a_quick_advance_waits_for_the_next_tick_of_the_grid():
    assert next_tick(10.0, 0.5, 10.0) == pytest.approx(10.5)
    assert next_tick(10.0, 0.5, 10.12) == pytest.approx(10.5)  # not 10.62: the request's time is not added


def test_a_slow_advance_skips_the_ticks_it_overran_instead_of_bunching_them():
    assert next_tick(10.0, 0.5, 11.3) == pytest.approx(11.5)
    assert next_tick(10.0, 0.5, 10.5) == pytest.approx(11.0)
