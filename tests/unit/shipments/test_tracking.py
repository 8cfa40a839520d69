"""The tracking rules of the shipments domain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.shipments.domain.tracking import Status, TrackingState, apply_update

T0 = datetime(2026, 7, 1, tzinfo=UTC)
STATE = TrackingState(Status.CONFIRMED, ("P1", "P2"), frozenset(), None)


def test_one_of_two_packages_delivered_keeps_the_shipment_in_transit():
    outcome = apply_update(STATE, status=Status.DELIVERED, package_id="P1", occurred_at=T0)

    assert outcome.state.status is Status.IN_TRANSIT
    assert not outcome.delivered_now


def test_the_last_package_delivered_completes_delivery_once():
    half = apply_update(STATE, status=Status.DELIVERED, package_id="P1", occurred_at=T0).state

    done = apply_update(half, status=Status.DELIVERED, package_id="P2", occurred_at=T0 + timedelta(hours=1))
    again = apply_update(
        done.state, status=Status.DELIVERED, package_id="", occurred_at=T0 + timedelta(hours=2)
    )

    assert done.delivered_now
    assert not again.delivered_now


def test_an_update_older_than_the_applied_one_is_ignored():
    later = apply_update(
        STATE, status=Status.EXCEPTION, package_id="", occurred_at=T0 + timedelta(hours=1)
    ).state

    outcome = apply_update(later, status=Status.IN_TRANSIT, package_id="", occurred_at=T0)

    assert not outcome.applied
    assert outcome.state.status is Status.EXCEPTION
