"""The business-exception worklists (V3) on the ops database: open, recur, clear, assign, resolve.

Every change is made in the caller's write transaction together with the event it causes
(ExceptionRaised, ExceptionAssigned, ExceptionResolved through the outbox): from an event handler
that is the delivery's transaction (inbox row + effects), from an RPC its own. The rules are in
`services.ops.domain.worklist`; this module stores their outcome.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import Message
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.bus.envelope import new_event_id
from libs.store import Database
from retail.common.v1 import common_pb2
from retail.ops.v1 import events_pb2 as ops_events
from services.ops.domain.worklist import (
    MESH,
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
from services.ops.events.mapping import Fact, exception_pb
from services.ops.store.tables import ClearanceRow, ExceptionRow

#: `emit(event, key)`: add an event to the outbox in the current transaction; returns its id.
Emit = Callable[[Message, str], Awaitable[str]]

DEFAULT_PAGE = 50


class UnknownException(LookupError):
    """No exception has the given id."""


class BadPageToken(ValueError):
    """A page token this service did not issue."""


@dataclass(frozen=True)
class ExceptionFilter:
    """Which exceptions ListExceptions returns (empty fields mean all)."""

    worklist: Worklist | None = None
    reason_codes: Sequence[str] = ()
    states: Sequence[State] = (State.OPEN, State.ASSIGNED)
    order_id: str = ""
    assignee: str = ""


@dataclass(frozen=True)
class Group:
    """Not-resolved exceptions with one cause in one worklist."""

    worklist: Worklist
    reason_code: str
    open_count: int
    oldest_opened_at: datetime


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


class Worklists:
    """The exceptions of every worklist in the ops database.

    Args:
        db: the ops database (migrated with `services.ops.store.MIGRATIONS`).
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- from events ------------------------------------------------------------------------------

    async def apply(
        self, session: AsyncSession, fact: Fact, *, event_id: str, correlation_id: str, emit: Emit
    ) -> Case | None:
        """Apply one fact read from an event, in the delivery's transaction.

        Returns:
            The exception opened, updated or resolved, if any (the last one for a status change).
        """
        if isinstance(fact, Finding):
            return await self._found(
                session, fact, event_id=event_id, correlation_id=correlation_id, emit=emit
            )
        if isinstance(fact, Clearance):
            return await self._cleared(session, fact, event_id=event_id, emit=emit)
        return await self._status(session, fact, emit=emit)

    async def _found(
        self, session: AsyncSession, finding: Finding, *, event_id: str, correlation_id: str, emit: Emit
    ) -> Case | None:
        cleared = await session.get(ClearanceRow, (finding.kind.value, finding.subject))
        if is_stale(finding, cleared.cleared_at if cleared is not None else None):
            return None
        row = await self._open_row(session, finding.kind, finding.subject)
        at = now()
        if row is not None:
            case = to_case(row)
            case.recur(finding, at)
            _store(case, row)
            return case
        case = Case.open(new_event_id(), finding, correlation_id=correlation_id, event_id=event_id, now=at)
        row = ExceptionRow()
        _store(case, row)
        session.add(row)
        # The partial unique index decides a race between replicas: the loser's delivery fails,
        # is redelivered, and then finds this row open.
        await session.flush()
        await emit(ops_events.ExceptionRaised(exception=exception_pb(case)), case.exception_id)
        return case

    async def _cleared(
        self, session: AsyncSession, clearance: Clearance, *, event_id: str, emit: Emit
    ) -> Case | None:
        remembered = await session.get(ClearanceRow, (clearance.kind.value, clearance.subject))
        if remembered is None:
            session.add(
                ClearanceRow(
                    kind=clearance.kind.value,
                    subject=clearance.subject,
                    cleared_at=clearance.at,
                    event_id=event_id,
                )
            )
        elif remembered.cleared_at < clearance.at:
            remembered.cleared_at, remembered.event_id = clearance.at, event_id
        row = await self._open_row(session, clearance.kind, clearance.subject)
        if row is None:
            return None
        return await self._resolve_row(session, row, clearance.resolution, clearance.note, MESH, emit)

    async def _status(self, session: AsyncSession, reached: OrderStatusReached, *, emit: Emit) -> Case | None:
        rows = (
            await session.scalars(
                select(ExceptionRow)
                .where(ExceptionRow.order_id == reached.order_id, ExceptionRow.state != State.RESOLVED.value)
                .order_by(ExceptionRow.opened_at, ExceptionRow.exception_id)
            )
        ).all()
        last = None
        for row in rows:
            outcome = cleared_by_status(to_case(row), reached.status)
            if outcome is not None:
                resolution, note = outcome
                last = await self._resolve_row(session, row, resolution, note, MESH, emit)
        return last

    async def _open_row(self, session: AsyncSession, kind: Kind, subject: str) -> ExceptionRow | None:
        query = select(ExceptionRow).where(
            ExceptionRow.kind == kind.value,
            ExceptionRow.subject == subject,
            ExceptionRow.state != State.RESOLVED.value,
        )
        if not self.db.is_sqlite:
            query = query.with_for_update()
        return (await session.scalars(query)).one_or_none()

    async def _resolve_row(
        self,
        session: AsyncSession,
        row: ExceptionRow,
        resolution: Resolution,
        note: str,
        by: str,
        emit: Emit,
    ) -> Case:
        case = to_case(row)
        case.resolve(resolution, note, by, now())
        _store(case, row)
        event = ops_events.ExceptionResolved(exception=exception_pb(case), operator=by)
        if by != MESH:
            event.meta.source_system = common_pb2.SOURCE_SYSTEM_OPERATOR
        await emit(event, case.exception_id)
        return case

    # -- operators --------------------------------------------------------------------------------

    async def assign(self, session: AsyncSession, exception_id: str, assignee: str, emit: Emit) -> Case:
        """Give an exception to an operator; emits ExceptionAssigned.

        Raises:
            UnknownException: no such exception.
            WorklistError: it is resolved.
        """
        row = await self._row(session, exception_id)
        case = to_case(row)
        case.assign(assignee, now())
        _store(case, row)
        event = ops_events.ExceptionAssigned(exception_id=exception_id, assignee=assignee)
        event.meta.source_system = common_pb2.SOURCE_SYSTEM_OPERATOR
        await emit(event, exception_id)
        return case

    async def resolve(
        self,
        session: AsyncSession,
        exception_id: str,
        resolution: Resolution,
        note: str,
        operator: str,
        emit: Emit,
    ) -> Case:
        """Resolve an exception by hand; emits ExceptionResolved naming the operator.

        Raises:
            UnknownException: no such exception.
            WorklistError: it is already resolved.
        """
        row = await self._row(session, exception_id)
        return await self._resolve_row(session, row, resolution, note, operator, emit)

    async def _row(self, session: AsyncSession, exception_id: str) -> ExceptionRow:
        query = select(ExceptionRow).where(ExceptionRow.exception_id == exception_id)
        if not self.db.is_sqlite:
            query = query.with_for_update()
        row = (await session.scalars(query)).one_or_none()
        if row is None:
            raise UnknownException(exception_id)
        return row

    # -- reads ------------------------------------------------------------------------------------

    async def get(self, exception_id: str) -> Case | None:
        """One exception, or None."""
        async with self.db.read() as session:
            row = await session.get(ExceptionRow, exception_id)
            return to_case(row) if row is not None else None

    async def find(
        self, where: ExceptionFilter, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[Case], str]:
        """Exceptions matching `where`, oldest opened first, one page at a time.

        Returns:
            The page and the token of the next one ("" after the last).

        Raises:
            BadPageToken: `page_token` was not issued by `list`.
        """
        size = page_size or DEFAULT_PAGE
        query = select(ExceptionRow).where(ExceptionRow.state.in_([s.value for s in where.states]))
        if where.worklist is not None:
            query = query.where(ExceptionRow.worklist == where.worklist.value)
        if where.reason_codes:
            query = query.where(ExceptionRow.reason_code.in_(list(where.reason_codes)))
        if where.order_id:
            query = query.where(ExceptionRow.order_id == where.order_id)
        if where.assignee:
            query = query.where(ExceptionRow.assignee == where.assignee)
        if page_token:
            opened_at, exception_id = _decode_token(page_token)
            query = query.where(
                or_(
                    ExceptionRow.opened_at > opened_at,
                    (ExceptionRow.opened_at == opened_at) & (ExceptionRow.exception_id > exception_id),
                )
            )
        query = query.order_by(ExceptionRow.opened_at, ExceptionRow.exception_id).limit(size + 1)
        async with self.db.read() as session:
            rows = (await session.scalars(query)).all()
        cases = [to_case(row) for row in rows[:size]]
        token = _encode_token(cases[-1]) if len(rows) > size else ""
        return cases, token

    async def summarize(self, worklist: Worklist | None = None) -> list[Group]:
        """Not-resolved exceptions counted per worklist and reason code, largest group first."""
        count = func.count().label("n")
        oldest = func.min(ExceptionRow.opened_at).label("oldest")
        query = (
            select(ExceptionRow.worklist, ExceptionRow.reason_code, count, oldest)
            .where(ExceptionRow.state != State.RESOLVED.value)
            .group_by(ExceptionRow.worklist, ExceptionRow.reason_code)
        )
        if worklist is not None:
            query = query.where(ExceptionRow.worklist == worklist.value)
        async with self.db.read() as session:
            rows = (await session.execute(query)).all()
        groups = [Group(Worklist(w), code, n, first) for w, code, n, first in rows]
        return sorted(groups, key=lambda g: (-g.open_count, g.oldest_opened_at, g.worklist, g.reason_code))

    async def for_order(self, order_id: str) -> list[Case]:
        """Every exception of one order, open and resolved, oldest first."""
        async with self.db.read() as session:
            rows = (
                await session.scalars(
                    select(ExceptionRow)
                    .where(ExceptionRow.order_id == order_id)
                    .order_by(ExceptionRow.opened_at, ExceptionRow.exception_id)
                )
            ).all()
        return [to_case(row) for row in rows]


def to_case(row: ExceptionRow) -> Case:
    """The domain view of a stored exception."""
    return Case(
        exception_id=row.exception_id,
        kind=Kind(row.kind),
        subject=row.subject,
        worklist=Worklist(row.worklist),
        code=row.reason_code,
        message=row.reason_message,
        source_system=row.source_system,
        key=row.key,
        order_id=row.order_id,
        external_code=row.external_code,
        evidence=row.evidence,
        correlation_id=row.correlation_id,
        source_event_id=row.source_event_id,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        state=State(row.state),
        assignee=row.assignee,
        occurrences=row.occurrences,
        resolved_at=row.resolved_at,
        resolution=Resolution(row.resolution) if row.resolution else None,
        resolution_note=row.resolution_note,
        resolved_by=row.resolved_by,
    )


def _store(case: Case, row: ExceptionRow) -> None:
    row.exception_id, row.kind, row.subject = case.exception_id, case.kind.value, case.subject
    row.worklist, row.reason_code, row.reason_message = case.worklist.value, case.code, case.message
    row.source_system, row.external_code, row.evidence = case.source_system, case.external_code, case.evidence
    row.key, row.order_id, row.correlation_id = case.key, case.order_id, case.correlation_id
    row.source_event_id, row.state, row.assignee = case.source_event_id, case.state.value, case.assignee
    row.occurrences, row.opened_at, row.updated_at = case.occurrences, case.opened_at, case.updated_at
    row.resolved_at = case.resolved_at
    row.resolution = case.resolution.value if case.resolution is not None else ""
    row.resolution_note, row.resolved_by = case.resolution_note, case.resolved_by


def _encode_token(last: Case) -> str:
    raw = f"{last.opened_at.astimezone(UTC).isoformat()}|{last.exception_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        opened_at, exception_id = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
        at = datetime.fromisoformat(opened_at)
        return (at if at.tzinfo else at.replace(tzinfo=UTC)), exception_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise BadPageToken(token) from error


__all__ = [
    "BadPageToken",
    "ExceptionFilter",
    "Group",
    "UnknownException",
    "WorklistError",
    "Worklists",
    "to_case",
]
