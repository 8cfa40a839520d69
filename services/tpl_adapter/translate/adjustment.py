"""The 3PL's EDI 947 inventory adjustments as canonical Adjust requests, one per W19 line.

Which buckets a line moves follows its W19-01 reason code (X12 element 181); canonically on_hand
is every unit in any condition, so units found damaged or put on hold stay on hand and only their
part (damaged, quality_control) grows:

| W19-01 | meaning | change per unit | reason |
|---|---|---|---|
| AU, AV | damaged in facility / in transit | damaged +1 | DAMAGE |
| 52 | recoup/rework of damaged product | damaged -1 | DAMAGE |
| 07 | product dumped or destroyed (damaged stock written off) | on_hand -1, damaged -1 | DAMAGE |
| 05, 08 | put on hold / in quality inspection | quality_control +1 | QUALITY_CONTROL |
| 55, 88 | taken off hold / out of quality inspection | quality_control -1 | QUALITY_CONTROL |
| 06 | book adjustment decrease (lost, shrinkage) | on_hand -1 | CYCLE_COUNT |
| 51, 56 | unable-to-locate product located / book increase | on_hand +1 | CYCLE_COUNT |
| AA | physical count, signed quantity | on_hand ±1 | CYCLE_COUNT |

A directional code takes the quantity's size whatever its sign (partners differ); AA alone reads
the sign. Lines in another unit than each (``EA``, or none), with a fractional quantity, without a
SKU or with another code are not applied (the next snapshot reconciles their effect).

Each request is idempotent per (interchange control number, transaction set, W19 line) by its
request_id, and carries the adjustment's time (W15 date, heading ``G62*07`` time) as occurred_at,
so a count taken before the adjustment is compared without it (docs/decisions/0010).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from libs.x12 import AdjustedLine, AdjustmentAdvice
from libs.x12 import adjustment_advice as x947
from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb

TPL = common_pb2.SOURCE_SYSTEM_TPL
ON_HAND = inventory_pb2.INVENTORY_BUCKET_ON_HAND
DAMAGED = inventory_pb2.INVENTORY_BUCKET_DAMAGED
QUALITY_CONTROL = inventory_pb2.INVENTORY_BUCKET_QUALITY_CONTROL

#: W19-01 → (bucket changes per unit, adjustment reason).
EFFECTS: dict[str, tuple[tuple[tuple[int, int], ...], int]] = {
    x947.DAMAGED_IN_FACILITY: (((DAMAGED, 1),), inventory_pb2.ADJUSTMENT_REASON_DAMAGE),
    x947.DAMAGED_IN_TRANSIT: (((DAMAGED, 1),), inventory_pb2.ADJUSTMENT_REASON_DAMAGE),
    x947.RECOUP_OF_DAMAGED_PRODUCT: (((DAMAGED, -1),), inventory_pb2.ADJUSTMENT_REASON_DAMAGE),
    x947.PRODUCT_DUMPED_OR_DESTROYED: (
        ((ON_HAND, -1), (DAMAGED, -1)),
        inventory_pb2.ADJUSTMENT_REASON_DAMAGE,
    ),
    x947.PRODUCT_PUT_ON_HOLD: (((QUALITY_CONTROL, 1),), inventory_pb2.ADJUSTMENT_REASON_QUALITY_CONTROL),
    x947.PRODUCT_PUT_IN_QUALITY_INSPECTION: (
        ((QUALITY_CONTROL, 1),),
        inventory_pb2.ADJUSTMENT_REASON_QUALITY_CONTROL,
    ),
    x947.PRODUCT_TAKEN_OFF_HOLD: (((QUALITY_CONTROL, -1),), inventory_pb2.ADJUSTMENT_REASON_QUALITY_CONTROL),
    x947.PRODUCT_REMOVED_FROM_QUALITY_INSPECTION: (
        ((QUALITY_CONTROL, -1),),
        inventory_pb2.ADJUSTMENT_REASON_QUALITY_CONTROL,
    ),
    x947.BOOK_ADJUSTMENT_DECREASE: (((ON_HAND, -1),), inventory_pb2.ADJUSTMENT_REASON_CYCLE_COUNT),
    x947.UNABLE_TO_LOCATE_PRODUCT_LOCATED: (((ON_HAND, 1),), inventory_pb2.ADJUSTMENT_REASON_CYCLE_COUNT),
    x947.BOOK_ADJUSTMENT_INCREASE: (((ON_HAND, 1),), inventory_pb2.ADJUSTMENT_REASON_CYCLE_COUNT),
    x947.PHYSICAL_COUNT: (((ON_HAND, 1),), inventory_pb2.ADJUSTMENT_REASON_CYCLE_COUNT),
}
SIGNED = frozenset({x947.PHYSICAL_COUNT})


@dataclass(frozen=True)
class Skipped:
    """A W19 line not applied, and why."""

    line_number: str
    why: str


def adjusted_at(advice: AdjustmentAdvice) -> datetime | None:
    """When the adjustment happened: the W15 date at the ``G62*07`` time, midnight UTC without one
    (the inventory service reads a bare date as the end of that day); None for a bad date."""
    time = (advice.time + "00")[:6] if len(advice.time) in (4, 6) else "000000"
    try:
        return datetime.strptime(f"{advice.date}{time}", "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def adjustments_from_947(
    advice: AdjustmentAdvice, *, control: str
) -> tuple[list[pb.AdjustRequest], list[Skipped]]:
    """The Adjust requests of a 947 (``control``: ISA13:ST02), and the lines not applied.

    The location is the WH party (its id, else its name), as in 944s and 945s.
    """
    location = next((p.id or p.name for p in advice.parties if p.code == "WH"), "")
    at = adjusted_at(advice)
    requests: list[pb.AdjustRequest] = []
    skipped: list[Skipped] = []
    for ordinal, line in enumerate(advice.lines, start=1):
        why = _unusable(line, location)
        if why:
            skipped.append(Skipped(line.line_number, why))
            continue
        per_unit, reason = EFFECTS[line.reason_code]
        units = int(line.quantity) if line.reason_code in SIGNED else abs(int(line.quantity))
        request = pb.AdjustRequest(
            request_id=f"edi-947:{control}:{ordinal}",
            sku=line.sku,
            location_id=location,
            changes=[
                inventory_pb2.BucketDelta(bucket=bucket, delta=sign * units) for bucket, sign in per_unit
            ],
            reason=reason,
            source_system=TPL,
            reference=common_pb2.ExternalRef(
                system=TPL,
                id=f"947-{advice.adjustment_number or control}/{line.line_number}",
                name=f"947 {advice.adjustment_number}",
            ),
            note=f"EDI 947 W19 {line.reason_code} {line.quantity} {line.unit or 'EA'}",
        )
        if at is not None:
            request.occurred_at.FromDatetime(at)
        requests.append(request)
    return requests, skipped


def _unusable(line: AdjustedLine, location: str) -> str:
    if line.reason_code not in EFFECTS:
        return f"reason code {line.reason_code} is not mapped"
    if line.unit not in ("", "EA"):
        return f"unit {line.unit} is not each"
    if line.quantity != line.quantity.to_integral_value() or line.quantity == 0:
        return f"quantity {line.quantity} is not a whole number of units"
    if not line.sku:
        return "no SKU"
    if not location:
        return "no warehouse (N1*WH)"
    return ""
