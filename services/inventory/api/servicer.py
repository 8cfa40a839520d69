"""InventoryService as served by inventory: maps protobuf to the ledger and back.

Requests arrive validated by protovalidate (libs.rpc ValidationInterceptor); the checks here are
the ones its rules cannot express (duplicates, cross-field rules), raised as INVALID_ARGUMENT
naming the field.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from sqlalchemy import select

from libs.rpc import InvalidArgument
from retail.common.v1 import common_pb2
from retail.inventory.v1 import events_pb2, inventory_pb2, inventory_service_pb2, inventory_service_pb2_grpc
from services.inventory import channel, inbound
from services.inventory.domain.position import StockError
from services.inventory.domain.routing import Line
from services.inventory.events.mapping import (
    BUCKET_OF,
    BUCKETS,
    position_pb,
    reservation_pb,
    shortage_pb,
    timestamp,
)
from services.inventory.ledger import (
    Ledger,
    ReserveLine,
    SnapshotCount,
    Work,
    reservation_message,
    to_position,
)
from services.inventory.store.tables import DriftRow, PositionRow, ReservationRow

pb = inventory_service_pb2
OUTCOMES = {
    "RESERVED": pb.RESERVE_OUTCOME_RESERVED,
    "PARTIALLY_RESERVED": pb.RESERVE_OUTCOME_PARTIALLY_RESERVED,
    "REJECTED": pb.RESERVE_OUTCOME_REJECTED,
}
DEFAULT_PAGE = 50
KINDS = {
    inventory_service_pb2.INBOUND_KIND_PURCHASE_ORDER: "PURCHASE_ORDER",
    inventory_service_pb2.INBOUND_KIND_TRANSFER_ORDER: "TRANSFER_ORDER",
    inventory_service_pb2.INBOUND_KIND_RETURN: "RETURN",
}
DRIFT_OUTCOMES = {
    "REPAIRED": inventory_service_pb2.DRIFT_OUTCOME_REPAIRED,
    "ESCALATED_APPLIED": inventory_service_pb2.DRIFT_OUTCOME_ESCALATED_APPLIED,
    "ESCALATED_HELD": inventory_service_pb2.DRIFT_OUTCOME_ESCALATED_HELD,
}
OUTCOME_NAMES = {value: name for name, value in DRIFT_OUTCOMES.items()}
#: Drift row bucket → proto bucket: the stored buckets, and the channel's derived figure.
DRIFT_BUCKETS = BUCKET_OF | {channel.BUCKET: inventory_pb2.INVENTORY_BUCKET_CHANNEL_AVAILABLE}


class InventoryServiceServicer(inventory_service_pb2_grpc.InventoryServiceServicer):
    """`retail.inventory.v1.InventoryService`.

    Args:
        ledger: positions and reservations. Without one (a servicer built bare, as the generic
            contract test does) every RPC that passes validation answers UNIMPLEMENTED.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    # Writes ---------------------------------------------------------------------------------

    async def Reserve(self, request, context):
        _unique([line.line_id for line in request.lines], "lines", "line_id")
        lines = [ReserveLine(x.line_id, x.sku, x.quantity, x.location_id) for x in request.lines]

        async def work(unit: Work) -> pb.ReserveResponse:
            result = await self.ledger.reserve(
                unit,
                order_id=request.order_id,
                channel=request.channel,
                lines=lines,
                allow_partial=request.allow_partial,
                country=request.destination.country_code,
                province=request.destination.province_code,
            )
            return pb.ReserveResponse(
                outcome=OUTCOMES[result.outcome],
                reservations=[reservation_pb(r) for r in result.reservations],
                shortages=[
                    shortage_pb(s.line_id, s.sku, s.requested, s.shortfall, s.code, s.message)
                    for s in result.shortages
                ],
            )

        return await self.ledger.run(
            work, request_id=request.request_id, request=request, response_type=pb.ReserveResponse
        )

    async def Release(self, request, context):
        lines = [(x.line_id, x.quantity, x.location_id) for x in request.lines]
        reason = pb.ReleaseReason.Name(request.reason)

        async def work(unit: Work) -> pb.ReleaseResponse:
            rows = await self.ledger.release(unit, order_id=request.order_id, lines=lines, reason=reason)
            return pb.ReleaseResponse(released=[_reservation(r) for r in rows])

        return await self.ledger.run(
            work, request_id=request.request_id, request=request, response_type=pb.ReleaseResponse
        )

    async def Commit(self, request, context):
        async def work(unit: Work) -> pb.CommitResponse:
            rows = await self.ledger.commit(
                unit,
                order_id=request.order_id,
                release_id=request.release_id,
                location_id=request.location_id,
                line_ids=list(request.line_ids),
            )
            return pb.CommitResponse(committed=[_reservation(r) for r in rows])

        return await self.ledger.run(
            work, request_id=request.request_id, request=request, response_type=pb.CommitResponse
        )

    async def Adjust(self, request, context):
        deltas = [(BUCKETS[change.bucket], change.delta) for change in request.changes]
        occurred_at = request.occurred_at.ToDatetime(tzinfo=UTC) if request.HasField("occurred_at") else None
        reference = f"{request.reference.id}" if request.HasField("reference") else request.request_id

        async def work(unit: Work) -> pb.AdjustResponse:
            try:
                after = await self.ledger.adjust(
                    unit,
                    sku=request.sku,
                    location_id=request.location_id,
                    deltas=deltas,
                    reason=inventory_pb2.AdjustmentReason.Name(request.reason).removeprefix(
                        "ADJUSTMENT_REASON_"
                    ),
                    reference=reference,
                    occurred_at=occurred_at,
                )
            except StockError as error:
                index = next((i for i, (name, _) in enumerate(deltas) if name == error.field), 0)
                raise InvalidArgument(f"changes[{index}].delta", error.message, reason=error.code) from error
            position = position_pb(after, self.ledger.policy, updated_at=datetime.now(UTC))
            unit.emit(
                events_pb2.StockAdjusted(
                    sku=request.sku,
                    location_id=request.location_id,
                    changes=request.changes,
                    reason=request.reason,
                    reference=request.reference if request.HasField("reference") else None,
                    position=position,
                ),
                after.key,
            )
            return pb.AdjustResponse(position=position)

        return await self.ledger.run(
            work, request_id=request.request_id, request=request, response_type=pb.AdjustResponse
        )

    async def ApplySnapshot(self, request, context):
        _unique([line.sku for line in request.lines], "lines", "sku")
        for i, line in enumerate(request.lines):
            if line.damaged + line.quality_control > line.on_hand:
                raise InvalidArgument(f"lines[{i}].on_hand", "must include damaged and quality_control")
        counts = [
            SnapshotCount(x.sku, x.on_hand, x.damaged, x.quality_control, x.allocated) for x in request.lines
        ]
        as_of = request.as_of.ToDatetime(tzinfo=UTC)

        async def work(unit: Work) -> pb.ApplySnapshotResponse:
            result = await self.ledger.apply_snapshot(
                unit,
                request_id=request.request_id,
                location_id=request.location_id,
                as_of=as_of,
                counts=counts,
                complete=request.complete,
                source_system=request.source_system,
            )
            return pb.ApplySnapshotResponse(
                applied=result.applied,
                positions_changed=result.positions_changed,
                drifts=[
                    pb.Drift(
                        sku=sku,
                        bucket=BUCKET_OF[finding.bucket],
                        expected=finding.expected,
                        observed=finding.observed,
                    )
                    for sku, finding in result.drifts
                ],
            )

        return await self.ledger.run(
            work, request_id=request.request_id, request=request, response_type=pb.ApplySnapshotResponse
        )

    async def RecordInbound(self, request, context):
        _unique([line.line_id for line in request.lines], "lines", "line_id")
        for i, line in enumerate(request.lines):
            if line.received > line.quantity:
                raise InvalidArgument(f"lines[{i}].received", "may not exceed quantity")
        lines = [
            inbound.InboundLine(
                x.line_id,
                x.sku,
                x.location_id,
                x.quantity,
                x.received,
                x.expected_at.ToDatetime(tzinfo=UTC) if x.HasField("expected_at") else None,
            )
            for x in request.lines
        ]
        source = common_pb2.SourceSystem.Name(request.source_system).removeprefix("SOURCE_SYSTEM_")

        async def work(unit: Work) -> pb.RecordInboundResponse:
            result = await inbound.record_inbound(
                self.ledger,
                unit,
                kind=KINDS[request.kind],
                source_system=source,
                document_id=request.document.id,
                document_number=request.document.name,
                lines=lines,
                closed=request.closed,
            )
            return pb.RecordInboundResponse(
                lines=[
                    pb.InboundLineState(
                        line_id=row.line_id,
                        sku=row.sku,
                        location_id=row.location_id,
                        quantity=row.quantity,
                        received=result.status.get(row.line_key, (0, 0))[0],
                        outstanding=result.status.get(row.line_key, (0, 0))[1],
                    )
                    for row in result.lines
                ],
                positions=[position_pb(p, self.ledger.policy) for p in result.positions],
            )

        return await self.ledger.run(
            work, request_id=request.request_id, request=request, response_type=pb.RecordInboundResponse
        )

    async def RecordReceipt(self, request, context):
        _unique([line.line_id for line in request.lines], "lines", "line_id")
        for i, line in enumerate(request.lines):
            if line.damaged > line.quantity:
                raise InvalidArgument(f"lines[{i}].damaged", "may not exceed quantity")
        lines = [inbound.ReceivedLine(x.line_id, x.sku, x.quantity, x.damaged) for x in request.lines]
        occurred_at = request.occurred_at.ToDatetime(tzinfo=UTC) if request.HasField("occurred_at") else None
        source = common_pb2.SourceSystem.Name(request.source_system).removeprefix("SOURCE_SYSTEM_")

        async def work(unit: Work) -> pb.RecordReceiptResponse:
            try:
                result = await inbound.record_receipt(
                    self.ledger,
                    unit,
                    kind=KINDS[request.kind],
                    source_system=source,
                    receipt_id=request.receipt.id,
                    document_number=request.document_number,
                    location_id=request.location_id,
                    lines=lines,
                    occurred_at=occurred_at,
                )
            except StockError as error:
                raise InvalidArgument("lines", error.message, reason=error.code) from error
            return pb.RecordReceiptResponse(
                lines_applied=result.lines_applied,
                positions=[position_pb(p, self.ledger.policy) for p in result.positions],
            )

        return await self.ledger.run(
            work, request_id=request.request_id, request=request, response_type=pb.RecordReceiptResponse
        )

    async def ReportChannelCount(self, request, context):
        count = channel.ChannelCount(
            source_system=request.source_system,
            channel=request.channel,
            sku=request.sku,
            location_id=request.location_id,
            observed=request.observed,
            pushed=request.pushed,
            pushed_version=request.pushed_version,
            observed_at=request.observed_at.ToDatetime(tzinfo=UTC),
        )

        async def work(unit: Work) -> pb.ReportChannelCountResponse:
            verdict = await channel.report_channel_count(
                self.ledger, unit, request_id=request.request_id, count=count
            )
            return pb.ReportChannelCountResponse(
                drifted=verdict.outcome is not None,
                outcome=DRIFT_OUTCOMES[verdict.outcome.value] if verdict.outcome else None,
                channel_available=verdict.channel_available,
                position_version=verdict.position_version,
                drift_id=verdict.drift_id,
            )

        return await self.ledger.run(
            work, request_id=request.request_id, request=request, response_type=pb.ReportChannelCountResponse
        )

    # Reads ----------------------------------------------------------------------------------

    async def ListDrifts(self, request, context):
        size = request.page.page_size or DEFAULT_PAGE
        query = select(DriftRow).order_by(DriftRow.detected_at.desc(), DriftRow.drift_id.desc())
        if request.skus:
            query = query.where(DriftRow.sku.in_(list(request.skus)))
        if request.location_ids:
            query = query.where(DriftRow.location_id.in_(list(request.location_ids)))
        if request.outcomes:
            query = query.where(DriftRow.outcome.in_([OUTCOME_NAMES[o] for o in request.outcomes]))
        if request.page.page_token:
            detected_at, drift_id = _decode_drift_token(request.page.page_token)
            query = query.where(
                (DriftRow.detected_at < detected_at)
                | ((DriftRow.detected_at == detected_at) & (DriftRow.drift_id < drift_id))
            )
        async with self.ledger.db.read() as session:
            rows = list((await session.execute(query.limit(size + 1))).scalars())
        response = pb.ListDriftsResponse(drifts=[_drift(r) for r in rows[:size]])
        if len(rows) > size:
            last = rows[size - 1]
            response.page.next_page_token = _encode_token(last.detected_at.isoformat(), last.drift_id)
        return response

    async def GetPosition(self, request, context):
        ledger = self.ledger
        async with ledger.db.read() as session:
            row = await session.get(PositionRow, (request.sku, request.location_id))
            if row is None:
                position = pb.GetPositionResponse().position
                position.sku, position.location_id = request.sku, request.location_id
                response = pb.GetPositionResponse(position=position)
            else:
                response = pb.GetPositionResponse(position=_position(row, ledger))
            if request.include_reservations:
                rows = await session.execute(
                    select(ReservationRow)
                    .where(
                        ReservationRow.sku == request.sku,
                        ReservationRow.location_id == request.location_id,
                        ReservationRow.state.in_(("ACTIVE", "COMMITTED")),
                    )
                    .order_by(ReservationRow.reservation_id)
                )
                response.reservations.extend(_reservation(r) for r in rows.scalars())
        return response

    async def ListPositions(self, request, context):
        ledger = self.ledger
        size = request.page.page_size or DEFAULT_PAGE
        query = select(PositionRow).order_by(PositionRow.sku, PositionRow.location_id)
        if request.skus:
            query = query.where(PositionRow.sku.in_(list(request.skus)))
        if request.location_ids:
            query = query.where(PositionRow.location_id.in_(list(request.location_ids)))
        if request.HasField("changed_since"):
            query = query.where(PositionRow.updated_at >= request.changed_since.ToDatetime(tzinfo=UTC))
        if request.page.page_token:
            sku, location_id = _decode_token(request.page.page_token)
            query = query.where(
                (PositionRow.sku > sku) | ((PositionRow.sku == sku) & (PositionRow.location_id > location_id))
            )
        async with ledger.db.read() as session:
            rows = list((await session.execute(query.limit(size + 1))).scalars())
        response = pb.ListPositionsResponse(positions=[_position(r, ledger) for r in rows[:size]])
        if len(rows) > size:
            last = rows[size - 1]
            response.page.next_page_token = _encode_token(last.sku, last.location_id)
        return response

    async def ListReservations(self, request, context):
        query = select(ReservationRow).where(ReservationRow.order_id == request.order_id)
        if not request.include_closed:
            query = query.where(ReservationRow.state.in_(("ACTIVE", "COMMITTED")))
        async with self.ledger.db.read() as session:
            rows = (await session.execute(query.order_by(ReservationRow.reservation_id))).scalars()
            return pb.ListReservationsResponse(reservations=[_reservation(r) for r in rows])

    async def RouteOrder(self, request, context):
        _unique([line.line_id for line in request.lines], "lines", "line_id")
        lines = [Line(x.line_id, x.sku, x.quantity) for x in request.lines]
        ledger = self.ledger
        async with ledger.db.read() as session:
            decision, known = await ledger._route(
                session,
                request.channel,
                lines,
                request.destination.country_code,
                request.destination.province_code,
            )
        return pb.RouteOrderResponse(
            assignments=[
                pb.LineAssignment(
                    line_id=a.line_id, sku=a.sku, location_id=a.location_id, quantity=a.quantity
                )
                for a in decision.assignments
            ],
            unroutable=[_unroutable(line, missing, known) for line, missing in decision.unroutable],
            rule_set_version=ledger.policy.version,
        )

    async def CheckAvailability(self, request, context):
        _unique([item.sku for item in request.items], "items", "sku")
        ledger = self.ledger
        policy = ledger.policy
        skus = [item.sku for item in request.items]
        query = select(PositionRow).where(PositionRow.sku.in_(skus))
        if request.location_ids:
            query = query.where(PositionRow.location_id.in_(list(request.location_ids)))
        async with ledger.db.read() as session:
            rows = list((await session.execute(query)).scalars())
            decision, _ = await ledger._route(
                session,
                request.channel,
                [Line(item.sku, item.sku, item.quantity) for item in request.items],
                request.destination.country_code,
                request.destination.province_code,
            )
        locations = {row.location_id for row in rows}
        order = policy.location_order(
            locations, request.destination.country_code, request.destination.province_code
        )
        response = pb.CheckAvailabilityResponse(as_of=timestamp(datetime.now(UTC)))
        per_location: dict[str, int] = {}
        for item in request.items:
            rule = policy.rule(request.channel, item.sku)
            mine = {r.location_id: r for r in rows if r.sku == item.sku and rule.ships_from(r.location_id)}
            entry = pb.ItemAvailability(sku=item.sku, requested=item.quantity)
            for location_id in order:
                row = mine.get(location_id)
                if row is None:
                    continue
                available = rule.available(to_position(row))
                entry.locations.append(
                    pb.LocationAvailability(
                        location_id=location_id, available=available, incoming=row.incoming
                    )
                )
                entry.available += available
                if available >= item.quantity:
                    per_location[location_id] = per_location.get(location_id, 0) + 1
            entry.fulfillable = entry.available >= item.quantity
            response.items.append(entry)
        response.fulfillable = all(item.fulfillable for item in response.items)
        response.single_location = any(count == len(request.items) for count in per_location.values())
        response.suggested_assignments.extend(
            pb.LineAssignment(line_id=a.line_id, sku=a.sku, location_id=a.location_id, quantity=a.quantity)
            for a in decision.assignments
        )
        return response


def _unique(values: list[str], repeated: str, name: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise InvalidArgument(f"{repeated}[{i}].{name}", f"{value!r} appears more than once")
        seen.add(value)


def _position(row: PositionRow, ledger: Ledger) -> inventory_pb2.InventoryPosition:
    return position_pb(
        to_position(row), ledger.policy, updated_at=row.updated_at, last_snapshot_at=row.last_snapshot_at
    )


def _reservation(row: ReservationRow) -> inventory_pb2.Reservation:
    return reservation_message(row)


def _unroutable(line: Line, missing: int, known: set[str]) -> inventory_pb2.Shortage:
    code = "OUT_OF_STOCK" if line.sku in known else "UNKNOWN_SKU"
    return shortage_pb(
        line.line_id, line.sku, line.quantity, missing, code, f"{missing} of {line.quantity} not available"
    )


def _encode_token(sku: str, location_id: str) -> str:
    return base64.urlsafe_b64encode(f"{sku}@{location_id}".encode()).decode()


def _decode_token(token: str) -> tuple[str, str]:
    try:
        sku, location_id = base64.urlsafe_b64decode(token.encode()).decode().split("@", 1)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidArgument("page.page_token", "not a token this service issued") from error
    return sku, location_id


def _drift(row: DriftRow) -> pb.DriftRecord:
    return pb.DriftRecord(
        drift_id=row.drift_id,
        sku=row.sku,
        location_id=row.location_id,
        bucket=DRIFT_BUCKETS[row.bucket],
        compared_system=common_pb2.SourceSystem.Value(f"SOURCE_SYSTEM_{row.source_system}"),
        snapshot_id=row.snapshot_id,
        as_of=timestamp(row.as_of),
        mesh=row.mesh,
        in_flight=row.in_flight,
        expected=row.expected,
        observed=row.observed,
        reserved=row.reserved,
        committed=row.committed,
        allocated=row.allocated,
        bound=row.bound,
        policy_version=row.policy_version,
        outcome=DRIFT_OUTCOMES.get(row.outcome, pb.DRIFT_OUTCOME_UNSPECIFIED),
        result=row.result,
        evidence=row.evidence,
        event_id=row.event_id,
        detected_at=timestamp(row.detected_at),
    )


def _decode_drift_token(token: str) -> tuple[datetime, str]:
    stamp, drift_id = _decode_token(token)
    try:
        return datetime.fromisoformat(stamp), drift_id
    except ValueError as error:
        raise InvalidArgument("page.page_token", "not a token this service issued") from error
