"""The order state machine of docs/contracts.md, table-driven: every allowed transition and every
refused one, the stale-update rule, holds, cancellations, address corrections and replacements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.orders.domain import machine
from services.orders.domain.machine import RULES, Refused, Shortage
from services.orders.domain.order import Line, Order, Status, System

S = Status
T0 = datetime(2026, 1, 1, 10, tzinfo=UTC)
PRICE = {"minor_units": "1500", "currency": "USD"}


def new_order(updated_at: datetime = T0, payment: str = "PAYMENT_STATUS_PAID") -> Order:
    return Order(
        order_id="shp-1",
        channel="online-store",
        channel_order={"system": "SOURCE_SYSTEM_SHOPIFY", "id": "gid://shopify/Order/1"},
        lines=[
            Line(line_id="L1", sku="SKU-1001", quantity=2, unit_price=PRICE),
            Line(line_id="L2", sku="SKU-1002", quantity=1, unit_price=PRICE),
        ],
        shipping_address={"lines": ["1 Main St"], "country_code": "US"},
        payment_status=payment,
        channel_updated_at=updated_at,
    )


def received() -> Order:
    order, _ = machine.ingest(None, new_order(), T0, request_id="wh-1")
    return order


def accepted() -> Order:
    order = received()
    machine.reservation_result(order, 0, {"L1": {"EAST": 2}, "L2": {"EAST": 1}}, [], T0, allow_backorder=True)
    return order


def released() -> Order:
    order = accepted()
    machine.erp_created(order, {"system": "SOURCE_SYSTEM_ERP", "id": "so-1"}, T0, "e1")
    return order


def at_status(status: Status) -> Order:
    order = received()
    order.status = status
    order.resume_status = S.ERP_CREATED if status in (S.ON_HOLD, S.CANCEL_REQUESTED) else None
    return order


ALL = list(Status)
OWNERS = list(System)


@pytest.mark.parametrize("trigger", sorted(RULES))
@pytest.mark.parametrize("status", ALL)
@pytest.mark.parametrize("by", OWNERS)
def test_a_transition_is_taken_only_from_its_listed_statuses_by_its_owner(trigger, status, by):
    rule = RULES[trigger]
    order = at_status(status)
    out = machine.Outcome()

    if status in rule.sources and by in rule.owners:
        machine.transition(order, trigger, by, T0, out)
        assert order.status == (rule.target or S.ERP_CREATED)
        assert order.history[-1].source == by
        assert [f.type for f in out.facts] == ["OrderStatusChanged"]
    else:
        with pytest.raises(Refused):
            machine.transition(order, trigger, by, T0, out)
        assert order.status == status
        assert out.facts == []


@pytest.mark.parametrize("status", sorted(machine.TERMINAL))
def test_terminal_statuses_are_left_by_no_rule(status):
    assert not [r for r in RULES.values() if status in r.sources]


def test_only_replay_leaves_rejected_other_than_cancellation():
    assert sorted(t for t, r in RULES.items() if S.REJECTED in r.sources) == ["cancelled", "replayed"]


def test_a_first_update_creates_the_order_and_an_older_create_is_stale_and_recorded():
    newer = new_order(T0 + timedelta(hours=2), payment="PAYMENT_STATUS_PAID")
    older = new_order(T0, payment="PAYMENT_STATUS_PENDING")

    order, created = machine.ingest(None, newer, T0)
    order, stale = machine.ingest(order, older, T0)

    assert (created.reply["outcome"], stale.reply["outcome"]) == ("CREATED", "STALE")
    assert order.payment_status == "PAYMENT_STATUS_PAID"
    assert order.journal[-1].outcome == "STALE"
    assert stale.facts == []


def test_a_newer_update_is_applied_and_the_same_version_is_unchanged():
    order = received()
    update = new_order(T0 + timedelta(minutes=5), payment="PAYMENT_STATUS_REFUNDED")

    order, updated = machine.ingest(order, update, T0)
    order, same = machine.ingest(order, update, T0)

    assert (updated.reply["outcome"], same.reply["outcome"]) == ("UPDATED", "UNCHANGED")
    assert updated.facts[0].data["changed_fields"] == ["payment_status"]


def test_all_lines_reserved_accepts_and_publishes_the_order():
    order = received()

    out = machine.reservation_result(
        order, 0, {"L1": {"EAST": 2}, "L2": {"WEST": 1}}, [], T0, allow_backorder=False
    )

    assert order.status is S.ACCEPTED
    assert "OrderAccepted" in [f.type for f in out.facts]
    assert order.locations == ["EAST", "WEST"]


def test_a_short_line_backorders_when_the_channel_allows_it_and_rejects_otherwise():
    short = [Shortage("L2", 1, "OUT_OF_STOCK")]
    backordered, rejected = received(), received()

    machine.reservation_result(backordered, 0, {"L1": {"EAST": 2}}, short, T0, allow_backorder=True)
    out = machine.reservation_result(rejected, 0, {"L1": {"EAST": 2}}, short, T0, allow_backorder=False)

    assert backordered.status is S.BACKORDERED and backordered.waiting_skus == ["SKU-1002"]
    assert rejected.status is S.REJECTED and rejected.rejection_reason == "OUT_OF_STOCK"
    assert [p.reason_code for p in out.problems] == ["OUT_OF_STOCK"]


def test_stock_arriving_for_a_backordered_line_starts_a_new_round_recorded_with_its_event():
    order = received()
    machine.reservation_result(
        order, 0, {"L1": {"EAST": 2}}, [Shortage("L2", 1, "OUT_OF_STOCK")], T0, allow_backorder=True
    )

    other = machine.stock_available(order, "SKU-9999", T0, event_id="ev-0")
    out = machine.stock_available(order, "SKU-1002", T0, event_id="ev-1")
    again = machine.stock_available(order, "SKU-1002", T0, event_id="ev-2")

    assert (other.step, out.step, again.step) == (None, "RESERVE", None)
    assert order.reserve_round == 1 and order.reserve_pending
    signal = order.journal[-1]
    assert (signal.type, signal.message_id) == ("AvailabilityChanged", "ev-1")
    assert signal.summary == "SKU-1002 available: reserving again"


def test_the_backorder_reminder_retries_and_says_so_in_the_timeline():
    order = received()
    machine.reservation_result(
        order, 0, {"L1": {"EAST": 2}}, [Shortage("L2", 1, "OUT_OF_STOCK")], T0, allow_backorder=True
    )

    out = machine.stock_available(order, "SKU-1002", T0, retry=True)

    assert out.step == "RESERVE"
    assert order.journal[-1].type == "BackorderRetry"


def test_a_backordered_order_reserved_in_full_is_accepted_and_releases_per_location():
    order = received()
    machine.reservation_result(
        order, 0, {"L1": {"EAST": 2}}, [Shortage("L2", 1, "OUT_OF_STOCK")], T0, allow_backorder=True
    )
    machine.stock_available(order, "SKU-1002", T0, event_id="ev-1")

    out = machine.reservation_result(
        order, 1, {"L1": {"EAST": 1, "WEST": 1}, "L2": {"WEST": 1}}, [], T0, allow_backorder=True
    )
    machine.erp_created(order, {"id": "so-1"}, T0, "e1")

    assert [c.to_status for c in order.history] == [
        S.RECEIVED,
        S.BACKORDERED,
        S.ACCEPTED,
        S.ERP_CREATED,
        S.RELEASED,
    ]
    assert [f.type for f in out.facts if f.type == "OrderAccepted"] == ["OrderAccepted"]
    assert {r.location_id: r.lines for r in order.releases} == {
        "EAST": {"L1": 1},
        "WEST": {"L1": 1, "L2": 1},
    }


def test_an_unknown_sku_rejects_even_when_backorders_are_allowed():
    order = received()

    machine.reservation_result(
        order, 0, {"L1": {"EAST": 2}}, [Shortage("L2", 1, "UNKNOWN_SKU")], T0, allow_backorder=True
    )

    assert order.status is S.REJECTED and order.rejection_reason == "INVALID_SKU"


def test_a_reservation_result_of_an_older_round_is_ignored():
    order = received()
    order.reserve_round = 2

    machine.reservation_result(order, 1, {"L1": {"EAST": 2}, "L2": {"EAST": 1}}, [], T0, allow_backorder=True)

    assert order.status is S.RECEIVED


def test_erp_creation_releases_one_release_per_location_with_deterministic_ids():
    order = received()
    machine.reservation_result(order, 0, {"L1": {"EAST": 2}, "L2": {"WEST": 1}}, [], T0, allow_backorder=True)

    out = machine.erp_created(order, {"id": "so-1"}, T0, "e1")

    assert order.status is S.RELEASED
    assert [f.data["release_id"] for f in out.facts if f.type == "OrderReleasedToWarehouse"] == [
        "shp-1:EAST:1",
        "shp-1:WEST:1",
    ]


def test_a_partial_then_full_shipment_ends_shipped_and_the_final_invoice_invoices():
    order = released()
    machine.shipment_confirmed(order, "SH-1", {"L1": 1}, T0, "e2")
    partial = order.status
    machine.shipment_confirmed(order, "SH-1", {"L1": 1}, T0, "e2-dup")
    machine.shipment_confirmed(order, "SH-2", {"L1": 1, "L2": 1}, T0, "e3")
    shipped = order.status

    machine.invoice_posted(order, {"id": "inv-1"}, {"minor_units": "4500"}, True, T0, "e4")

    assert (partial, shipped, order.status) == (S.PARTIALLY_SHIPPED, S.SHIPPED, S.INVOICED)
    assert order.lines[0].quantity_shipped == 2


def test_the_warehouse_rejecting_a_release_holds_the_order_until_released_then_releases_again():
    order = released()
    out = machine.warehouse_release_rejected(order, "shp-1:EAST:1", "BAD_ADDRESS", "no such street", T0, "e5")
    held = order.status
    hold_id = order.active_holds[0].hold_id

    again = machine.release_hold(order, hold_id, System.OPERATOR, "fixed", T0, "r1")

    assert held is S.ON_HOLD and out.problems[0].owner.value == "warehouse"
    assert order.status is S.RELEASED
    assert [f.data["release_id"] for f in again.facts if f.type == "OrderReleasedToWarehouse"] == [
        "shp-1:EAST:2"
    ]


def test_a_hold_is_released_only_by_its_placer_or_an_operator():
    order = accepted()
    machine.place_hold(order, "CUSTOMER_CREDIT", System.ERP, "", T0, "h1")

    with pytest.raises(Refused):
        machine.release_hold(order, "h1", System.SHOPIFY, "", T0, "r1")
    machine.release_hold(order, "h1", System.ERP, "", T0, "r2")

    assert order.status is S.ACCEPTED


def test_cancelling_before_release_cancels_and_after_release_asks_the_warehouse():
    before, after = accepted(), released()

    machine.cancel(before, "CUSTOMER_REQUEST", System.SHOPIFY, T0, "c1")
    out = machine.cancel(after, "CUSTOMER_REQUEST", System.SHOPIFY, T0, "c2")
    machine.warehouse_cancellation_accepted(after, "shp-1:EAST:1", {}, T0, "e6")

    assert before.status is S.CANCELLED
    assert [f.type for f in out.facts] == ["OrderStatusChanged", "OrderCancellationRequested"]
    assert after.status is S.CANCELLED


def test_cancelling_the_last_open_line_cancels_the_order():
    order = accepted()

    machine.cancel_lines(order, {"L1": 2}, "CUSTOMER_REQUEST", System.SHOPIFY, T0, "c1")
    first = order.status
    machine.cancel_lines(order, {"L2": 1}, "CUSTOMER_REQUEST", System.SHOPIFY, T0, "c2")

    assert first is S.ACCEPTED and order.lines[0].reserved == 0
    assert order.status is S.CANCELLED


def test_cancelling_more_than_is_open_is_invalid_and_changes_nothing():
    order = accepted()

    with pytest.raises(machine.Invalid):
        machine.cancel_lines(order, {"L1": 3}, "CUSTOMER_REQUEST", System.SHOPIFY, T0, "c1")

    assert order.lines[0].quantity_cancelled == 0


def test_a_rejected_cancellation_after_shipment_leaves_the_order_shipped_with_an_exception():
    order = released()
    machine.cancel(order, "CUSTOMER_REQUEST", System.SHOPIFY, T0, "c1")
    machine.shipment_confirmed(order, "SH-1", {"L1": 2, "L2": 1}, T0, "e7")

    out = machine.warehouse_cancellation_rejected(order, "shp-1:EAST:1", "ALREADY_SHIPPED", "", T0, "e8")

    assert order.status is S.SHIPPED
    assert [p.reason_code for p in out.problems] == ["ALREADY_SHIPPED"]


def test_an_address_correction_before_release_applies_and_after_shipment_is_refused_and_recorded():
    early, late = accepted(), released()
    machine.shipment_confirmed(late, "SH-1", {"L1": 2, "L2": 1}, T0, "e9")
    new_address = {"lines": ["2 Side St"], "country_code": "US"}

    machine.correct_address(early, new_address, System.SHOPIFY, T0, "a1")
    out = machine.correct_address(late, new_address, System.SHOPIFY, T0, "a2")

    assert early.shipping_address == new_address
    assert "refused" in out.reply and late.shipping_address != new_address
    assert late.journal[-1].outcome == "REFUSED"


def test_a_replacement_order_is_linked_to_its_original_at_zero_price():
    original = released()
    machine.shipment_confirmed(original, "SH-1", {"L1": 2, "L2": 1}, T0, "e10")

    replacement = machine.plan_replacement(original, [("L1", 1, "")], None, T0)
    replacement, _ = machine.create_replacement(replacement, T0)

    assert replacement.order_id == "shp-1.r1" and replacement.replacement_of_order_id == "shp-1"
    assert replacement.status is S.RECEIVED and replacement.lines[0].unit_price["minor_units"] == "0"
    assert original.replacements == ["shp-1.r1"]


def test_a_replay_of_a_rejected_order_starts_a_new_reservation_round():
    order = received()
    machine.reservation_result(order, 0, {}, [Shortage("L1", 2, "OUT_OF_STOCK")], T0, allow_backorder=False)

    out = machine.replay(order, None, "stock fixed", T0, "op-1")

    assert order.status is S.RECEIVED and order.reserve_round == 1 and out.step == "RESERVE"


@pytest.mark.parametrize(
    ("channel_id", "expected"),
    [("gid://shopify/Order/5001", "shp-5001"), ("5001", "shp-5001")],
)
def test_order_ids_are_derived_deterministically_from_the_channel_order(channel_id, expected):
    assert machine.order_id_for("SHOPIFY", channel_id) == expected


def test_a_channel_order_id_without_usable_characters_is_invalid():
    with pytest.raises(machine.Invalid):
        machine.order_id_for("SHOPIFY", "///")
