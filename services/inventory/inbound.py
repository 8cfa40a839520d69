"""Inbound signals (I5): ERP inbound documents → incoming, warehouse receipts → on_hand.

Each runs inside one ledger transaction (`Ledger.run`), with the same row locks as every other
change: positions first, in (sku, location) order, then the inbound and receipt rows of those
positions, so a receipt and a re-read purchase order for the same SKU and location serialize.

- `record_inbound`: the ERP's open lines of a document, absolute. Each line remembers what it adds
  to its position's incoming (`counted`); a change moves incoming by the difference only.
- `record_receipt`: goods received at a location, once per (receipt, line). on_hand (and damaged)
  go up as a physical movement at the receipt's time; a receipt against a document number lowers
  that document's outstanding quantity (domain/inbound.py), so the ERP posting the same receipt
  later lowers nothing twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from retail.common.v1 import common_pb2
from retail.inventory.v1 import events_pb2, inventory_pb2
from services.inventory.domain import position as stock
from services.inventory.domain.inbound import ExpectedLine, outstanding
from services.inventory.domain.position import Position
from services.inventory.domain.reconciliation import latest_moment
from services.inventory.events.mapping import position_pb
from services.inventory.ledger import Ledger, Work, now
from services.inventory.store.tables import InboundLineRow, ReceiptLineRow

#: Kinds whose receipts lower a document's incoming.
DOCUMENT_KINDS = ("PURCHASE_ORDER", "TRANSFER_ORDER")


@dataclass(frozen=True)
class InboundLine:
    """A document line as the ERP has it now."""

    line_id: str
    sku: str
    location_id: str
    quantity: int
    received: int = 0
    expected_at: datetime | None = None


@dataclass(frozen=True)
class ReceivedLine:
    """A receipt line: units received in any condition, of which damaged."""

    line_id: str
    sku: str
    quantity: int
    damaged: int = 0


@dataclass
class InboundResult:
    """The document's lines after the change and the positions whose incoming moved."""

    lines: list[InboundLineRow]
    status: dict[str, tuple[int, int]]
    positions: list[Position]


@dataclass
class ReceiptResult:
    """Lines applied now (0 for a repeat) and the positions after the receipt."""

    lines_applied: int
    positions: list[Position]


def line_key(kind: str, document_id: str, line_id: str) -> str:
    """The stable key of an inbound line."""
    return f"{kind}:{document_id}:{line_id}"[:200]


async def record_inbound(
    ledger: Ledger,
    unit: Work,
    *,
    kind: str,
    source_system: str,
    document_id: str,
    document_number: str,
    lines: list[InboundLine],
    closed: bool,
) -> InboundResult:
    """Make the document's lines what the ERP says now; move incoming by what changed."""
    session = unit.session
    query = select(InboundLineRow).where(
        InboundLineRow.kind == kind, InboundLineRow.document_id == document_id
    )
    known = {row.line_key: row for row in (await session.execute(query)).scalars()}
    wanted = {line_key(kind, document_id, line.line_id): line for line in lines}
    keys = {(row.sku, row.location_id) for row in known.values()}
    keys |= {(line.sku, line.location_id) for line in wanted.values()}
    await unit.lock(keys, create=True)
    # re-read under the position locks: a concurrent change of the same document has committed
    known = {
        row.line_key: row
        for row in (await session.execute(query.execution_options(populate_existing=True))).scalars()
    }
    stamp = now()
    groups: set[tuple[str, str, str]] = set()
    for key, row in known.items():
        groups.add((row.document_number, row.sku, row.location_id))
        if key not in wanted:
            row.closed, row.updated_at = True, stamp  # gone from the document: nothing more comes
    for key, line in wanted.items():
        row = known.get(key)
        if row is None:
            row = InboundLineRow(
                line_key=key, kind=kind, document_id=document_id, line_id=line.line_id, counted=0
            )
            session.add(row)
            known[key] = row
        row.source_system = source_system
        row.document_number = document_number
        row.sku, row.location_id = line.sku, line.location_id
        row.quantity, row.received = line.quantity, line.received
        row.expected_at = line.expected_at
        row.closed = closed
        row.updated_at = stamp
        groups.add((document_number, line.sku, line.location_id))
    await session.flush()
    status, moved = await _recount(unit, kind, groups)
    changed = _apply_incoming(unit, moved, kind, document_id, document_number, source_system, ledger)
    rows = sorted((r for r in known.values()), key=lambda r: r.line_key)
    return InboundResult(rows, {k: v for k, v in status.items() if k in known}, changed)


async def record_receipt(
    ledger: Ledger,
    unit: Work,
    *,
    kind: str,
    source_system: str,
    receipt_id: str,
    document_number: str,
    location_id: str,
    lines: list[ReceivedLine],
    occurred_at: datetime | None,
) -> ReceiptResult:
    """Apply each receipt line once: on_hand (and damaged) up, the document's incoming down."""
    session = unit.session
    await unit.lock({(line.sku, location_id) for line in lines}, create=True)
    moment = latest_moment(occurred_at) if occurred_at else now()
    applied = 0
    groups: set[tuple[str, str, str]] = set()
    touched: dict[tuple[str, str], Position] = {}
    for line in lines:
        inserted = await session.execute(
            ledger.insert_ignore(
                ReceiptLineRow,
                [
                    {
                        "receipt_id": receipt_id,
                        "line_id": line.line_id,
                        "kind": kind,
                        "source_system": source_system,
                        "document_number": document_number,
                        "sku": line.sku,
                        "location_id": location_id,
                        "quantity": line.quantity,
                        "damaged": line.damaged,
                        "occurred_at": moment,
                        "recorded_at": now(),
                    }
                ],
            )
        )
        if not inserted.rowcount:
            continue  # applied before
        applied += 1
        key = (line.sku, location_id)
        start = unit.position(*key)
        touched.setdefault(key, start)
        counted_at = unit.rows[key].last_snapshot_at
        if counted_at is not None and moment <= counted_at:
            pass  # the warehouse counted after receiving: the units are in on_hand already
        else:
            unit.put(stock.adjust(start, {"on_hand": line.quantity, "damaged": line.damaged}))
        reason = _reason(kind, line)
        await ledger.record_movement(
            unit,
            start,
            kind=reason,
            reference=f"{receipt_id}/{line.line_id}",
            reported=line.quantity,
            occurred_at=moment,
        )
        if kind in DOCUMENT_KINDS and document_number:
            groups.add((document_number, line.sku, location_id))
    await session.flush()
    if groups:
        _, moved = await _recount(unit, kind, groups)
        _apply_incoming(unit, moved, kind, "", document_number, source_system, ledger, emit=False)
    for key, start in sorted(touched.items()):
        after = unit.position(*key)
        changes = [
            inventory_pb2.BucketDelta(bucket=bucket, delta=getattr(after, name) - getattr(start, name))
            for bucket, name in (
                (inventory_pb2.INVENTORY_BUCKET_ON_HAND, "on_hand"),
                (inventory_pb2.INVENTORY_BUCKET_DAMAGED, "damaged"),
                (inventory_pb2.INVENTORY_BUCKET_INCOMING, "incoming"),
            )
            if getattr(after, name) != getattr(start, name)
        ]
        if changes:
            unit.emit(
                events_pb2.StockAdjusted(
                    sku=after.sku,
                    location_id=after.location_id,
                    changes=changes,
                    reason=inventory_pb2.AdjustmentReason.Value(f"ADJUSTMENT_REASON_{_event_reason(kind)}"),
                    reference=common_pb2.ExternalRef(
                        system=common_pb2.SourceSystem.Value(f"SOURCE_SYSTEM_{source_system}"),
                        id=receipt_id,
                        name=document_number,
                    ),
                    position=position_pb(after, ledger.policy, updated_at=now()),
                ),
                after.key,
            )
    positions = [unit.position(sku, location_id) for sku in sorted({line.sku for line in lines})]
    return ReceiptResult(applied, [p for p in positions if p is not None])


async def _recount(
    unit: Work, kind: str, groups: set[tuple[str, str, str]]
) -> tuple[dict[str, tuple[int, int]], dict[tuple[str, str], int]]:
    """Recompute what each line of the groups counts; returns per line (received, outstanding) and
    per position the change of incoming."""
    session = unit.session
    status: dict[str, tuple[int, int]] = {}
    moved: dict[tuple[str, str], int] = defaultdict(int)
    for number, sku, location_id in sorted(groups):
        rows = list(
            (
                await session.execute(
                    select(InboundLineRow).where(
                        InboundLineRow.kind == kind,
                        InboundLineRow.document_number == number,
                        InboundLineRow.sku == sku,
                        InboundLineRow.location_id == location_id,
                    )
                )
            ).scalars()
        )
        received = (
            await session.execute(
                select(func.coalesce(func.sum(ReceiptLineRow.quantity), 0)).where(
                    ReceiptLineRow.kind == kind,
                    ReceiptLineRow.document_number == number,
                    ReceiptLineRow.sku == sku,
                    ReceiptLineRow.location_id == location_id,
                )
            )
        ).scalar_one()
        if number == "":
            received = 0  # receipts quote a number; a document without one matches none
        counts = outstanding(
            [ExpectedLine(r.line_key, r.quantity, r.received, r.closed) for r in rows], int(received)
        )
        for row in rows:
            line = counts[row.line_key]
            status[row.line_key] = (line.received, line.outstanding)
            if line.outstanding != row.counted:
                moved[(sku, location_id)] += line.outstanding - row.counted
                row.counted = line.outstanding
    return status, dict(moved)


def _apply_incoming(
    unit: Work,
    moved: dict[tuple[str, str], int],
    kind: str,
    document_id: str,
    document_number: str,
    source_system: str,
    ledger: Ledger,
    *,
    emit: bool = True,
) -> list[Position]:
    """Move incoming of each position by its change (never below zero); StockAdjusted
    EXPECTED_INBOUND per position when `emit` (a receipt publishes its own)."""
    changed = []
    for key, delta in sorted(moved.items()):
        if delta == 0:
            continue
        before = unit.position(*key)
        delta = max(delta, -before.incoming)  # an operator may have lowered incoming by hand
        if delta == 0:
            continue
        after = stock.adjust(before, {"incoming": delta})
        unit.put(after)
        changed.append(after)
        if emit:
            unit.emit(
                events_pb2.StockAdjusted(
                    sku=after.sku,
                    location_id=after.location_id,
                    changes=[
                        inventory_pb2.BucketDelta(bucket=inventory_pb2.INVENTORY_BUCKET_INCOMING, delta=delta)
                    ],
                    reason=inventory_pb2.ADJUSTMENT_REASON_EXPECTED_INBOUND,
                    reference=common_pb2.ExternalRef(
                        system=common_pb2.SourceSystem.Value(f"SOURCE_SYSTEM_{source_system}"),
                        id=document_id or document_number,
                        name=document_number,
                    ),
                    position=position_pb(after, ledger.policy, updated_at=now()),
                ),
                after.key,
            )
    return changed


def _reason(kind: str, line: ReceivedLine) -> str:
    """The movement kind of a receipt line (PHYSICAL_REASONS of the ledger)."""
    if kind == "RETURN":
        return "RETURN_DAMAGED" if line.damaged >= line.quantity else "RETURN_RESTOCK"
    return "RECEIPT"


def _event_reason(kind: str) -> str:
    return "RETURN_RESTOCK" if kind == "RETURN" else "RECEIPT"
