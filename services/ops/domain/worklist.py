"""Business exceptions in worklists (MISSION V3): which team, which cause, and when one is done.

An exception is identified by its cause: a `kind` (what went wrong) and a `subject` (the entity it
went wrong for: an order, one hold of an order, one release, one drifting bucket). At most one
exception per (kind, subject) is open at a time; the same cause found again while it is open counts
as a recurrence of that exception, never as a second one. A cause clears either by an operator's
ResolveException or by an event saying so (the hold released, the replayed order created in the
ERP, the order cancelled). See docs/decisions/0017-ops-exception-worklist.md.

Pure: no grpc, nats, sqlalchemy or generated code. Enum values are the proto value names without
their prefix (`CUSTOMER_SERVICE`, `TAX_REJECTED`, `ERP_CREATED`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Worklist(StrEnum):
    """The team that works an exception."""

    CUSTOMER_SERVICE = "CUSTOMER_SERVICE"
    FINANCE = "FINANCE"
    WAREHOUSE = "WAREHOUSE"
    CATALOG = "CATALOG"


class State(StrEnum):
    """Where an exception is."""

    OPEN = "OPEN"
    ASSIGNED = "ASSIGNED"
    RESOLVED = "RESOLVED"


class Resolution(StrEnum):
    """How an exception was resolved."""

    FIXED_AND_REPLAYED = "FIXED_AND_REPLAYED"
    HANDLED_MANUALLY = "HANDLED_MANUALLY"
    NO_ACTION_NEEDED = "NO_ACTION_NEEDED"


class Kind(StrEnum):
    """What went wrong; with the subject, the identity of an exception."""

    #: The order was refused by the mesh or the ERP (subject: order id).
    ORDER_REJECTED = "order_rejected"
    #: A hold stops the order (subject: `order_id/hold_id`).
    ORDER_HOLD = "order_hold"
    #: The warehouse refused to cancel a release (subject: `order_id/release_id`).
    CANCELLATION_REJECTED = "cancellation_rejected"
    #: The warehouse refused an address correction (subject: `order_id/release_id`).
    ADDRESS_UPDATE_REJECTED = "address_update_rejected"
    #: A warehouse count differs from the mesh beyond the repair bounds
    #: (subject: `sku@location_id/bucket/system`).
    INVENTORY_DRIFT = "inventory_drift"


#: The operator name of resolutions the mesh made because an event cleared the cause.
MESH = "mesh"

#: Rejection reasons whose exceptions finance works; the rest go to customer service.
_REJECTION_WORKLISTS = {
    "TAX_REJECTED": Worklist.FINANCE,
    "CREDIT_LIMIT_EXCEEDED": Worklist.FINANCE,
    "PAYMENT_NOT_AUTHORIZED": Worklist.FINANCE,
    "INVALID_SKU": Worklist.CATALOG,
}
#: Hold reasons by team; the rest go to customer service.
_HOLD_WORKLISTS = {
    "PAYMENT_PENDING": Worklist.FINANCE,
    "CUSTOMER_CREDIT": Worklist.FINANCE,
    "INVENTORY_MISMATCH": Worklist.WAREHOUSE,
    "WAREHOUSE_REJECTED": Worklist.WAREHOUSE,
}
#: Order statuses at or after the ERP's acceptance: a rejection by the ERP has cleared there.
_PAST_ERP = frozenset({"ERP_CREATED", "RELEASED", "PARTIALLY_SHIPPED", "SHIPPED", "INVOICED"})
#: Order statuses at or after the mesh's acceptance: a rejection by the mesh has cleared there.
_PAST_MESH = _PAST_ERP | {"ACCEPTED", "BACKORDERED"}


def rejection_worklist(reason_code: str) -> Worklist:
    """The team that works an order rejected for `reason_code` (`TAX_REJECTED` -> finance)."""
    return _REJECTION_WORKLISTS.get(reason_code, Worklist.CUSTOMER_SERVICE)


def hold_worklist(hold_reason: str) -> Worklist:
    """The team that works an order held for `hold_reason` (`WAREHOUSE_REJECTED` -> warehouse)."""
    return _HOLD_WORKLISTS.get(hold_reason, Worklist.CUSTOMER_SERVICE)


class WorklistError(Exception):
    """An operator's request the exception's state does not allow.

    Attributes:
        code: stable reason code (`ALREADY_RESOLVED`).
        message: explanation for the caller.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Finding:
    """A cause found in an event: opens an exception, or recurs on the open one.

    Attributes:
        kind: what went wrong.
        subject: the entity it went wrong for.
        worklist: the team that works it.
        code: reason code to group by (`TAX_REJECTED`).
        message: explanation for people (no personal data).
        source_system: the system that gave the reason (`ERP`).
        key: the entity's business key (order id, `sku@location_id`).
        occurred_at: when the cause happened (the event's `occurred_at`).
        order_id: the order concerned, if any.
        external_code: the external system's own error code, verbatim.
        evidence: evidence for people (drift documents and figures).
    """

    kind: Kind
    subject: str
    worklist: Worklist
    code: str
    message: str
    source_system: str
    key: str
    occurred_at: datetime
    order_id: str = ""
    external_code: str = ""
    evidence: str = ""


@dataclass(frozen=True)
class Clearance:
    """An event saying the cause of one exception is gone.

    Attributes:
        kind: the exception's kind.
        subject: the exception's subject.
        resolution: how it counts as resolved.
        note: what cleared it, for people.
        at: when it cleared (the event's `occurred_at`); a finding of the same cause that happened
            before this is stale and opens nothing.
    """

    kind: Kind
    subject: str
    resolution: Resolution
    note: str
    at: datetime


@dataclass(frozen=True)
class OrderStatusReached:
    """An order reached a status; may clear several of its exceptions (see `cleared_by_status`)."""

    order_id: str
    status: str
    at: datetime


@dataclass
class Case:
    """One business exception as the worklist keeps it.

    Attributes mirror `retail.ops.v1.BusinessException`, plus `kind` and `subject` (its identity)
    and `resolved_by` (the operator, or `mesh`).
    """

    exception_id: str
    kind: Kind
    subject: str
    worklist: Worklist
    code: str
    message: str
    source_system: str
    key: str
    order_id: str
    external_code: str
    evidence: str
    correlation_id: str
    source_event_id: str
    opened_at: datetime
    updated_at: datetime
    state: State = State.OPEN
    assignee: str = ""
    occurrences: int = 1
    resolved_at: datetime | None = None
    resolution: Resolution | None = None
    resolution_note: str = ""
    resolved_by: str = ""

    @classmethod
    def open(
        cls, exception_id: str, finding: Finding, *, correlation_id: str, event_id: str, now: datetime
    ) -> Case:
        """A new open exception for `finding`."""
        return cls(
            exception_id=exception_id,
            kind=finding.kind,
            subject=finding.subject,
            worklist=finding.worklist,
            code=finding.code,
            message=finding.message,
            source_system=finding.source_system,
            key=finding.key,
            order_id=finding.order_id,
            external_code=finding.external_code,
            evidence=finding.evidence,
            correlation_id=correlation_id,
            source_event_id=event_id,
            opened_at=now,
            updated_at=now,
        )

    def recur(self, finding: Finding, now: datetime) -> None:
        """The same cause was found again while open: count it and show the latest figures.

        The exception keeps its id, team, owner and the event that first raised it.
        """
        if self.state is State.RESOLVED:
            raise WorklistError("ALREADY_RESOLVED", f"exception {self.exception_id} is resolved")
        self.occurrences += 1
        self.code, self.message = finding.code, finding.message
        self.external_code, self.evidence = finding.external_code, finding.evidence
        self.updated_at = now

    def assign(self, assignee: str, now: datetime) -> None:
        """Give the exception to an operator (again, to another one, while not resolved)."""
        if self.state is State.RESOLVED:
            raise WorklistError("ALREADY_RESOLVED", f"exception {self.exception_id} is already resolved")
        self.assignee, self.state, self.updated_at = assignee, State.ASSIGNED, now

    def resolve(self, resolution: Resolution, note: str, by: str, now: datetime) -> None:
        """Close the exception; a resolved exception stays resolved (a new cause opens a new one)."""
        if self.state is State.RESOLVED:
            raise WorklistError("ALREADY_RESOLVED", f"exception {self.exception_id} is already resolved")
        self.state, self.resolution, self.resolution_note = State.RESOLVED, resolution, note
        self.resolved_by, self.resolved_at, self.updated_at = by, now, now


def cleared_by_status(case: Case, status: str) -> tuple[Resolution, str] | None:
    """Whether the order reaching `status` clears `case`, and how.

    - CANCELLED clears every exception of the order: nothing is left to fix.
    - REJECTED ends the order's holds (the rejection opens its own exception).
    - A rejection clears once the replayed order got past the step that refused it: the ERP's
      acceptance (ERP_CREATED and later) for an ERP rejection, the mesh's (ACCEPTED, BACKORDERED
      and later) for the mesh's own.
    """
    if case.state is State.RESOLVED:
        return None
    if status == "CANCELLED":
        return Resolution.NO_ACTION_NEEDED, "the order was cancelled"
    if case.kind is Kind.ORDER_HOLD and status == "REJECTED":
        return Resolution.NO_ACTION_NEEDED, "the order was rejected, which ended its holds"
    if case.kind is Kind.ORDER_REJECTED:
        passed = _PAST_ERP if case.source_system == "ERP" else _PAST_MESH
        if status in passed:
            return Resolution.FIXED_AND_REPLAYED, f"the replayed order reached {status}"
    return None


def is_stale(finding: Finding, cleared_at: datetime | None) -> bool:
    """A finding that happened before its cause was last cleared opens nothing (late redelivery)."""
    return cleared_at is not None and finding.occurred_at <= cleared_at
