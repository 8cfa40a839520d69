"""The pure reconciliation rule (I5): drift against the mesh's figure at the count's as_of, repair
within the SKU's bound, escalate beyond it, holding a count that would raise sellable stock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.inventory.config import DEFAULT_POLICY
from services.inventory.domain.policy import Policy, load_policy
from services.inventory.domain.position import Position
from services.inventory.domain.reconciliation import (
    Count,
    DriftBound,
    Outcome,
    ReconciliationPolicy,
    latest_moment,
    reconcile,
)

BOUND = DriftBound(max_units=5, max_percent=5)


def known(on_hand: int, **buckets: int) -> Position:
    """A position the mesh has seen before (version > 0)."""
    return Position("SKU-1", "EAST", on_hand=on_hand, version=3, **buckets)


def test_a_drift_within_the_bound_is_repaired_and_the_count_wins():
    position = known(100, reserved=10)

    result = reconcile(position, Count(97), in_flight=0, bound=BOUND)

    assert result.position.on_hand == 97 and result.position.reserved == 10
    assert [(f.bucket, f.expected, f.observed, f.drift, f.outcome) for f in result.findings] == [
        ("on_hand", 100, 97, -3, Outcome.REPAIRED)
    ]
    assert result.counted


def test_a_lower_count_beyond_the_bound_is_applied_but_escalated():
    result = reconcile(known(20), Count(5), in_flight=0, bound=BOUND)

    assert result.position.on_hand == 5
    assert result.findings[0].outcome is Outcome.ESCALATED_APPLIED
    assert not result.findings[0].outcome.repaired and result.counted


def test_a_higher_count_beyond_the_bound_is_held_and_escalated():
    position = known(20)

    result = reconcile(position, Count(40), in_flight=0, bound=BOUND)

    assert result.position == position
    assert [(f.outcome, f.result) for f in result.findings] == [(Outcome.ESCALATED_HELD, 20)]
    assert not result.counted


def test_a_count_equal_to_the_position_finds_nothing_and_changes_nothing():
    position = known(12, damaged=2)

    result = reconcile(position, Count(12, damaged=2), in_flight=0, bound=BOUND)

    assert result.findings == [] and result.position == position and result.counted


def test_a_shipment_after_the_count_is_not_taken_for_drift():
    # the 3PL counted 10, then shipped 3; the mesh consumed the shipment before the count arrived
    position = known(7)

    result = reconcile(position, Count(10), in_flight=-3, bound=DriftBound())

    assert result.findings == [] and result.position.on_hand == 7


def test_a_repair_keeps_the_movements_made_after_the_count():
    result = reconcile(known(7), Count(9), in_flight=-3, bound=BOUND)

    assert [(f.expected, f.observed, f.in_flight) for f in result.findings] == [(10, 9, -3)]
    assert result.position.on_hand == 6


def test_the_percent_bound_scales_with_the_mesh_figure():
    bound = DriftBound(max_units=0, max_percent=5)

    within = reconcile(known(100), Count(95), in_flight=0, bound=bound)
    beyond = reconcile(known(100), Count(94), in_flight=0, bound=bound)

    assert within.findings[0].outcome is Outcome.REPAIRED
    assert beyond.findings[0].outcome is Outcome.ESCALATED_APPLIED


def test_the_first_count_of_a_position_is_not_a_drift():
    result = reconcile(Position("SKU-1", "EAST"), Count(50, damaged=1), in_flight=0, bound=DriftBound())

    assert result.findings == [] and (result.position.on_hand, result.position.damaged) == (50, 1)


def test_more_damaged_beyond_the_bound_is_applied_and_less_damaged_is_held():
    more = reconcile(known(50, damaged=1), Count(50, damaged=20), in_flight=0, bound=DriftBound())
    less = reconcile(known(50, damaged=20), Count(50, damaged=1), in_flight=0, bound=DriftBound())

    assert (more.position.damaged, more.findings[0].outcome) == (20, Outcome.ESCALATED_APPLIED)
    assert (less.position.damaged, less.findings[0].outcome) == (20, Outcome.ESCALATED_HELD)
    assert less.counted  # on_hand itself agreed, so it rests on this count


def test_a_held_part_never_exceeds_a_lowered_whole():
    result = reconcile(known(30, damaged=20), Count(5), in_flight=0, bound=DriftBound())

    assert (result.position.on_hand, result.position.damaged) == (5, 5)
    assert {f.bucket: f.result for f in result.findings} == {"on_hand": 5, "damaged": 5}


@given(
    on_hand=st.integers(0, 60),
    damaged=st.integers(0, 10),
    reserved=st.integers(0, 30),
    counted=st.integers(0, 60),
    counted_damaged=st.integers(0, 10),
    counted_quality=st.integers(0, 10),
    in_flight=st.integers(-10, 10),
    units=st.integers(0, 8),
    percent=st.integers(0, 20),
)
def test_reconciling_the_same_count_twice_changes_nothing_the_second_time(
    on_hand, damaged, reserved, counted, counted_damaged, counted_quality, in_flight, units, percent
):
    position = known(on_hand, damaged=min(damaged, on_hand), reserved=reserved)
    damaged_counted = min(counted_damaged, counted)
    count = Count(counted, damaged_counted, min(counted_quality, counted - damaged_counted))
    bound = DriftBound(max_units=units, max_percent=percent)

    first = reconcile(position, count, in_flight=in_flight, bound=bound)
    second = reconcile(first.position, count, in_flight=in_flight, bound=bound)

    assert second.position == first.position
    assert all(f.result == f.mesh for f in second.findings)
    if first.findings and not any(f.outcome.repaired for f in first.findings):
        # escalated counts may only take sellable stock away
        assert max(0, first.position.sellable) <= max(0, position.sellable)


def test_the_shipped_policy_bounds_the_flash_sale_item_tighter_than_the_default():
    policy = load_policy(DEFAULT_POLICY)

    assert policy.reconciliation.bound("SKU-1010") == DriftBound(max_units=1, max_percent=0)
    assert policy.reconciliation.bound("SKU-1001") == DriftBound(max_units=5, max_percent=5)


def test_a_policy_without_a_reconciliation_section_escalates_every_drift():
    policy = Policy.model_validate({"version": "1", "default_channel": "web", "channels": {"web": {}}})

    result = reconcile(known(10), Count(9), in_flight=0, bound=policy.reconciliation.bound("SKU-1"))

    assert result.findings[0].outcome is Outcome.ESCALATED_APPLIED


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"default": {"max_percent": 101}}, "max_percent"),
        ({"default": {"max_units": -1}}, "max_units"),
        ({"overrides": [{"skus": ["bad sku"], "bound": {}}]}, "is not a SKU"),
        (
            {"overrides": [{"skus": ["A"], "bound": {}}, {"skus": ["A"], "bound": {"max_units": 1}}]},
            "has two bounds",
        ),
        ({"default": {"max_unit": 1}}, "max_unit"),
    ],
)
def test_an_invalid_reconciliation_section_is_refused_naming_the_field(section, message):
    with pytest.raises(ValidationError) as error:
        ReconciliationPolicy.model_validate(section)

    assert message in str(error.value)


def test_a_ship_date_without_a_time_is_placed_at_the_end_of_its_day():
    date_only = datetime(2025, 6, 15, tzinfo=UTC)
    precise = datetime(2025, 6, 15, 9, 30, tzinfo=UTC)

    assert latest_moment(date_only) == datetime(2025, 6, 15, 23, 59, 59, 999999, tzinfo=UTC)
    assert latest_moment(precise) == precise
