"""The inventory ledger: every change to positions and reservations, one unit of work each.

A unit is all-or-nothing: it commits in a transaction it shares with the changes arriving at the
same moment (`libs.store.group`), or not at all; it is committed before its caller gets the answer.

Concurrency (docs/decisions/0009-inventory-reservations.md): a change locks the position rows it
touches (`SELECT ... FOR UPDATE`, in (sku, location) order) and reservation rows of the order,
computes the new state with the pure rules of `domain/`, writes it and stages its events in the
outbox, all in one transaction. PostgreSQL serializes writers per row, so any number of replicas
share one database without overselling; SQLite has one writer per file anyway. Deadlocks and
duplicate-key races are retried from the start on fresh state.

Snapshots are reconciled with positions (I5, docs/decisions/0010-inventory-drift-bounds.md):
physical on_hand movements are logged with the time they happened, so a count is compared with
what the mesh believed at its as_of; drifts are repaired within the policy's bounds, escalated
beyond them, recorded with evidence and published as InventoryDriftDetected.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import Message
from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.bus.envelope import new_event_id
from libs.bus.outbox import Outbox
from libs.rpc import InvalidArgument
from libs.store import Compiled, Database
from retail.common.v1 import common_pb2
from retail.inventory.v1 import events_pb2, inventory_pb2
from services.inventory.domain import position as stock
from services.inventory.domain import reservation as claims
from services.inventory.domain.policy import Policy
from services.inventory.domain.position import Position, StockError
from services.inventory.domain.reconciliation import Count, Finding, Outcome, latest_moment, reconcile
from services.inventory.domain.reservation import Reservation, ReservationState
from services.inventory.domain.routing import Line, route
from services.inventory.events.mapping import (
    BUCKET_OF,
    availability_changed,
    channels_pb,
    position_pb,
    reservation_pb,
    shortage_pb,
    timestamp,
)
from services.inventory.store.tables import (
    DriftRow,
    MovementRow,
    PositionRow,
    RequestRow,
    ReservationRow,
    ShipmentLineRow,
    SnapshotRow,
)

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Message)
MAX_ATTEMPTS = 10

#: Adjust reasons whose on_hand changes happened in the warehouse at a time (`occurred_at`): a
#: count taken before them must not undo them, so they are logged as movements (decision 0010).
#: CYCLE_COUNT is the 3PL's own adjustment (EDI 947 lost, found, recount; decision 0024).
#: Corrections are not: they fix the mesh's books, not the warehouse.
PHYSICAL_REASONS = frozenset(
    {"RECEIPT", "RETURN_RESTOCK", "RETURN_DAMAGED", "TRANSFER", "DAMAGE", "QUALITY_CONTROL", "CYCLE_COUNT"}
)


# Core statements on the tables, built once (docs/decisions/0029-group-commit.md) and run as
# compiled statements (libs.store.Compiled, decision 0032): an ORM load, `session.add` or flush
# costs several times the statement itself, and every order passes here.
_POSITION = PositionRow.__table__
_RESERVATION = ReservationRow.__table__
_REQUEST = RequestRow.__table__
_POSITION_KEY = (_POSITION.c.sku == bindparam("b_sku"), _POSITION.c.location_id == bindparam("b_location"))
_LOCK_POSITION = Compiled(select(_POSITION).where(*_POSITION_KEY).with_for_update())
_POSITIONS_OF_SKUS = select(_POSITION).where(_POSITION.c.sku.in_(bindparam("b_skus", expanding=True)))
#: The columns `Work.put` changes.
_WRITE_POSITION = Compiled(
    update(_POSITION)
    .where(*_POSITION_KEY)
    .values(
        on_hand=bindparam("b_on_hand"),
        reserved=bindparam("b_reserved"),
        committed=bindparam("b_committed"),
        incoming=bindparam("b_incoming"),
        damaged=bindparam("b_damaged"),
        quality_control=bindparam("b_quality_control"),
        safety_stock=bindparam("b_safety_stock"),
        version=bindparam("b_version"),
        updated_at=bindparam("b_now", type_=_POSITION.c.updated_at.type),
    )
)
_SET_COUNTED = Compiled(
    update(_POSITION)
    .where(*_POSITION_KEY)
    .values(last_snapshot_at=bindparam("b_counted", type_=_POSITION.c.last_snapshot_at.type))
)
_ORDER_RESERVATIONS = (
    select(_RESERVATION)
    .where(_RESERVATION.c.order_id == bindparam("b_order"))
    .order_by(_RESERVATION.c.reservation_id)
)
_LOCK_ORDER_RESERVATIONS = Compiled(_ORDER_RESERVATIONS.with_for_update())
_ACTIVE_RESERVATIONS = Compiled(
    select(_RESERVATION)
    .where(_RESERVATION.c.order_id == bindparam("b_order"), _RESERVATION.c.state == "ACTIVE")
    .order_by(_RESERVATION.c.reservation_id)
)
_INSERT_RESERVATION = Compiled(insert(_RESERVATION))
_RESERVATION_KEY = _RESERVATION.c.reservation_id == bindparam("b_id")
#: The columns `write_reservation` changes.
_RESERVATION_UPDATE = (
    update(_RESERVATION)
    .where(_RESERVATION_KEY)
    .values(
        quantity=bindparam("b_quantity"),
        shipped=bindparam("b_shipped"),
        state=bindparam("b_state"),
        release_id=bindparam("b_release_id"),
        updated_at=bindparam("b_now", type_=_RESERVATION.c.updated_at.type),
    )
)
_WRITE_RESERVATION = Compiled(_RESERVATION_UPDATE)
#: A released line reserved again: its row becomes active, for the request's channel.
_REACTIVATE_RESERVATION = Compiled(_RESERVATION_UPDATE.values(channel=bindparam("b_channel")))
#: The rest of a line held in part: its row grows.
_GROW_RESERVATION = Compiled(
    update(_RESERVATION)
    .where(_RESERVATION_KEY)
    .values(
        quantity=bindparam("b_quantity"),
        updated_at=bindparam("b_now", type_=_RESERVATION.c.updated_at.type),
    )
)
_LOAD_REQUEST = Compiled(
    select(_REQUEST.c.method, _REQUEST.c.fingerprint, _REQUEST.c.response).where(
        _REQUEST.c.request_id == bindparam("b_id")
    )
)
_INSERT_REQUEST = Compiled(insert(_REQUEST))
_INSERT_MOVEMENT = Compiled(insert(MovementRow.__table__))
#: INSERT ... ON CONFLICT DO NOTHING per dialect: missing positions, consumed shipment lines.
_CREATE_POSITION = {
    name: Compiled(
        dialect.insert(_POSITION)
        .values(
            sku=bindparam("b_sku"),
            location_id=bindparam("b_location"),
            version=0,
            updated_at=bindparam("b_now", type_=_POSITION.c.updated_at.type),
        )
        .on_conflict_do_nothing()
    )
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_INSERT_SHIPMENT_LINE = {
    name: Compiled(dialect.insert(ShipmentLineRow.__table__).on_conflict_do_nothing())
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReserveLine:
    """A line to reserve; an empty location lets routing choose."""

    line_id: str
    sku: str
    quantity: int
    location_id: str = ""


@dataclass(frozen=True)
class Shortage:
    """What could not be reserved, and why."""

    line_id: str
    sku: str
    requested: int
    shortfall: int
    code: str
    message: str


@dataclass
class ReserveResult:
    """What Reserve did: `outcome` is RESERVED, PARTIALLY_RESERVED or REJECTED."""

    outcome: str
    reservations: list[Reservation]
    shortages: list[Shortage]


@dataclass(frozen=True)
class SnapshotCount:
    """Warehouse-reported quantities of one SKU; `allocated` (the warehouse's committed) is
    evidence only."""

    sku: str
    on_hand: int
    damaged: int = 0
    quality_control: int = 0
    allocated: int = 0


@dataclass
class SnapshotResult:
    """What ApplySnapshot did; drifts are (sku, finding) in SKU then bucket order."""

    applied: bool
    positions_changed: int = 0
    drifts: list[tuple[str, Finding]] = field(default_factory=list)


class _Retry(Exception):
    """Rerun the transaction on fresh state."""


class Work:
    """One transaction's view: locked positions and the events the change causes.

    `rows` holds each locked position row as read (`last_snapshot_at`); the new states `put`
    records are written by `finish`, one UPDATE per changed position.
    """

    def __init__(self, session: AsyncSession, ledger: Ledger) -> None:
        self.session = session
        self.ledger = ledger
        self.rows: dict[tuple[str, str], Row] = {}
        self.before: dict[tuple[str, str], Position] = {}
        self.after: dict[tuple[str, str], Position] = {}
        self.events: list[tuple[Message, str]] = []
        self._changed: dict[tuple[str, str], datetime] = {}

    async def lock(self, keys: Iterable[tuple[str, str]], *, create: bool = False) -> None:
        """Lock positions in (sku, location) order; `create` makes missing ones first."""
        wanted = sorted(set(keys) - set(self.rows))
        if not wanted:
            return
        session = self.session
        if create:
            stamp = now()
            rows = [{"b_sku": s, "b_location": loc, "b_now": stamp} for s, loc in wanted]
            await session.execute(_CREATE_POSITION[self.ledger.dialect], rows[0] if len(rows) == 1 else rows)
        for sku, location_id in wanted:
            result = await session.execute(_LOCK_POSITION, {"b_sku": sku, "b_location": location_id})
            row = result.one_or_none()
            if row is not None:
                self.rows[(sku, location_id)] = row
                self.before[(sku, location_id)] = self.after[(sku, location_id)] = to_position(row)

    def position(self, sku: str, location_id: str) -> Position | None:
        """The current (locked) position, or None if it does not exist."""
        return self.after.get((sku, location_id))

    def put(self, position: Position) -> None:
        """Record the new state of a locked position (written by `finish`)."""
        key = (position.sku, position.location_id)
        if key not in self.rows:
            raise KeyError(key)
        self.after[key] = position
        self._changed[key] = now()

    async def counted(self, key: tuple[str, str], at: datetime) -> None:
        """Set when the locked position's on_hand was last counted."""
        params = {"b_sku": key[0], "b_location": key[1]}
        await self.session.execute(_SET_COUNTED, {**params, "b_counted": at})
        self.rows[key] = (await self.session.execute(_LOCK_POSITION, params)).one()

    async def write(self) -> None:
        """Write the positions changed since the last write, in (sku, location) order."""
        if not self._changed:
            return
        params = []
        for key, stamp in sorted(self._changed.items()):
            p = self.after[key]
            params.append(
                {
                    "b_sku": p.sku,
                    "b_location": p.location_id,
                    "b_on_hand": p.on_hand,
                    "b_reserved": p.reserved,
                    "b_committed": p.committed,
                    "b_incoming": p.incoming,
                    "b_damaged": p.damaged,
                    "b_quality_control": p.quality_control,
                    "b_safety_stock": p.safety_stock,
                    "b_version": p.version,
                    "b_now": stamp,
                }
            )
        self._changed.clear()
        await self.session.execute(_WRITE_POSITION, params[0] if len(params) == 1 else params)

    def emit(self, event: Message, key: str) -> None:
        """Stage an event for the outbox at the end of the transaction."""
        self.events.append((event, key))

    async def finish(
        self,
        correlation_id: str | None,
        causation_id: str | None,
        emit: Callable[..., Awaitable[str]] | None = None,
    ) -> None:
        """Write the changed positions; stage AvailabilityChanged for them and every event in the
        outbox."""
        await self.write()
        policy = self.ledger.policy
        for key, after in sorted(self.after.items()):
            before = self.before[key]
            if after.version == before.version:
                continue
            if before.available_to_sell != after.available_to_sell or channels_pb(
                before, policy
            ) != channels_pb(after, policy):
                self.emit(availability_changed(before, after, policy), after.key)
        for event, key in self.events:
            if emit is not None:
                await emit(event, key=key)
                continue
            await self.ledger.outbox.add(
                self.session, event, key=key, correlation_id=correlation_id, causation_id=causation_id
            )


def to_position(row: PositionRow | Row) -> Position:
    """The domain position of a row."""
    return Position(
        sku=row.sku,
        location_id=row.location_id,
        on_hand=row.on_hand,
        reserved=row.reserved,
        committed=row.committed,
        incoming=row.incoming,
        damaged=row.damaged,
        quality_control=row.quality_control,
        safety_stock=row.safety_stock,
        version=row.version,
    )


@dataclass(slots=True)
class ReservationRecord:
    """A reservation row as a change read it and left it (the columns of `ReservationRow`)."""

    reservation_id: str
    order_id: str
    line_id: str
    sku: str
    location_id: str
    quantity: int
    shipped: int
    state: str
    channel: str
    release_id: str
    created_at: datetime
    updated_at: datetime


def to_reservation(row: ReservationRow | ReservationRecord | Row) -> Reservation:
    """The domain reservation of a row."""
    return Reservation(
        order_id=row.order_id,
        line_id=row.line_id,
        sku=row.sku,
        location_id=row.location_id,
        quantity=row.quantity,
        channel=row.channel,
        state=ReservationState(row.state),
        shipped=row.shipped,
        release_id=row.release_id,
    )


def write_reservation(row: ReservationRecord, reservation: Reservation) -> None:
    """Copy a reservation's mutable fields to its record (`_write_reservations` stores them)."""
    row.quantity = reservation.quantity
    row.shipped = reservation.shipped
    row.state = reservation.state.value
    row.release_id = reservation.release_id
    row.updated_at = now()


async def _write_reservations(session: AsyncSession, rows: Iterable[ReservationRecord]) -> None:
    """Store the fields `write_reservation` changes, in reservation_id order."""
    params = [
        {
            "b_id": row.reservation_id,
            "b_quantity": row.quantity,
            "b_shipped": row.shipped,
            "b_state": row.state,
            "b_release_id": row.release_id,
            "b_now": row.updated_at,
        }
        for row in sorted(rows, key=lambda r: r.reservation_id)
    ]
    if params:
        await session.execute(_WRITE_RESERVATION, params[0] if len(params) == 1 else params)


def reservation_message(row: ReservationRow | ReservationRecord):
    """The canonical message of a reservation row."""
    return reservation_pb(to_reservation(row), created_at=row.created_at, updated_at=row.updated_at)


class Ledger:
    """Positions and reservations of the inventory service.

    Args:
        db: the service database.
        outbox: the bus outbox events are staged in.
        policy: channel allocation and routing policy.
    """

    def __init__(self, db: Database, outbox: Outbox, policy: Policy) -> None:
        self.db = db
        self.outbox = outbox
        self.policy = policy
        self.dialect = "postgresql" if db.dialect == "postgresql" else "sqlite"

    def insert_ignore(self, table: type, rows: list[dict]):
        """INSERT ... ON CONFLICT DO NOTHING for the database's dialect."""
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        return dialect.insert(table).values(rows).on_conflict_do_nothing()

    async def run(
        self,
        work: Callable[[Work], Awaitable[R]],
        *,
        request_id: str | None = None,
        request: Message | None = None,
        response_type: type[R] | None = None,
        session: AsyncSession | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        emit: Callable[..., Awaitable[str]] | None = None,
    ) -> R:
        """Run `work` in one transaction, replaying the stored response of a repeated request_id.

        With `session` (an event handler's transaction) the work joins it and is not retried here:
        the bus redelivers the event instead; `emit` (the handler's `ctx.emit`) stages its events.
        """
        if session is not None:
            unit = Work(session, self)
            result = await work(unit)
            await unit.finish(correlation_id, causation_id, emit)
            return result

        async def attempt(tx: AsyncSession) -> R:
            if request_id is not None:
                stored = await self._stored(tx, request_id, request)
                if stored is not None:
                    return response_type.FromString(stored)  # type: ignore[union-attr]
            unit = Work(tx, self)
            result = await work(unit)
            await unit.finish(correlation_id, causation_id)
            if request_id is not None:
                await tx.execute(
                    _INSERT_REQUEST,
                    {
                        "request_id": request_id,
                        "method": type(request).__name__,
                        "fingerprint": _fingerprint(request),
                        "response": result.SerializeToString(),
                        "created_at": now(),
                    },
                )
            return result

        for attempt_no in range(1, MAX_ATTEMPTS + 1):
            try:
                # Requests arriving together share a transaction (libs.store.group).
                return await self.db.group.run(attempt)
            except (IntegrityError, _Retry) as error:
                log.info("inventory transaction retried (%s), attempt %d", type(error).__name__, attempt_no)
            except DBAPIError as error:
                if not _transient(error):
                    raise
                log.info("inventory transaction retried (%s), attempt %d", error.orig, attempt_no)
            await asyncio.sleep(0.005 * attempt_no)
        raise RuntimeError(f"inventory transaction kept conflicting after {MAX_ATTEMPTS} attempts")

    async def _stored(self, session: AsyncSession, request_id: str, request: Message | None) -> bytes | None:
        row = (await session.execute(_LOAD_REQUEST, {"b_id": request_id})).one_or_none()
        if row is None:
            return None
        if row.method != type(request).__name__ or row.fingerprint != _fingerprint(request):
            raise InvalidArgument("request_id", "already used for a different request")
        return row.response

    # Reservations ---------------------------------------------------------------------------

    async def reserve(
        self,
        unit: Work,
        *,
        order_id: str,
        channel: str,
        lines: list[ReserveLine],
        allow_partial: bool,
        country: str = "",
        province: str = "",
    ) -> ReserveResult:
        """Reserve every line (or, with allow_partial, what fits); idempotent per order line."""
        session = unit.session
        # Locked before the positions, as release and commit do: a second replica reserving the
        # same order waits here and then sees what this one held, instead of growing a partly held
        # line from the same starting quantity (the position would count the rest twice).
        rows = (await session.execute(_LOCK_ORDER_RESERVATIONS, {"b_order": order_id})).all()
        stored: dict[str, Row] = {}
        held: dict[str, int] = {}  # per line: units reserved (or committed) at any location
        for row in rows:
            stored[row.reservation_id] = row
            if row.state != ReservationState.RELEASED.value:
                held[row.line_id] = held.get(row.line_id, 0) + row.quantity
        # A line held in full asks for nothing; a line held in part (a backorder) asks for the rest.
        todo = [
            replace(line, quantity=line.quantity - held.get(line.line_id, 0))
            for line in lines
            if held.get(line.line_id, 0) < line.quantity
        ]
        shortages: list[Shortage] = []
        targets: list[tuple[ReserveLine, str, int]] = []
        routed = [line for line in todo if not line.location_id]
        for line in todo:
            if line.location_id:
                rule = self.policy.rule(channel, line.sku)
                if not rule.ships_from(line.location_id):
                    shortages.append(
                        Shortage(
                            line.line_id,
                            line.sku,
                            line.quantity,
                            line.quantity,
                            "LOCATION_NOT_ALLOWED",
                            f"channel {channel} does not ship from {line.location_id}",
                        )
                    )
                else:
                    targets.append((line, line.location_id, line.quantity))
        if routed:
            decision, known = await self._route(
                session, channel, [Line(x.line_id, x.sku, x.quantity) for x in routed], country, province
            )
            by_id = {line.line_id: line for line in routed}
            for assignment in decision.assignments:
                targets.append((by_id[assignment.line_id], assignment.location_id, assignment.quantity))
            for line, missing in decision.unroutable:
                code = "OUT_OF_STOCK" if line.sku in known else "UNKNOWN_SKU"
                shortages.append(
                    Shortage(
                        line.line_id,
                        line.sku,
                        line.quantity,
                        missing,
                        code,
                        f"{missing} of {line.quantity} {line.sku} not available",
                    )
                )
        short_lines = {s.line_id for s in shortages}
        if not allow_partial and short_lines:
            targets = []
        await unit.lock((line.sku, location) for line, location, _ in targets)
        created: list[Reservation] = []
        claimed: dict[tuple[str, str], Position] = {}
        for line, location, quantity in sorted(targets, key=lambda t: (t[0].sku, t[1], t[0].line_id)):
            current = claimed.get((line.sku, location)) or unit.position(line.sku, location)
            rule = self.policy.rule(channel, line.sku)
            try:
                if current is None:
                    raise StockError("OUT_OF_STOCK", "sku", f"no stock of {line.sku} at {location}")
                after = stock.reserve(current, quantity, rule.available(current))
            except StockError as error:
                shortages.append(
                    Shortage(line.line_id, line.sku, line.quantity, quantity, error.code, error.message)
                )
                short_lines.add(line.line_id)
                continue
            claimed[(line.sku, location)] = after
            created.append(Reservation(order_id, line.line_id, line.sku, location, quantity, channel))
        if short_lines and not allow_partial:
            created, claimed = [], {}  # all or nothing: nothing of this request is kept
        for after in claimed.values():
            unit.put(after)
        stamp = now()
        reported: list[Reservation] = []
        inserts: list[dict] = []
        for reservation in created:
            known = stored.get(reservation.reservation_id)
            if known is not None and known.state == ReservationState.RELEASED.value:
                # Replayed after a rejection or cancellation: the same line's row becomes active again.
                await session.execute(
                    _REACTIVATE_RESERVATION,
                    {
                        "b_id": known.reservation_id,
                        "b_quantity": reservation.quantity,
                        "b_shipped": 0,
                        "b_state": reservation.state.value,
                        "b_channel": channel,
                        "b_release_id": "",
                        "b_now": stamp,
                    },
                )
                reported.append(reservation)
                continue
            if known is not None:
                # The rest of a line held in part at this location: the row grows.
                quantity = known.quantity + reservation.quantity
                await session.execute(
                    _GROW_RESERVATION, {"b_id": known.reservation_id, "b_quantity": quantity, "b_now": stamp}
                )
                reported.append(replace(reservation, quantity=quantity))
                continue
            reported.append(reservation)
            inserts.append(
                {
                    "reservation_id": reservation.reservation_id,
                    "order_id": order_id,
                    "line_id": reservation.line_id,
                    "sku": reservation.sku,
                    "location_id": reservation.location_id,
                    "quantity": reservation.quantity,
                    "shipped": 0,
                    "state": reservation.state.value,
                    "channel": channel,
                    "release_id": "",
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
        if inserts:
            await session.execute(_INSERT_RESERVATION, inserts[0] if len(inserts) == 1 else inserts)
        asked = {line.line_id for line in lines}
        if not shortages:
            outcome = "RESERVED"
        elif allow_partial and (created or asked & set(held)):
            outcome = "PARTIALLY_RESERVED"
        else:
            outcome = "REJECTED"
        pb_short = [
            shortage_pb(s.line_id, s.sku, s.requested, s.shortfall, s.code, s.message) for s in shortages
        ]
        if created:
            unit.emit(
                events_pb2.StockReserved(
                    order_id=order_id,
                    reservations=[reservation_pb(r, created_at=stamp, updated_at=stamp) for r in reported],
                    shortages=pb_short,
                ),
                order_id,
            )
        elif shortages:
            unit.emit(events_pb2.ReservationRejected(order_id=order_id, shortages=pb_short), order_id)
        active = [
            to_reservation(row) for row in await session.execute(_ACTIVE_RESERVATIONS, {"b_order": order_id})
        ]
        return ReserveResult(outcome, active, shortages)

    async def _route(
        self, session: AsyncSession, channel: str, lines: list[Line], country: str, province: str
    ):
        skus = sorted({line.sku for line in lines})
        rows = (await session.execute(_POSITIONS_OF_SKUS, {"b_skus": skus})).all()
        available = {}
        locations = set()
        for row in rows:
            rule = self.policy.rule(channel, row.sku)
            if rule.ships_from(row.location_id):
                available[(row.sku, row.location_id)] = rule.available(to_position(row))
                locations.add(row.location_id)
        order = self.policy.location_order(locations, country, province)
        return route(lines, available, order), {row.sku for row in rows}

    async def _order_rows(self, unit: Work, order_id: str) -> list[ReservationRecord]:
        result = await unit.session.execute(_LOCK_ORDER_RESERVATIONS, {"b_order": order_id})
        return [ReservationRecord(**row._mapping) for row in result]

    async def release(
        self, unit: Work, *, order_id: str, lines: list[tuple[str, int, str]], reason: str
    ) -> list[ReservationRecord]:
        """Give back reservations: `lines` = (line_id, quantity (0 = all), location ('' = any));
        empty releases the whole order. Active reservations go first, then committed ones."""
        rows = await self._order_rows(unit, order_id)
        open_rows = [r for r in rows if to_reservation(r).open > 0]
        open_rows.sort(key=lambda r: (r.state != "ACTIVE", r.reservation_id))
        await unit.lock((r.sku, r.location_id) for r in open_rows)
        wanted = lines or [(r.line_id, 0, "") for r in open_rows]
        changed: dict[str, ReservationRecord] = {}
        for line_id, quantity, location_id in wanted:
            left = quantity
            for row in open_rows:
                if row.line_id != line_id or (location_id and row.location_id != location_id):
                    continue
                if quantity and left <= 0:
                    break
                reservation = to_reservation(row)
                take = reservation.open if not quantity else min(left, reservation.open)
                step = claims.release(reservation, unit.position(row.sku, row.location_id), take)
                if step is None:
                    continue
                new, position = step
                unit.put(position)
                write_reservation(row, new)
                changed[row.reservation_id] = row
                left -= take
        released = sorted(changed.values(), key=lambda r: r.reservation_id)
        await _write_reservations(unit.session, released)
        if released:
            unit.emit(
                events_pb2.StockReleased(
                    order_id=order_id, reservations=[reservation_message(r) for r in released], reason=reason
                ),
                order_id,
            )
        return released

    async def commit(
        self, unit: Work, *, order_id: str, release_id: str, location_id: str, line_ids: list[str]
    ) -> list[ReservationRecord]:
        """Commit active reservations of the order at the location to a warehouse release."""
        rows = [
            r
            for r in await self._order_rows(unit, order_id)
            if r.location_id == location_id and (not line_ids or r.line_id in line_ids)
        ]
        await unit.lock((r.sku, r.location_id) for r in rows)
        committed = []
        for row in rows:
            step = claims.commit(to_reservation(row), unit.position(row.sku, row.location_id), release_id)
            if step is None:
                continue
            new, position = step
            unit.put(position)
            write_reservation(row, new)
            committed.append(row)
        await _write_reservations(unit.session, committed)
        if committed:
            unit.emit(
                events_pb2.StockCommitted(
                    order_id=order_id,
                    release_id=release_id,
                    reservations=[reservation_message(r) for r in committed],
                ),
                order_id,
            )
        return committed

    async def consume(
        self,
        unit: Work,
        *,
        order_id: str,
        shipment_id: str,
        location_id: str,
        shipped: dict[tuple[str, str], int],
        shipped_at: datetime | None = None,
    ) -> list[ReservationRecord]:
        """Consume shipped quantities {(line_id, sku): quantity} once per (shipment, line).

        A shipment made at or before the count the position's on_hand rests on
        (`last_snapshot_at`) is already missing from that count: its claims are consumed, on_hand
        is left alone, so a late confirmation is not counted twice (I5).
        """
        stamp = now()
        fresh: dict[tuple[str, str], int] = {}
        for (line_id, sku), quantity in sorted(shipped.items()):
            result = await unit.session.execute(
                _INSERT_SHIPMENT_LINE[self.dialect],
                {"shipment_id": shipment_id, "line_id": line_id, "quantity": quantity, "created_at": stamp},
            )
            if result.rowcount:
                fresh[(line_id, sku)] = quantity
        rows = [r for r in await self._order_rows(unit, order_id) if r.location_id == location_id]
        await unit.lock(((sku, location_id) for _, sku in fresh), create=True)
        consumed: dict[str, ReservationRecord] = {}
        for (line_id, sku), quantity in fresh.items():
            start = unit.position(sku, location_id)
            left = quantity
            for row in sorted(rows, key=lambda r: (r.state != "COMMITTED", r.reservation_id)):
                if row.line_id != line_id or left <= 0:
                    continue
                step = claims.ship(to_reservation(row), unit.position(row.sku, row.location_id), left)
                if step is None:
                    continue
                new, position, left = step
                unit.put(position)
                write_reservation(row, new)
                consumed[row.reservation_id] = row
            if left > 0:
                # shipped without a claim: physical facts win, on_hand still goes down
                unit.put(stock.ship(unit.position(sku, location_id), unclaimed=left))
            await self.record_movement(
                unit,
                start,
                kind="SHIPMENT",
                reference=f"{shipment_id}/{line_id}",
                reported=-quantity,
                occurred_at=shipped_at,
                absorb=True,
            )
        await _write_reservations(unit.session, consumed.values())
        if consumed:
            unit.emit(
                events_pb2.StockConsumed(
                    order_id=order_id,
                    shipment_id=shipment_id,
                    reservations=[
                        reservation_message(r)
                        for r in sorted(consumed.values(), key=lambda r: r.reservation_id)
                    ],
                ),
                order_id,
            )
        return list(consumed.values())

    # Positions ------------------------------------------------------------------------------

    async def record_movement(
        self,
        unit: Work,
        start: Position,
        *,
        kind: str,
        reference: str,
        reported: int,
        occurred_at: datetime | None,
        absorb: bool = False,
    ) -> None:
        """Log the on_hand movement from `start` to the locked position's current state.

        With `absorb`, a movement that happened at or before the count on_hand rests on is
        already in that count: on_hand goes back to `start` (claims keep their change).
        """
        key = (start.sku, start.location_id)
        current = unit.after[key]
        moment = latest_moment(occurred_at) if occurred_at else now()
        counted_at = unit.rows[key].last_snapshot_at
        absorbed = absorb and counted_at is not None and moment <= counted_at
        if absorbed and current.on_hand != start.on_hand:
            current = replace(current, on_hand=start.on_hand)
            unit.put(current)
        applied = current.on_hand - start.on_hand
        if applied == 0 and not absorbed:
            return
        await unit.session.execute(
            _INSERT_MOVEMENT,
            {
                "sku": start.sku,
                "location_id": start.location_id,
                "kind": kind,
                "reference": reference[:200],
                "reported": reported,
                "applied": applied,
                "occurred_at": moment,
                "recorded_at": now(),
            },
        )

    async def adjust(
        self,
        unit: Work,
        *,
        sku: str,
        location_id: str,
        deltas: list[tuple[str, int]],
        reason: str = "",
        reference: str = "",
        occurred_at: datetime | None = None,
    ) -> Position:
        """Apply signed bucket changes atomically; creates the position.

        On_hand changes for a physical `reason` (receipt, return, transfer) are logged as
        movements at `occurred_at` (default: now) for reconciliation.
        """
        await unit.lock([(sku, location_id)], create=True)
        start = unit.position(sku, location_id)
        merged: dict[str, int] = {}
        for bucket, delta in deltas:
            merged[bucket] = merged.get(bucket, 0) + delta
        after = stock.adjust(start, merged)
        unit.put(after)
        if reason in PHYSICAL_REASONS:
            await self.record_movement(
                unit,
                start,
                kind=reason,
                reference=reference,
                reported=merged.get("on_hand", 0),
                occurred_at=occurred_at,
            )
        return after

    async def apply_snapshot(
        self,
        unit: Work,
        *,
        request_id: str,
        location_id: str,
        as_of: datetime,
        counts: list[SnapshotCount],
        complete: bool,
        source_system: int = common_pb2.SOURCE_SYSTEM_TPL,
    ) -> SnapshotResult:
        """Reconcile a location's counts with its positions (I5); never reserved or committed.

        Per position and counted bucket: compare with the mesh's figure at `as_of`
        (domain/reconciliation.py), repair within the SKU's bound, escalate beyond it, record a
        drift row with the evidence and publish InventoryDriftDetected. A drift found again by a
        later snapshot with the same figures, while the mesh still holds its own, is neither
        recorded nor published again.
        """
        session = unit.session
        watermark = (
            await session.execute(
                select(SnapshotRow).where(SnapshotRow.location_id == location_id).with_for_update()
            )
        ).scalar_one_or_none()
        if watermark is None:
            await session.execute(
                self.insert_ignore(
                    SnapshotRow,
                    [{"location_id": location_id, "as_of": as_of, "request_id": "", "applied_at": now()}],
                )
            )
            watermark = (
                await session.execute(
                    select(SnapshotRow).where(SnapshotRow.location_id == location_id).with_for_update()
                )
            ).scalar_one()
        elif watermark.as_of >= as_of:
            return SnapshotResult(applied=False)
        watermark.as_of, watermark.request_id, watermark.applied_at = as_of, request_id, now()
        reported = {count.sku: count for count in counts}
        if len(reported) != len(counts):
            raise StockError("DUPLICATE_SKU", "lines", "a SKU appears twice in the snapshot")
        keys = {(sku, location_id) for sku in reported}
        if complete:
            others = await session.execute(
                select(PositionRow.sku).where(PositionRow.location_id == location_id)
            )
            keys |= {(sku, location_id) for sku in others.scalars()}
        await unit.lock(keys, create=True)
        moved = await self._moved_since(session, location_id, as_of)
        source = common_pb2.SourceSystem.Name(source_system).removeprefix("SOURCE_SYSTEM_")
        result = SnapshotResult(applied=True)
        for sku, _ in sorted(keys):
            count = reported.get(sku, SnapshotCount(sku, 0))
            before = unit.position(sku, location_id)
            bound = self.policy.reconciliation.bound(sku)
            outcome = reconcile(
                before,
                Count(count.on_hand, count.damaged, count.quality_control),
                in_flight=moved.get(sku, 0),
                bound=bound,
            )
            if outcome.counted:
                await unit.counted((sku, location_id), as_of)
            after = outcome.position
            if after.version != before.version:
                unit.put(after)
                result.positions_changed += 1
            for finding in outcome.findings:
                result.drifts.append((sku, finding))
                if await self._seen_before(session, sku, location_id, finding):
                    continue
                evidence = _evidence(
                    finding,
                    before,
                    count,
                    source=source,
                    snapshot_id=request_id,
                    as_of=as_of,
                    bound=bound.describe(),
                    policy_version=self.policy.version,
                )
                event = events_pb2.InventoryDriftDetected(
                    sku=sku,
                    location_id=location_id,
                    compared_system=source_system,
                    bucket=BUCKET_OF[finding.bucket],
                    expected=finding.expected,
                    observed=finding.observed,
                    auto_repaired=finding.outcome.repaired,
                    evidence=evidence,
                )
                event.meta.event_id = new_event_id()
                event.meta.source_system = common_pb2.SOURCE_SYSTEM_MESH
                unit.emit(event, before.key)
                session.add(
                    DriftRow(
                        drift_id=f"{request_id}/{sku}/{finding.bucket}",
                        sku=sku,
                        location_id=location_id,
                        bucket=finding.bucket,
                        source_system=source,
                        snapshot_id=request_id,
                        as_of=as_of,
                        mesh=finding.mesh,
                        in_flight=finding.in_flight,
                        expected=finding.expected,
                        observed=finding.observed,
                        reserved=before.reserved,
                        committed=before.committed,
                        allocated=count.allocated,
                        bound=bound.describe(),
                        policy_version=self.policy.version,
                        outcome=finding.outcome.value,
                        result=finding.result,
                        evidence=evidence,
                        event_id=event.meta.event_id,
                        detected_at=now(),
                    )
                )
            if outcome.findings and after.version != before.version:
                unit.emit(
                    _count_adjusted(before, after, outcome.findings, source_system, request_id, self.policy),
                    after.key,
                )
        unit.emit(
            events_pb2.SnapshotApplied(
                location_id=location_id,
                as_of=timestamp(as_of),
                line_count=len(counts),
                positions_changed=result.positions_changed,
                drift_count=len(result.drifts),
            ),
            location_id,
        )
        await session.flush()
        return result

    async def _moved_since(self, session: AsyncSession, location_id: str, as_of: datetime) -> dict[str, int]:
        """Per SKU, the on_hand the mesh applied for movements that happened after `as_of`."""
        rows = await session.execute(
            select(MovementRow.sku, func.sum(MovementRow.applied))
            .where(MovementRow.location_id == location_id, MovementRow.occurred_at > as_of)
            .group_by(MovementRow.sku)
        )
        return {sku: int(total or 0) for sku, total in rows.all()}

    async def _seen_before(self, session: AsyncSession, sku: str, location_id: str, finding: Finding) -> bool:
        """True when the finding changes nothing and the last drift of this bucket had the same
        figures (a held count reported again): nothing new to record or publish."""
        if finding.result != finding.mesh:
            return False
        last = (
            await session.execute(
                select(DriftRow)
                .where(
                    DriftRow.sku == sku,
                    DriftRow.location_id == location_id,
                    DriftRow.bucket == finding.bucket,
                )
                .order_by(DriftRow.as_of.desc(), DriftRow.detected_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        return (
            last is not None
            and last.outcome == finding.outcome.value
            and (last.expected, last.observed, last.mesh, last.result)
            == (finding.expected, finding.observed, finding.mesh, finding.result)
        )

    async def drifts(self, sku: str, location_id: str) -> list[DriftRow]:
        """Drifts recorded for a position, oldest first (tests; over gRPC: ListDrifts)."""
        async with self.db.read() as session:
            rows = await session.execute(
                select(DriftRow)
                .where(DriftRow.sku == sku, DriftRow.location_id == location_id)
                .order_by(DriftRow.as_of, DriftRow.bucket)
            )
            return list(rows.scalars())


def _count_adjusted(
    before: Position,
    after: Position,
    findings: list[Finding],
    source_system: int,
    snapshot_id: str,
    policy: Policy,
) -> events_pb2.StockAdjusted:
    """StockAdjusted for the buckets a count changed: RECONCILIATION when every applied drift was
    within its bound, CYCLE_COUNT when an escalated count was applied."""
    repaired = all(f.outcome.repaired for f in findings if f.outcome is not Outcome.ESCALATED_HELD)
    changes = [
        inventory_pb2.BucketDelta(bucket=BUCKET_OF[name], delta=getattr(after, name) - getattr(before, name))
        for name in ("on_hand", "damaged", "quality_control")
        if getattr(after, name) != getattr(before, name)
    ]
    return events_pb2.StockAdjusted(
        sku=after.sku,
        location_id=after.location_id,
        changes=changes,
        reason=(
            inventory_pb2.ADJUSTMENT_REASON_RECONCILIATION
            if repaired
            else inventory_pb2.ADJUSTMENT_REASON_CYCLE_COUNT
        ),
        reference=common_pb2.ExternalRef(system=source_system, id=snapshot_id),
        position=position_pb(after, policy, updated_at=now()),
    )


def _evidence(
    finding: Finding,
    before: Position,
    count: SnapshotCount,
    *,
    source: str,
    snapshot_id: str,
    as_of: datetime,
    bound: str,
    policy_version: str,
) -> str:
    """The drift in words, for the people who work the exception (no personal data)."""
    lines = [
        f"{finding.bucket} of {before.key}: {source} counted {finding.observed}, "
        f"the mesh expected {finding.expected} (drift {finding.drift:+d}).",
        f"Snapshot {snapshot_id} as of {as_of.astimezone(UTC).isoformat()}.",
    ]
    if finding.in_flight:
        lines.append(
            f"The mesh holds {finding.mesh}, of which {finding.in_flight:+d} from movements "
            "(shipments, receipts) after as_of, left out of the comparison."
        )
    lines.append(
        f"At the time: reserved {before.reserved}, committed {before.committed}; "
        f"the warehouse reported {count.allocated} allocated."
    )
    unconfirmed = before.committed - count.allocated
    if finding.bucket == "on_hand" and finding.drift < 0 and unconfirmed > 0:
        lines.append(
            f"Committed exceeds the warehouse's allocation by {unconfirmed}: up to that many units may "
            "have shipped before as_of without a confirmation yet; a late confirmation will not "
            "lower on_hand again."
        )
    action = {
        Outcome.REPAIRED: f"Within bound {bound}: repaired, {finding.bucket} is now {finding.result}.",
        Outcome.ESCALATED_APPLIED: (
            f"Beyond bound {bound}: the lower count was applied ({finding.bucket} is now "
            f"{finding.result}); needs a person."
        ),
        Outcome.ESCALATED_HELD: (
            f"Beyond bound {bound}: held at {finding.result}, the count would raise sellable stock; "
            "needs a person (confirm with an Adjust, or a recount)."
        ),
    }[finding.outcome]
    lines.append(f"{action} Policy {policy_version}.")
    return " ".join(lines)[:4000]


def _fingerprint(request: Message | None) -> str:
    data = b"" if request is None else request.SerializeToString(deterministic=True)
    return hashlib.sha256(data).hexdigest()


def _transient(error: DBAPIError) -> bool:
    text = f"{type(error.orig).__name__} {error.orig}".lower()
    return any(
        word in text for word in ("deadlock", "serializ", "could not obtain lock", "database is locked")
    )
