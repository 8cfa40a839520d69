"""What the tpl-adapter's prepare steps and handlers both decide from a release row: the
cancellation and address-correction plans, and the row state a handler checks again."""

from __future__ import annotations

from datetime import UTC, datetime

from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2
from services.tpl_adapter.events.warehouse import WarehouseEvents, _address_plan, _state
from services.tpl_adapter.store import ReleaseRow

LINES = [
    {"line_id": "L1", "sku": "SKU-1001", "quantity": 2},
    {"line_id": "L2", "sku": "SKU-1002", "quantity": 1},
]


def row(status: str = "accepted", *, mode: str = "api", shipped: bool = False) -> ReleaseRow:
    now = datetime.now(UTC)
    return ReleaseRow(
        release_id="ord-1-EAST",
        order_id="ord-1",
        location_id="EAST",
        lines=LINES,
        mode=mode,
        status=status,
        warehouse_order_id="100001",
        shipped=shipped,
        created_at=now,
        updated_at=now,
    )


def cancel(*lines: tuple[str, int], whole: bool = False) -> order_events.OrderCancellationRequested:
    return order_events.OrderCancellationRequested(
        order_id="ord-1",
        release_id="ord-1-EAST",
        whole_release=whole,
        lines=[orders_pb2.LineQuantity(line_id=line_id, quantity=q) for line_id, q in lines],
    )


def test_a_cancellation_of_an_unanswered_release_waits_for_its_answer():
    assert WarehouseEvents._cancel_plan(cancel(whole=True), None)[0] == "wait"
    assert WarehouseEvents._cancel_plan(cancel(whole=True), row("sent"))[0] == "wait"


def test_a_whole_cancellation_of_an_accepted_api_release_is_sent_to_the_3pl_with_every_line():
    plan, lines = WarehouseEvents._cancel_plan(cancel(whole=True), row())

    assert plan == "api"
    assert [(x.line_id, x.quantity) for x in lines] == [("L1", 2), ("L2", 1)]


def test_cancelling_every_line_counts_as_whole_and_some_lines_is_refused():
    assert WarehouseEvents._cancel_plan(cancel(("L1", 2), ("L2", 1)), row())[0] == "api"
    assert WarehouseEvents._cancel_plan(cancel(("L1", 1)), row())[0] == "lines"


def test_a_cancellation_after_shipment_or_of_a_cancelled_release_needs_no_3pl_call():
    assert WarehouseEvents._cancel_plan(cancel(whole=True), row(shipped=True))[0] == "shipped"
    assert WarehouseEvents._cancel_plan(cancel(whole=True), row("cancel_rejected"))[0] == "shipped"
    assert WarehouseEvents._cancel_plan(cancel(whole=True), row("cancelled"))[0] == "accepted"
    assert WarehouseEvents._cancel_plan(cancel(whole=True), row(mode="edi"))[0] == "edi"


def test_an_address_correction_goes_to_the_3pl_only_for_unshipped_api_releases():
    assert _address_plan(row()) == "api"
    assert _address_plan(row(mode="edi")) == "edi"
    assert _address_plan(row(shipped=True)) == "shipped"
    assert _address_plan(row("cancelled")) == "skip"


def test_a_release_marked_shipped_after_prepare_read_it_counts_as_changed():
    before = _state(row())

    assert _state(row(shipped=True)) != before
    assert _state(row()) == before
