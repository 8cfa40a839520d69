"""Channel availability → `inventorySetQuantities` input: channel figure, idempotency key, batching,
per-quantity errors."""

from __future__ import annotations

import pytest

from retail.inventory.v1 import events_pb2 as inventory_events
from retail.inventory.v1 import inventory_pb2
from services.shopify_adapter.translate.inventory import (
    MAX_QUANTITIES_PER_CALL,
    STALE,
    Quantity,
    batches,
    channel_available,
    errors_by_index,
    idempotency_key,
    set_quantities_input,
)

ITEM = "gid://shopify/InventoryItem/1152921504606846977"
EAST = "gid://shopify/Location/1152921504606846999"


def _event(*channels: tuple[str, int]) -> inventory_events.AvailabilityChanged:
    return inventory_events.AvailabilityChanged(
        sku="SKU-1001",
        location_id="EAST",
        available_to_sell=12,
        channels=[inventory_pb2.ChannelAvailability(channel=c, available=n) for c, n in channels],
        position_version=4,
    )


def test_the_online_store_figure_is_pushed_not_available_to_sell():
    event = _event(("online-store", 9), ("b2b", 7))

    assert channel_available(event, "online-store") == 9


def test_an_event_without_the_channel_gives_nothing_to_push():
    assert channel_available(_event(("b2b", 7)), "online-store") is None


def test_a_negative_channel_figure_is_pushed_as_zero():
    assert channel_available(_event(("online-store", -2)), "online-store") == 0


def test_the_same_batch_in_any_order_has_the_same_idempotency_key():
    a = Quantity(ITEM, EAST, 7, 5, 3)
    b = Quantity(ITEM.replace("977", "978"), EAST, 1, 0, 8)

    assert idempotency_key([a, b]) == idempotency_key([b, a])


def test_a_newer_position_setting_the_same_figures_gets_a_new_key():
    assert idempotency_key([Quantity(ITEM, EAST, 7, 5, 3)]) != idempotency_key(
        [Quantity(ITEM, EAST, 7, 5, 9)]
    )


def test_a_retry_from_a_fresh_read_gets_a_new_key():
    assert idempotency_key([Quantity(ITEM, EAST, 7, 5, 3)]) != idempotency_key(
        [Quantity(ITEM, EAST, 7, 4, 3)]
    )


def test_the_input_sets_available_with_compare_and_set_and_a_reference_to_the_key():
    key = idempotency_key([Quantity(ITEM, EAST, 7, 5, 3)])

    payload = set_quantities_input([Quantity(ITEM, EAST, 7, 5, 3)], key)

    assert payload == {
        "name": "available",
        "reason": "correction",
        "referenceDocumentUri": f"gid://retail-mesh/InventoryPush/{key}",
        "quantities": [{"inventoryItemId": ITEM, "locationId": EAST, "quantity": 7, "changeFromQuantity": 5}],
    }


def test_more_than_250_quantities_are_refused_in_one_input():
    too_many = [Quantity(f"{ITEM}{i}", EAST, 1, 0, 1) for i in range(MAX_QUANTITIES_PER_CALL + 1)]

    with pytest.raises(ValueError):
        set_quantities_input(too_many, "k")


def test_batches_are_cut_at_250():
    cut = batches(list(range(600)))

    assert [len(b) for b in cut] == [250, 250, 100]


def test_user_errors_are_split_per_quantity_and_for_the_whole_input():
    errors = [
        {"field": ["input", "quantities", "2", "changeFromQuantity"], "code": STALE, "message": "stale"},
        {
            "field": ["input", "reason"],
            "code": "INVALID_REASON",
            "message": "The specified reason is invalid.",
        },
    ]

    per_item, general = errors_by_index(errors)

    assert per_item == {2: STALE}
    assert general == ["INVALID_REASON The specified reason is invalid."]
