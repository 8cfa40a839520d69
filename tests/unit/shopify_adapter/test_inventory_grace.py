"""When verification may report a Shopify figure below the mesh's (decision 0036): only once it has
stood unchanged for `lower_grace_s`; until then sales on their way to the mesh may explain it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.shopify_adapter.sync.inventory import InventoryPusher, _Item

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _pusher(grace_s: float = 30.0) -> InventoryPusher:
    return InventoryPusher(db=None, admin=None, lower_grace_s=grace_s)  # type: ignore[arg-type]


def _item(current: int, *, lower: int | None = None, seen_s_ago: float | None = None) -> _Item:
    since = None if seen_s_ago is None else NOW - timedelta(seconds=seen_s_ago)
    return _Item("SKU-1", "EAST", 40, 7, None, 0, current=current, lower=lower, lower_since=since)


def test_a_lower_figure_is_explained_by_sales_until_it_has_stood_the_grace_period():
    pusher = _pusher()

    assert pusher._sales_may_explain(_item(30), NOW)  # first seen now
    assert pusher._sales_may_explain(_item(30, lower=30, seen_s_ago=29), NOW)
    assert not pusher._sales_may_explain(_item(30, lower=30, seen_s_ago=31), NOW)
    # Shopify moved again since (another sale): the clock starts over.
    assert pusher._sales_may_explain(_item(28, lower=30, seen_s_ago=120), NOW)


def test_a_figure_at_or_above_the_mesh_s_and_a_zero_grace_are_never_explained_by_sales():
    assert not _pusher()._sales_may_explain(_item(40), NOW)
    assert not _pusher()._sales_may_explain(_item(55), NOW)
    assert not _pusher(grace_s=0)._sales_may_explain(_item(30), NOW)
