"""Changes to an order after it was received (O7): units removed and addresses edited in Shopify
admin arrive as new channel versions, and the warehouse's answers to address corrections."""

from __future__ import annotations

from datetime import timedelta

from services.orders.domain import machine
from services.orders.domain.order import Line, Status, System
from tests.unit.orders.test_state_machine import PRICE, T0, accepted, new_order, released

S = Status


def edited(minutes: int, l1: int = 2, l2: int = 1, address: dict | None = None):
    """Shopify's next version of the order: current quantities (a line at 0 is left out)."""
    version = new_order(T0 + timedelta(minutes=minutes))
    version.lines = [
        Line(line_id=lid, sku=sku, quantity=q, unit_price=PRICE)
        for lid, sku, q in (("L1", "SKU-1001", l1), ("L2", "SKU-1002", l2))
        if q > 0
    ]
    if address is not None:
        version.shipping_address = address
    return version


def test_a_line_removed_in_shopify_before_release_is_cancelled_and_its_reservation_given_back():
    order = accepted()

    order, out = machine.ingest(order, edited(5, l2=0), T0, request_id="edit-1")

    assert order.status is S.ACCEPTED
    assert (order.line("L2").quantity_cancelled, order.line("L2").allocations) == (1, {})
    assert order.line("L1").allocations == {"EAST": 2}
    (cancelled,) = [f for f in out.facts if f.type == "OrderLinesCancelled"]
    assert cancelled.data == {
        "lines": [{"line_id": "L2", "sku": "SKU-1002", "quantity": 1}],
        "reason": "ORDER_EDITED",
    }
    assert "lines" in next(f for f in out.facts if f.type == "OrderUpdated").data["changed_fields"]


def test_a_quantity_reduced_in_shopify_cancels_only_the_difference_and_a_later_version_nothing_more():
    order = accepted()

    order, first = machine.ingest(order, edited(5, l1=1), T0, request_id="edit-1")
    order, second = machine.ingest(order, edited(9, l1=1), T0, request_id="upd-2")

    assert order.line("L1").open_quantity == 1 and order.line("L1").allocations == {"EAST": 1}
    assert [f.type for f in first.facts].count("OrderLinesCancelled") == 1
    assert "OrderLinesCancelled" not in [f.type for f in second.facts]
    assert second.reply["outcome"] == "UPDATED"
    assert all(entry.outcome == "SUCCEEDED" for entry in order.journal)


def test_every_unit_removed_before_release_cancels_the_order():
    order = accepted()

    order, out = machine.ingest(order, edited(5, l1=0, l2=0), T0, request_id="edit-1")

    assert order.status is S.CANCELLED
    assert "OrderCancelled" in [f.type for f in out.facts]


def test_units_removed_in_shopify_after_release_are_recorded_not_applied():
    order = released()

    order, out = machine.ingest(order, edited(5, l2=0), T0, request_id="edit-1")

    assert order.status is S.RELEASED and order.line("L2").quantity_cancelled == 0
    assert "OrderLinesCancelled" not in [f.type for f in out.facts]
    assert order.journal[-2].outcome == "REFUSED"
    assert "CancelOrderLines" in order.journal[-2].summary


def test_an_address_edited_in_shopify_after_release_is_sent_to_the_warehouse_of_each_release():
    order = released()
    new_address = {"lines": ["2 Side St"], "country_code": "US"}

    order, out = machine.ingest(order, edited(5, address=new_address), T0, request_id="upd-1")

    assert order.shipping_address == new_address
    (corrected,) = [f for f in out.facts if f.type == "OrderAddressCorrected"]
    assert corrected.data == {"release_ids": ["shp-1:EAST:1"]}


def test_an_address_edited_in_shopify_after_shipment_is_refused_and_recorded():
    order = released()
    machine.shipment_confirmed(order, "SH-1", {"L1": 2, "L2": 1}, T0, "e1")
    before = order.shipping_address

    order, out = machine.ingest(
        order, edited(5, address={"lines": ["2 Side St"], "country_code": "US"}), T0, request_id="upd-1"
    )

    assert order.shipping_address == before
    assert "OrderAddressCorrected" not in [f.type for f in out.facts]
    refused = [e for e in order.journal if e.outcome == "REFUSED"]
    assert refused and "address change refused: the order is SHIPPED" in refused[-1].summary


def test_the_warehouse_updating_an_address_is_recorded_and_refusing_opens_an_exception():
    order = released()

    done = machine.warehouse_address_updated(order, "shp-1:EAST:1", T0, "e1")
    refused = machine.warehouse_address_rejected(
        order, "shp-1:EAST:1", "ALREADY_PICKED", "Shipment 2 is Picked", T0, "e2"
    )

    assert done.problems == [] and order.journal[-2].type == "WarehouseAddressUpdated"
    assert order.journal[-1].outcome == "REFUSED" and "ALREADY_PICKED" in order.journal[-1].summary
    assert [(p.reason_code, p.owner.value) for p in refused.problems] == [
        ("ADDRESS_CORRECTION_REFUSED", "customer_service")
    ]
    assert order.status is S.RELEASED


def test_a_correction_by_the_operator_while_released_names_the_releases_to_tell():
    order = released()

    out = machine.correct_address(
        order, {"lines": ["2 Side St"], "country_code": "US"}, System.OPERATOR, T0, "a1"
    )

    assert out.reply == {"warehouse_update_required": True}
    assert out.facts[0].data == {"release_ids": ["shp-1:EAST:1"]}
