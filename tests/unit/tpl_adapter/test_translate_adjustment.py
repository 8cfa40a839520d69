"""947 adjustments → Adjust requests: buckets by reason code, the adjustment's time, skipped lines."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from libs.x12 import AdjustedLine, AdjustmentAdvice, DateReference, Party
from retail.inventory.v1 import inventory_pb2
from services.tpl_adapter.translate.adjustment import adjustments_from_947

ON_HAND = inventory_pb2.INVENTORY_BUCKET_ON_HAND
DAMAGED = inventory_pb2.INVENTORY_BUCKET_DAMAGED


def advice(*lines: AdjustedLine, time: str = "091502") -> AdjustmentAdvice:
    return AdjustmentAdvice(
        adjustment_number="ADJ9",
        date="20260301",
        parties=[Party(code="WH", name="EAST", id_qualifier="92", id="EAST")],
        dates=[DateReference("07", "20260301", time)] if time else [],
        lines=list(lines),
    )


def line(code: str, quantity: int, sku: str = "SKU-1001", unit: str = "EA") -> AdjustedLine:
    return AdjustedLine(reason_code=code, quantity=Decimal(quantity), unit=unit, product_ids={"SK": sku})


def test_each_w19_becomes_an_adjust_keyed_by_control_and_line_at_the_adjustments_time() -> None:
    requests, skipped = adjustments_from_947(
        advice(line("AU", 3), line("06", -2), line("51", 1), line("AA", -4), line("07", 1)), control="42:0001"
    )

    assert skipped == []
    assert [r.request_id for r in requests] == [f"edi-947:42:0001:{n}" for n in range(1, 6)]
    assert [[(c.bucket, c.delta) for c in r.changes] for r in requests] == [
        [(DAMAGED, 3)],
        [(ON_HAND, -2)],
        [(ON_HAND, 1)],
        [(ON_HAND, -4)],
        [(ON_HAND, -1), (DAMAGED, -1)],
    ]
    assert [r.reason for r in requests] == [
        inventory_pb2.ADJUSTMENT_REASON_DAMAGE,
        inventory_pb2.ADJUSTMENT_REASON_CYCLE_COUNT,
        inventory_pb2.ADJUSTMENT_REASON_CYCLE_COUNT,
        inventory_pb2.ADJUSTMENT_REASON_CYCLE_COUNT,
        inventory_pb2.ADJUSTMENT_REASON_DAMAGE,
    ]
    assert {r.location_id for r in requests} == {"EAST"}
    assert requests[0].occurred_at.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 1, 9, 15, 2, tzinfo=UTC)


def test_without_a_time_the_adjustment_is_dated_at_midnight_of_its_day() -> None:
    (request,), _ = adjustments_from_947(advice(line("AU", 1), time=""), control="1:1")

    assert request.occurred_at.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 1, tzinfo=UTC)


def test_lines_the_mesh_cannot_read_safely_are_skipped_with_a_reason() -> None:
    fraction = line("AU", 1)
    fraction.quantity = Decimal("1.5")

    requests, skipped = adjustments_from_947(
        advice(line("ZZ", 1), line("AU", 2, unit="CA"), fraction, line("AU", 1, sku=""), line("AU", 0)),
        control="1:1",
    )

    assert requests == []
    assert [s.why.split(" ")[0] for s in skipped] == ["reason", "unit", "quantity", "no", "quantity"]
