"""The worklist rules (V3): which team works which cause, what an event means for the worklists,
when an order's progress clears an exception, and what an operator may still do with one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from retail.common.v1 import common_pb2
from retail.inventory.v1 import events_pb2 as inventory_events
from retail.inventory.v1 import inventory_pb2
from retail.ops.v1 import ops_pb2
from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2
from services.ops.domain.worklist import (
    Case,
    Clearance,
    Finding,
    Kind,
    OrderStatusReached,
    Resolution,
    State,
    Worklist,
    WorklistError,
    cleared_by_status,
    is_stale,
)
from services.ops.events.mapping import exception_pb, facts_of

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def stamped(event, source: int = common_pb2.SOURCE_SYSTEM_MESH, at: datetime = T0):
    """The event with the meta its producer would have stamped."""
    event.meta.event_id = "e-1"
    event.meta.correlation_id = "c-1"
    event.meta.source_system = source
    event.meta.occurred_at.FromDatetime(at)
    return event


def rejection(code: str = "TAX_REJECTED", source: str = "ERP") -> Finding:
    return Finding(
        kind=Kind.ORDER_REJECTED,
        subject="shp-1",
        worklist=Worklist.FINANCE,
        code=code,
        message="no tax area",
        source_system=source,
        key="shp-1",
        order_id="shp-1",
        occurred_at=T0,
    )


def opened(finding: Finding) -> Case:
    return Case.open("x-1", finding, correlation_id="c-1", event_id="e-1", now=T0)


@pytest.mark.parametrize(
    ("reason", "worklist"),
    [
        (orders_pb2.REJECTION_REASON_TAX_REJECTED, Worklist.FINANCE),
        (orders_pb2.REJECTION_REASON_CREDIT_LIMIT_EXCEEDED, Worklist.FINANCE),
        (orders_pb2.REJECTION_REASON_INVALID_SKU, Worklist.CATALOG),
        (orders_pb2.REJECTION_REASON_CUSTOMER_BLOCKED, Worklist.CUSTOMER_SERVICE),
        (orders_pb2.REJECTION_REASON_OUT_OF_STOCK, Worklist.CUSTOMER_SERVICE),
    ],
)
def test_a_rejected_order_lands_in_the_worklist_of_the_team_that_can_fix_its_cause(reason, worklist):
    event = stamped(
        order_events.OrderRejected(order_id="shp-1", reason=reason, detail="CODE: why"),
        source=common_pb2.SOURCE_SYSTEM_ERP,
    )

    (finding,) = facts_of(event)

    assert isinstance(finding, Finding)
    assert (finding.kind, finding.subject, finding.worklist) == (Kind.ORDER_REJECTED, "shp-1", worklist)
    assert finding.code == orders_pb2.RejectionReason.Name(reason).removeprefix("REJECTION_REASON_")
    assert (finding.message, finding.source_system, finding.occurred_at) == ("CODE: why", "ERP", T0)


def test_a_drift_beyond_bounds_opens_a_warehouse_exception_carrying_its_evidence():
    event = stamped(
        inventory_events.InventoryDriftDetected(
            sku="SKU-1010",
            location_id="EAST",
            compared_system=common_pb2.SOURCE_SYSTEM_TPL,
            bucket=inventory_pb2.INVENTORY_BUCKET_ON_HAND,
            expected=40,
            observed=31,
            auto_repaired=False,
            evidence="snapshot snap-7 as of 2026-03-01T11:00Z; in flight: shp-9 (2)",
        )
    )

    (finding,) = facts_of(event)

    assert finding.worklist is Worklist.WAREHOUSE
    assert (finding.code, finding.key) == ("INVENTORY_MISMATCH", "SKU-1010@EAST")
    assert finding.subject == "SKU-1010@EAST/ON_HAND/TPL"
    assert "mesh 40, TPL 31 (-9)" in finding.message
    assert finding.evidence == "snapshot snap-7 as of 2026-03-01T11:00Z; in flight: shp-9 (2)"


def test_a_drift_repaired_within_bounds_clears_the_same_bucket_instead_of_opening():
    event = stamped(
        inventory_events.InventoryDriftDetected(
            sku="SKU-1010",
            location_id="EAST",
            compared_system=common_pb2.SOURCE_SYSTEM_TPL,
            bucket=inventory_pb2.INVENTORY_BUCKET_ON_HAND,
            expected=31,
            observed=30,
            auto_repaired=True,
        )
    )

    (clearance,) = facts_of(event)

    assert isinstance(clearance, Clearance)
    assert (clearance.kind, clearance.subject) == (Kind.INVENTORY_DRIFT, "SKU-1010@EAST/ON_HAND/TPL")
    assert clearance.resolution is Resolution.NO_ACTION_NEEDED


def test_a_shopify_availability_drift_held_beyond_bounds_opens_its_own_warehouse_exception():
    event = stamped(
        inventory_events.InventoryDriftDetected(
            sku="SKU-1004",
            location_id="EAST",
            compared_system=common_pb2.SOURCE_SYSTEM_SHOPIFY,
            bucket=inventory_pb2.INVENTORY_BUCKET_CHANNEL_AVAILABLE,
            expected=40,
            observed=30,
            auto_repaired=False,
            evidence="online-store availability of SKU-1004@EAST: SHOPIFY shows 30, the mesh offers 40",
            channel="online-store",
        )
    )

    (finding,) = facts_of(event)

    assert finding.worklist is Worklist.WAREHOUSE
    assert finding.subject == "SKU-1004@EAST/CHANNEL_AVAILABLE/SHOPIFY"
    assert "mesh 40, SHOPIFY 30 (-10)" in finding.message


def test_a_hold_opens_per_hold_and_its_release_by_an_operator_counts_as_handled():
    held = stamped(
        order_events.OrderHeld(
            order_id="shp-1",
            hold=orders_pb2.Hold(
                hold_id="h2",
                reason=orders_pb2.HOLD_REASON_WAREHOUSE_REJECTED,
                note="UNKNOWN_SKU: SKU-1001 not set up",
                placed_by=common_pb2.SOURCE_SYSTEM_TPL,
            ),
        )
    )
    released = stamped(
        order_events.OrderHoldReleased(
            order_id="shp-1", hold_id="h2", resumed_status=orders_pb2.ORDER_STATUS_ERP_CREATED
        ),
        source=common_pb2.SOURCE_SYSTEM_OPERATOR,
    )

    (finding,) = facts_of(held)
    (clearance,) = facts_of(released)

    assert (finding.subject, finding.worklist, finding.code) == (
        "shp-1/h2",
        Worklist.WAREHOUSE,
        "WAREHOUSE_REJECTED",
    )
    assert (finding.message, finding.source_system) == ("UNKNOWN_SKU: SKU-1001 not set up", "TPL")
    assert (clearance.subject, clearance.resolution) == ("shp-1/h2", Resolution.HANDLED_MANUALLY)


def test_a_refused_cancellation_is_a_customer_service_exception_per_release():
    event = stamped(
        order_events.WarehouseCancellationRejected(
            order_id="shp-1",
            release_id="shp-1:EAST:1",
            reason=common_pb2.Reason(
                code="ALREADY_SHIPPED", message="left the dock", source_system=common_pb2.SOURCE_SYSTEM_TPL
            ),
        ),
        source=common_pb2.SOURCE_SYSTEM_TPL,
    )

    (finding,) = facts_of(event)

    assert (finding.kind, finding.subject) == (Kind.CANCELLATION_REJECTED, "shp-1/shp-1:EAST:1")
    assert (finding.worklist, finding.code) == (Worklist.CUSTOMER_SERVICE, "ALREADY_SHIPPED")
    assert "left the dock" in finding.message


def test_events_that_concern_no_worklist_mean_nothing():
    event = stamped(order_events.OrderReceived(order_id="shp-1"))

    assert facts_of(event) == []


def test_an_erp_rejection_clears_only_once_the_replayed_order_is_created_in_the_erp():
    case = opened(rejection(source="ERP"))

    on_the_way = [
        cleared_by_status(case, status) for status in ("RECEIVED", "ACCEPTED", "REJECTED", "ON_HOLD")
    ]
    created = cleared_by_status(case, "ERP_CREATED")

    assert on_the_way == [None, None, None, None]
    assert created == (Resolution.FIXED_AND_REPLAYED, "the replayed order reached ERP_CREATED")


def test_a_mesh_rejection_clears_once_the_replayed_order_is_accepted_or_backordered():
    case = opened(rejection("OUT_OF_STOCK", source="MESH"))

    assert cleared_by_status(case, "RECEIVED") is None
    assert cleared_by_status(case, "ACCEPTED")[0] is Resolution.FIXED_AND_REPLAYED
    assert cleared_by_status(case, "BACKORDERED")[0] is Resolution.FIXED_AND_REPLAYED


def test_a_cancelled_order_needs_nothing_more_and_a_rejection_ends_its_holds():
    hold = opened(
        Finding(
            Kind.ORDER_HOLD, "shp-1/h1", Worklist.CUSTOMER_SERVICE, "FRAUD_REVIEW", "", "SHOPIFY", "shp-1", T0
        )
    )
    rejected = opened(rejection())

    assert cleared_by_status(hold, "REJECTED") == (
        Resolution.NO_ACTION_NEEDED,
        "the order was rejected, which ended its holds",
    )
    assert cleared_by_status(rejected, "CANCELLED") == (
        Resolution.NO_ACTION_NEEDED,
        "the order was cancelled",
    )


def test_the_same_cause_found_again_counts_on_the_open_exception_with_the_latest_figures():
    case = opened(rejection())
    case.assign("ana", T0)

    case.recur(
        Finding(
            Kind.ORDER_REJECTED,
            "shp-1",
            Worklist.FINANCE,
            "TAX_REJECTED",
            "still no tax area",
            "ERP",
            "shp-1",
            T0,
        ),
        T0 + timedelta(minutes=5),
    )

    assert (case.occurrences, case.message, case.assignee) == (2, "still no tax area", "ana")
    assert (case.state, case.exception_id, case.source_event_id) == (State.ASSIGNED, "x-1", "e-1")


def test_a_resolved_exception_can_be_neither_assigned_nor_resolved_again():
    case = opened(rejection())
    case.resolve(Resolution.HANDLED_MANUALLY, "called the customer", "ana", T0)

    with pytest.raises(WorklistError) as assigned:
        case.assign("bob", T0)
    with pytest.raises(WorklistError) as again:
        case.resolve(Resolution.NO_ACTION_NEEDED, "again", "bob", T0)

    assert assigned.value.code == again.value.code == "ALREADY_RESOLVED"
    assert (case.resolved_by, case.resolution_note) == ("ana", "called the customer")


def test_a_finding_older_than_the_last_clearance_of_its_cause_is_stale():
    finding = rejection()

    assert is_stale(finding, T0 + timedelta(seconds=1))
    assert is_stale(finding, T0)
    assert not is_stale(finding, T0 - timedelta(seconds=1))
    assert not is_stale(finding, None)


def test_an_exception_maps_to_a_valid_business_exception_message():
    case = opened(rejection())
    case.resolve(Resolution.FIXED_AND_REPLAYED, "tax area fixed", "mesh", T0 + timedelta(hours=1))

    message = exception_pb(case)

    assert message.worklist == ops_pb2.WORKLIST_FINANCE
    assert (message.reason.code, message.reason.source_system) == (
        "TAX_REJECTED",
        common_pb2.SOURCE_SYSTEM_ERP,
    )
    assert message.state == ops_pb2.EXCEPTION_STATE_RESOLVED
    assert message.resolution == ops_pb2.RESOLUTION_FIXED_AND_REPLAYED
    assert (message.resolved_by, message.order_id, message.occurrences) == ("mesh", "shp-1", 1)
    assert message.resolved_at.ToDatetime(tzinfo=UTC) == T0 + timedelta(hours=1)


def test_a_status_change_is_read_as_the_status_the_order_reached():
    event = stamped(
        order_events.OrderStatusChanged(
            order_id="shp-1",
            change=orders_pb2.StatusChange(
                from_status=orders_pb2.ORDER_STATUS_ACCEPTED, to_status=orders_pb2.ORDER_STATUS_ERP_CREATED
            ),
        )
    )

    assert facts_of(event) == [OrderStatusReached("shp-1", "ERP_CREATED", T0)]
