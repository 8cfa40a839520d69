"""How a carrier's tracking update changes a shipment: ordered by the carrier's time, delivery
complete when every package is delivered. Pure: no protobuf, no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum


class Status(IntEnum):
    """Where a shipment is (same numbers as `retail.shipments.v1.ShipmentStatus`)."""

    CONFIRMED = 1
    IN_TRANSIT = 2
    DELIVERED = 3
    EXCEPTION = 4
    RETURNED_TO_SENDER = 5


@dataclass(frozen=True)
class TrackingState:
    """The tracking-relevant part of a stored shipment."""

    status: Status
    package_ids: tuple[str, ...]
    delivered_packages: frozenset[str]
    applied_at: datetime | None


@dataclass(frozen=True)
class TrackingOutcome:
    """What an update did.

    Attributes:
        applied: False when the update was older than the last one applied (ignored).
        state: The state after the update.
        delivered_now: True when this update completed delivery of every package.
    """

    applied: bool
    state: TrackingState
    delivered_now: bool = False


def apply_update(
    state: TrackingState, *, status: Status, package_id: str, occurred_at: datetime
) -> TrackingOutcome:
    """Apply one carrier update.

    An update older than the last applied one is ignored (carriers resend and reorder). A delivery
    of one package of several marks that package only; the shipment is DELIVERED when every
    package is. A delivered shipment stays delivered unless the carrier returns it to the sender.
    """
    if state.applied_at is not None and occurred_at < state.applied_at:
        return TrackingOutcome(applied=False, state=state)
    delivered = set(state.delivered_packages)
    new_status = status
    if status is Status.DELIVERED:
        delivered.update([package_id] if package_id else state.package_ids)
        if not set(state.package_ids) <= delivered:
            new_status = Status.IN_TRANSIT
    elif state.status is Status.DELIVERED and status is not Status.RETURNED_TO_SENDER:
        new_status = Status.DELIVERED
    after = TrackingState(
        status=new_status,
        package_ids=state.package_ids,
        delivered_packages=frozenset(delivered),
        applied_at=occurred_at,
    )
    delivered_now = new_status is Status.DELIVERED and state.status is not Status.DELIVERED
    return TrackingOutcome(applied=True, state=after, delivered_now=delivered_now)
