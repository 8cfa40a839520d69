"""The 3PL's stock (the inventory-level API, an EDI 846) as canonical snapshots, one per location.

The 3PL counts damaged units apart from on hand; canonically on_hand is every unit in any
condition and damaged a part of it, so on_hand = the 3PL's on hand + damaged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from libs.x12 import InventoryAdvice
from libs.x12 import inventory_advice as x846
from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_service_pb2


def _request(request_id: str, location: str, as_of: datetime) -> inventory_service_pb2.ApplySnapshotRequest:
    request = inventory_service_pb2.ApplySnapshotRequest(
        request_id=request_id, location_id=location, source_system=common_pb2.SOURCE_SYSTEM_TPL, complete=True
    )
    request.as_of.FromDatetime(as_of)
    return request


def snapshots_from_levels(
    items: list[dict[str, Any]], *, snapshot_id: str, as_of: datetime
) -> list[inventory_service_pb2.ApplySnapshotRequest]:
    """Inventory-level items as one complete snapshot per fulfillment center.

    `snapshot_id` identifies the fetch, so re-applying the same fetch is a replay
    (request id `<snapshot_id>:<location>`).
    """
    by_location: dict[str, inventory_service_pb2.ApplySnapshotRequest] = {}
    for item in items:
        for level in item.get("locations") or []:
            location = str(level["location_name"])
            request = by_location.get(location) or by_location.setdefault(
                location, _request(f"{snapshot_id}:{location}", location, as_of)
            )
            damaged = int(level.get("damaged_quantity") or 0)
            request.lines.add(
                sku=str(item["sku"]),
                on_hand=int(level.get("on_hand_quantity") or 0) + damaged,
                damaged=damaged,
                allocated=int(level.get("committed_quantity") or 0),
            )
    return list(by_location.values())


def snapshots_from_846(
    advice: InventoryAdvice, *, snapshot_id: str, as_of: datetime
) -> list[inventory_service_pb2.ApplySnapshotRequest]:
    """An 846 (QTY 17 on hand, 33 available, 74 damaged per center) as one snapshot per center.

    Allocated is on hand minus available (the 3PL's committed).
    """
    by_location: dict[str, inventory_service_pb2.ApplySnapshotRequest] = {}
    for item in advice.items:
        for location in dict.fromkeys(q.location for q in item.quantities if q.location):
            on_hand = int(item.quantity(x846.ON_HAND, location) or 0)
            available = item.quantity(x846.AVAILABLE, location)
            damaged = int(item.quantity(x846.DAMAGED, location) or 0)
            request = by_location.get(location) or by_location.setdefault(
                location, _request(f"{snapshot_id}:{location}", location, as_of)
            )
            request.lines.add(
                sku=item.sku,
                on_hand=on_hand + damaged,
                damaged=damaged,
                allocated=max(0, on_hand - int(available)) if available is not None else 0,
            )
    return list(by_location.values())
