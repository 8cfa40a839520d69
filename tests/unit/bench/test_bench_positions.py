"""The mesh's position → Shopify lag, from hand-made AvailabilityChanged and Shopify records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.positions import CHANNEL, _change, position_lag
from libs.bus.envelope import publish_headers
from retail.inventory.v1 import events_pb2, inventory_pb2

SKU, WHERE = "SKU-1005", "EAST"


def _changes(*figures_at, sku=SKU, location=WHERE):
    """(at, figure) pairs → AvailabilityChanged dicts with rising versions."""
    return [
        {"sku": sku, "location": location, "available": figure, "at": at, "version": n}
        for n, (at, figure) in enumerate(figures_at, start=1)
    ]


def _set(at, available, sku=SKU, location=WHERE):
    """An inventorySetQuantities group as the Shopify stand-in records it."""
    return {
        "created_at": at,
        "reason": "correction",
        "changes": [
            {
                "name": "available",
                "sku": sku,
                "location": location,
                "delta": 0,
                "quantity_after_change": available,
            },
            {"name": "on_hand", "sku": sku, "location": location, "delta": 0, "quantity_after_change": 999},
        ],
    }


def _order(at, quantity, sku=SKU, location=WHERE):
    return {"created_at": at, "lines": [{"sku": sku, "quantity": quantity, "location": location}]}


def _shopify(adjustments=(), orders=(), moves=()):
    return {
        "inventory_adjustments": list(adjustments),
        "orders": list(orders),
        "fulfillment_order_moves": list(moves),
    }


def _move(at, units, source, destination, sku=SKU):
    """A fulfillmentOrderMove as the Shopify stand-in records it."""
    return {"created_at": at, "from": source, "to": destination, "units": {sku: units}}


def test_a_recount_is_measured_to_the_adjustment_that_shows_its_figure():
    changes = _changes((1.0, 30), (10.0, 29))
    shopify = _shopify([_set(1.5, 30), _set(9.0, 31), _set(10.8, 29)])

    figures = position_lag(changes, shopify, since=5.0)

    # The 30 (before the load) is not measured; 29 is shown by the push at 10.8, not by 31 at 9.0.
    assert figures["position_changes_measured"] == 1
    assert figures["position_lag_p50_s"] == pytest.approx(0.8)
    assert figures["position_changes_already_shown"] == figures["position_changes_unshown"] == 0


def test_a_sale_shopify_took_itself_is_already_shown_not_measured():
    # Shopify sold 2 at 5.5 (its checkout: 100 → 98, no adjustment); the mesh reserves one unit at
    # 6.0 (100 → 99) and the other at 6.2 (→ 98): Shopify showed both before the mesh announced them.
    changes = _changes((1.0, 100), (6.0, 99), (6.2, 98))
    shopify = _shopify([_set(1.2, 100)], [_order(5.5, 2)])

    figures = position_lag(changes, shopify, since=5.0)

    assert figures["position_changes_already_shown"] == 2
    assert figures["position_changes_measured"] == 0
    assert figures["position_lag_p50_s"] is None


def test_a_change_a_newer_one_overtook_is_measured_until_shopify_shows_the_newer_figure():
    # 72 at 6.0, 70 at 6.5 before any push; the adapter pushes only the newest figure, at 7.0.
    changes = _changes((1.0, 73), (6.0, 72), (6.5, 70))
    shopify = _shopify([_set(1.2, 73), _set(7.0, 70)])

    figures = position_lag(changes, shopify, since=5.0)

    assert figures["position_changes_measured"] == 2
    assert figures["position_changes_coalesced"] == 1
    assert figures["position_lag_max_s"] == pytest.approx(1.0)  # 72: from 6.0 to the 70 at 7.0
    assert figures["position_lag_p50_s"] == pytest.approx(0.5)  # 70: from 6.5 to 7.0


def test_a_push_one_figure_behind_shows_the_older_change_first():
    changes = _changes((1.0, 73), (6.0, 72), (6.5, 70))
    shopify = _shopify([_set(1.2, 73), _set(7.0, 72), _set(8.0, 70)])

    figures = position_lag(changes, shopify, since=5.0)

    assert figures["position_changes_measured"] == 2
    assert sorted([figures["position_lag_p50_s"], figures["position_lag_max_s"]]) == pytest.approx([1.0, 1.5])


def test_a_rise_shopify_never_shows_is_unshown_not_dropped():
    # The mesh rises 40 → 42; the adapter raises Shopify by one only (a sale it has not reserved
    # yet, decision 0025) and nothing newer comes: the 42 is never shown.
    changes = _changes((1.0, 40), (6.0, 42))
    shopify = _shopify([_set(1.2, 40), _set(6.5, 41)])

    figures = position_lag(changes, shopify, since=5.0)

    assert figures["position_changes_unshown"] == 1
    assert figures["position_changes_measured"] == 0


def test_a_fall_is_shown_by_a_lower_figure_and_other_keys_and_channels_do_not_mix():
    changes = _changes((1.0, 50), (6.0, 48))
    changes += _changes((1.0, 50), (6.0, 47), location="WEST")  # WEST: its own timeline, unshown
    changes.append({"sku": SKU, "location": WHERE, "available": None, "at": 6.1, "version": 9})  # no channel
    # Shopify at EAST: 50, then a sale routed there at 6.4 (→ 47 <= 48): the fall is shown then.
    shopify = _shopify([_set(1.2, 50), _set(1.2, 50, location="WEST")], [_order(6.4, 3)])

    figures = position_lag(changes, shopify, since=5.0)

    assert figures["position_changes_measured"] == 1
    assert figures["position_lag_p50_s"] == pytest.approx(0.4)
    assert figures["position_changes_unshown"] == 1


def test_an_event_read_from_the_stream_becomes_a_change_of_the_channel_figure():
    occurred = datetime(2026, 11, 28, 3, 0, 0, 250000, tzinfo=UTC)
    event = events_pb2.AvailabilityChanged(
        sku=SKU,
        location_id="east",
        available_to_sell=12,
        channels=[
            inventory_pb2.ChannelAvailability(channel="b2b", available=12),
            inventory_pb2.ChannelAvailability(channel=CHANNEL, available=10),
        ],
        position_version=7,
    )
    event.meta.event_id = "e-1"
    event.meta.occurred_at.FromDatetime(occurred)
    headers = publish_headers(event.DESCRIPTOR.full_name, "e-1", "c-1", None)

    change = _change(headers, event.SerializeToString())

    assert change == {
        "sku": SKU,
        "location": "EAST",
        "available": 10,
        "at": occurred.timestamp(),
        "version": 7,
        "event_id": "e-1",
    }
    assert _change({}, b"") is None  # no event type: not an AvailabilityChanged


def test_a_fulfillment_order_moved_away_gives_its_units_back_to_the_location_it_left():
    # Shopify routed a sale of 2 to EAST (10 → 8); the mesh reserved it elsewhere, and the adapter
    # moved the fulfillment order away at 6.5: EAST shows 10 again. The mesh's EAST falls to 9 at
    # 7.0 (another order), pushed at 7.4. Without the move Shopify's 8 would show the 9 at once.
    changes = _changes((1.0, 10), (7.0, 9), location="EAST")
    shopify = _shopify(
        [_set(1.2, 10, location="EAST"), _set(7.4, 9, location="EAST")],
        [_order(5.5, 2, location="EAST")],
        [_move(6.5, 2, "EAST", "WEST")],
    )

    figures = position_lag(changes, shopify, since=5.0)

    assert figures["position_changes_already_shown"] == 0
    assert figures["position_changes_measured"] == 1
    assert figures["position_lag_max_s"] == pytest.approx(0.4)
