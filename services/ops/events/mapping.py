"""Events of other contexts as worklist facts: what opens an exception, what clears one.

The only place the consumed protobuf events are read; the rules they feed are in
`services.ops.domain.worklist`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.message import Message

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
    Worklist,
    hold_worklist,
    rejection_worklist,
)

Fact = Finding | Clearance | OrderStatusReached

_SYSTEMS = {name.removeprefix("SOURCE_SYSTEM_"): number for name, number in common_pb2.SourceSystem.items()}

#: The events the ops service consumes from the ORDERS stream.
ORDER_EVENTS: tuple[type[Message], ...] = (
    order_events.OrderRejected,
    order_events.OrderHeld,
    order_events.OrderHoldReleased,
    order_events.OrderStatusChanged,
    order_events.WarehouseCancellationRejected,
    order_events.WarehouseCancellationAccepted,
    order_events.WarehouseAddressUpdateRejected,
    order_events.WarehouseAddressUpdated,
)
#: The events the ops service consumes from the INVENTORY stream.
INVENTORY_EVENTS: tuple[type[Message], ...] = (inventory_events.InventoryDriftDetected,)


def facts_of(event: Message) -> list[Fact]:
    """What `event` means for the worklists; empty when nothing."""
    mapper = _MAPPERS.get(event.DESCRIPTOR.full_name)
    return mapper(event) if mapper is not None else []


def exception_pb(case: Case) -> ops_pb2.BusinessException:
    """`retail.ops.v1.BusinessException` of an exception."""
    message = ops_pb2.BusinessException(
        exception_id=case.exception_id,
        worklist=ops_pb2.Worklist.Value(f"WORKLIST_{case.worklist.value}"),
        reason=common_pb2.Reason(
            code=case.code,
            message=case.message[:2000],
            source_system=_SYSTEMS.get(case.source_system, common_pb2.SOURCE_SYSTEM_UNSPECIFIED),
            failure_kind=common_pb2.FAILURE_KIND_BUSINESS,
            external_code=case.external_code[:255],
        ),
        key=case.key,
        order_id=case.order_id,
        correlation_id=case.correlation_id,
        source_event_id=case.source_event_id,
        state=ops_pb2.ExceptionState.Value(f"EXCEPTION_STATE_{case.state.value}"),
        assignee=case.assignee,
        occurrences=case.occurrences,
        resolution_note=case.resolution_note,
        evidence=case.evidence[:4000],
        resolved_by=case.resolved_by,
    )
    message.opened_at.FromDatetime(case.opened_at)
    if case.resolved_at is not None:
        message.resolved_at.FromDatetime(case.resolved_at)
    if case.resolution is not None:
        message.resolution = ops_pb2.Resolution.Value(f"RESOLUTION_{case.resolution.value}")
    return message


def _at(event: Message) -> datetime:
    meta = event.meta  # type: ignore[attr-defined]
    if meta.HasField("occurred_at"):
        return meta.occurred_at.ToDatetime(tzinfo=UTC)
    return datetime.now(UTC)


def _system(value: int) -> str:
    return common_pb2.SourceSystem.Name(value).removeprefix("SOURCE_SYSTEM_")


def _rejected(e: order_events.OrderRejected) -> list[Fact]:
    code = orders_pb2.RejectionReason.Name(e.reason).removeprefix("REJECTION_REASON_")
    return [
        Finding(
            kind=Kind.ORDER_REJECTED,
            subject=e.order_id,
            worklist=rejection_worklist(code),
            code=code,
            message=e.detail or code,
            source_system=_system(e.meta.source_system),
            key=e.order_id,
            order_id=e.order_id,
            occurred_at=_at(e),
        )
    ]


def _held(e: order_events.OrderHeld) -> list[Fact]:
    reason = orders_pb2.HoldReason.Name(e.hold.reason).removeprefix("HOLD_REASON_")
    if reason == "UNSPECIFIED":
        reason = "ON_HOLD"
    return [
        Finding(
            kind=Kind.ORDER_HOLD,
            subject=f"{e.order_id}/{e.hold.hold_id}",
            worklist=hold_worklist(reason),
            code=reason,
            message=e.hold.note or f"order held: {reason}",
            source_system=_system(e.hold.placed_by or e.meta.source_system),
            key=e.order_id,
            order_id=e.order_id,
            occurred_at=_at(e),
        )
    ]


def _hold_released(e: order_events.OrderHoldReleased) -> list[Fact]:
    by = _system(e.meta.source_system)
    resolution = Resolution.HANDLED_MANUALLY if by == "OPERATOR" else Resolution.NO_ACTION_NEEDED
    return [
        Clearance(Kind.ORDER_HOLD, f"{e.order_id}/{e.hold_id}", resolution, f"hold released by {by}", _at(e))
    ]


def _status_changed(e: order_events.OrderStatusChanged) -> list[Fact]:
    status = orders_pb2.OrderStatus.Name(e.change.to_status).removeprefix("ORDER_STATUS_")
    return [OrderStatusReached(e.order_id, status, _at(e))]


def _warehouse_refusal(kind: Kind, what: str):
    def finding(e: Message) -> list[Fact]:
        reason = e.reason  # type: ignore[attr-defined]
        order_id, release_id = e.order_id, e.release_id  # type: ignore[attr-defined]
        code = reason.code or f"{kind.value.upper()}"
        return [
            Finding(
                kind=kind,
                subject=f"{order_id}/{release_id}",
                worklist=Worklist.CUSTOMER_SERVICE,
                code=code,
                message=f"{what} of release {release_id}: {reason.message or code}"[:2000],
                source_system=_system(reason.source_system or e.meta.source_system),  # type: ignore[attr-defined]
                key=order_id,
                order_id=order_id,
                external_code=reason.external_code,
                occurred_at=_at(e),
            )
        ]

    return finding


def _warehouse_done(kind: Kind, note: str):
    def clearance(e: Message) -> list[Fact]:
        subject = f"{e.order_id}/{e.release_id}"  # type: ignore[attr-defined]
        return [Clearance(kind, subject, Resolution.FIXED_AND_REPLAYED, note, _at(e))]

    return clearance


def _drift(e: inventory_events.InventoryDriftDetected) -> list[Fact]:
    bucket = inventory_pb2.InventoryBucket.Name(e.bucket).removeprefix("INVENTORY_BUCKET_")
    system = _system(e.compared_system)
    key = f"{e.sku}@{e.location_id}"
    subject = f"{key}/{bucket}/{system}"
    if e.auto_repaired:
        note = f"a later {system} count was within bounds and repaired"
        return [Clearance(Kind.INVENTORY_DRIFT, subject, Resolution.NO_ACTION_NEEDED, note, _at(e))]
    return [
        Finding(
            kind=Kind.INVENTORY_DRIFT,
            subject=subject,
            worklist=Worklist.WAREHOUSE,
            code="INVENTORY_MISMATCH",
            message=(
                f"{bucket} of {e.sku} at {e.location_id}: mesh {e.expected}, {system} {e.observed} "
                f"({e.observed - e.expected:+d}), beyond the repair bounds"
            ),
            source_system=system,
            key=key,
            evidence=e.evidence,
            occurred_at=_at(e),
        )
    ]


_MAPPERS = {
    cls.DESCRIPTOR.full_name: fn
    for cls, fn in (
        (order_events.OrderRejected, _rejected),
        (order_events.OrderHeld, _held),
        (order_events.OrderHoldReleased, _hold_released),
        (order_events.OrderStatusChanged, _status_changed),
        (
            order_events.WarehouseCancellationRejected,
            _warehouse_refusal(Kind.CANCELLATION_REJECTED, "the warehouse refused the cancellation"),
        ),
        (
            order_events.WarehouseCancellationAccepted,
            _warehouse_done(Kind.CANCELLATION_REJECTED, "the warehouse accepted the cancellation"),
        ),
        (
            order_events.WarehouseAddressUpdateRejected,
            _warehouse_refusal(Kind.ADDRESS_UPDATE_REJECTED, "the warehouse refused the address correction"),
        ),
        (
            order_events.WarehouseAddressUpdated,
            _warehouse_done(Kind.ADDRESS_UPDATE_REJECTED, "the warehouse applied the address correction"),
        ),
        (inventory_events.InventoryDriftDetected, _drift),
    )
}
