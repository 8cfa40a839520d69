"""Domain values ⇄ retail.inventory.v1 messages, shared by the servicer and the published events."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from retail.common.v1 import common_pb2
from retail.inventory.v1 import events_pb2, inventory_pb2
from services.inventory.domain.policy import Policy
from services.inventory.domain.position import Position
from services.inventory.domain.reservation import Reservation

RESERVATION_STATES = {
    "ACTIVE": inventory_pb2.RESERVATION_STATE_ACTIVE,
    "COMMITTED": inventory_pb2.RESERVATION_STATE_COMMITTED,
    "RELEASED": inventory_pb2.RESERVATION_STATE_RELEASED,
    "CONSUMED": inventory_pb2.RESERVATION_STATE_CONSUMED,
}

#: Proto bucket → Position attribute.
BUCKETS = {
    inventory_pb2.INVENTORY_BUCKET_ON_HAND: "on_hand",
    inventory_pb2.INVENTORY_BUCKET_RESERVED: "reserved",
    inventory_pb2.INVENTORY_BUCKET_COMMITTED: "committed",
    inventory_pb2.INVENTORY_BUCKET_INCOMING: "incoming",
    inventory_pb2.INVENTORY_BUCKET_DAMAGED: "damaged",
    inventory_pb2.INVENTORY_BUCKET_QUALITY_CONTROL: "quality_control",
    inventory_pb2.INVENTORY_BUCKET_SAFETY_STOCK: "safety_stock",
}
BUCKET_OF = {name: bucket for bucket, name in BUCKETS.items()}


def timestamp(moment: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp, or None."""
    if moment is None:
        return None
    value = Timestamp()
    value.FromDatetime(moment)
    return value


def channels_pb(position: Position, policy: Policy) -> list[inventory_pb2.ChannelAvailability]:
    """Availability of the position for every configured channel."""
    result = []
    for channel in sorted(policy.channels):
        rule = policy.rule(channel, position.sku)
        if not rule.ships_from(position.location_id):
            continue
        result.append(
            inventory_pb2.ChannelAvailability(
                channel=channel,
                buffer=rule.buffer + rule.holdback(position),
                available=rule.available(position),
            )
        )
    return result


def position_pb(
    position: Position,
    policy: Policy,
    *,
    updated_at: datetime | None = None,
    last_snapshot_at: datetime | None = None,
) -> inventory_pb2.InventoryPosition:
    """The canonical InventoryPosition with derived availability."""
    return inventory_pb2.InventoryPosition(
        sku=position.sku,
        location_id=position.location_id,
        on_hand=position.on_hand,
        reserved=position.reserved,
        committed=position.committed,
        incoming=position.incoming,
        damaged=position.damaged,
        quality_control=position.quality_control,
        safety_stock=position.safety_stock,
        available_to_sell=position.available_to_sell,
        channels=channels_pb(position, policy),
        version=position.version,
        updated_at=timestamp(updated_at),
        last_snapshot_at=timestamp(last_snapshot_at),
    )


def reservation_pb(
    reservation: Reservation, *, created_at: datetime | None = None, updated_at: datetime | None = None
) -> inventory_pb2.Reservation:
    """The canonical Reservation; `quantity` is the quantity held (open plus shipped)."""
    return inventory_pb2.Reservation(
        reservation_id=reservation.reservation_id,
        order_id=reservation.order_id,
        line_id=reservation.line_id,
        sku=reservation.sku,
        location_id=reservation.location_id,
        quantity=reservation.quantity,
        state=RESERVATION_STATES[reservation.state.value],
        channel=reservation.channel,
        created_at=timestamp(created_at),
        updated_at=timestamp(updated_at),
    )


def shortage_pb(
    line_id: str, sku: str, requested: int, shortfall: int, code: str, message: str
) -> inventory_pb2.Shortage:
    """A Shortage with a mesh-owned business reason."""
    return inventory_pb2.Shortage(
        line_id=line_id,
        sku=sku,
        requested=requested,
        shortfall=shortfall,
        reason=common_pb2.Reason(
            code=code,
            message=message,
            source_system=common_pb2.SOURCE_SYSTEM_MESH,
            failure_kind=common_pb2.FAILURE_KIND_BUSINESS,
        ),
    )


def availability_changed(before: Position, after: Position, policy: Policy) -> events_pb2.AvailabilityChanged:
    """AvailabilityChanged for a position that changed."""
    return events_pb2.AvailabilityChanged(
        sku=after.sku,
        location_id=after.location_id,
        previous_available_to_sell=before.available_to_sell,
        available_to_sell=after.available_to_sell,
        channels=channels_pb(after, policy),
        position_version=after.version,
    )
