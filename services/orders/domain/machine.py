"""The order state machine of docs/contracts.md: transitions, owners, and every rule that applies them.

Each operation takes the order (or None) and a fact or command, mutates the order and returns an
`Outcome`: the domain events to publish, the exceptions to open and, for commands, what to answer.
A transition is taken only from its listed statuses and only when its owner asks
(`Refused` otherwise); channel facts are ordered by the channel's updated_at, never by arrival.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.orders.domain.order import (
    PRE_RELEASE,
    TERMINAL,
    Hold,
    JournalEntry,
    Line,
    Order,
    Owner,
    Release,
    Status,
    StatusChange,
    System,
)

S = Status
ANY_CHANNEL = frozenset({System.SHOPIFY, System.OPERATOR})
HOLDERS = frozenset({System.SHOPIFY, System.ERP, System.TPL, System.OPERATOR})


@dataclass(frozen=True)
class Rule:
    """One row of the transition table: from these statuses, to `target` (None: resume_status)."""

    trigger: str
    sources: frozenset[Status]
    target: Status | None
    owners: frozenset[System]


def _rule(trigger: str, sources: set[Status], target: Status | None, owners: set[System]) -> Rule:
    return Rule(trigger, frozenset(sources), target, frozenset(owners))


#: The table of docs/contracts.md, one rule per trigger (docs/order-state-machine.md draws it).
RULES: dict[str, Rule] = {
    r.trigger: r
    for r in (
        _rule("reserved", {S.RECEIVED, S.BACKORDERED}, S.ACCEPTED, {System.MESH}),
        _rule("backordered", {S.RECEIVED}, S.BACKORDERED, {System.MESH}),
        _rule("mesh_rejected", {S.RECEIVED, S.BACKORDERED}, S.REJECTED, {System.MESH}),
        _rule("erp_created", {S.ACCEPTED}, S.ERP_CREATED, {System.ERP}),
        _rule("erp_rejected", {S.ACCEPTED}, S.REJECTED, {System.ERP}),
        _rule("released", {S.ERP_CREATED}, S.RELEASED, {System.MESH}),
        _rule("release_rejected", {S.RELEASED}, S.ON_HOLD, {System.TPL}),
        _rule("partially_shipped", {S.RELEASED, S.CANCEL_REQUESTED}, S.PARTIALLY_SHIPPED, {System.TPL}),
        _rule("shipped", {S.RELEASED, S.PARTIALLY_SHIPPED, S.CANCEL_REQUESTED}, S.SHIPPED, {System.TPL}),
        _rule("invoiced", {S.SHIPPED}, S.INVOICED, {System.ERP}),
        _rule(
            "hold",
            {S.RECEIVED, S.BACKORDERED, S.ACCEPTED, S.ERP_CREATED},
            S.ON_HOLD,
            {System.SHOPIFY, System.ERP, System.OPERATOR},
        ),
        _rule("hold_released", {S.ON_HOLD}, None, set(HOLDERS)),
        _rule(
            "cancelled",
            {S.RECEIVED, S.BACKORDERED, S.ACCEPTED, S.ERP_CREATED, S.ON_HOLD, S.REJECTED},
            S.CANCELLED,
            {System.SHOPIFY, System.OPERATOR},
        ),
        _rule(
            "cancel_requested",
            {S.RELEASED, S.PARTIALLY_SHIPPED},
            S.CANCEL_REQUESTED,
            {System.SHOPIFY, System.OPERATOR},
        ),
        _rule("cancel_accepted", {S.CANCEL_REQUESTED}, S.CANCELLED, {System.TPL}),
        _rule("cancel_accepted_rest_shipped", {S.CANCEL_REQUESTED}, S.SHIPPED, {System.TPL}),
        _rule("cancel_accepted_lines", {S.CANCEL_REQUESTED}, None, {System.TPL}),
        _rule("cancel_rejected", {S.CANCEL_REQUESTED}, None, {System.TPL}),
        _rule("replayed", {S.REJECTED}, S.RECEIVED, {System.OPERATOR}),
    )
}


class Refused(Exception):
    """A command or fact not allowed in the order's status, or by this system (FAILED_PRECONDITION)."""

    def __init__(self, message: str, *, reason: str = "NOT_ALLOWED") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class Invalid(Exception):
    """A command that can never succeed as given (INVALID_ARGUMENT); `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class Fact:
    """A domain event to publish: its type (the retail.orders.v1 event name) and data."""

    type: str
    source: System
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Problem:
    """An exception for an operations worklist (V3)."""

    reason_code: str
    owner: Owner
    detail: str


@dataclass
class Outcome:
    """What one operation did: events to publish, exceptions to open, the reply, and the step to run.

    Attributes:
        step: an out-of-turn step the actor must drive next (`RESERVE`), or None.
    """

    facts: list[Fact] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)
    step: str | None = None


def allowed(trigger: str, status: Status, by: System) -> bool:
    """Whether `by` may take the transition `trigger` from `status`."""
    rule = RULES[trigger]
    return status in rule.sources and by in rule.owners


def transition(
    order: Order,
    trigger: str,
    by: System,
    at: datetime,
    out: Outcome,
    *,
    caused_by: str = "",
    note: str = "",
    target: Status | None = None,
) -> None:
    """Move the order by `trigger` (checked against RULES), append history and OrderStatusChanged.

    Raises:
        Refused: the transition is not allowed from the order's status or by `by`.
    """
    rule = RULES[trigger]
    if order.status not in rule.sources:
        raise Refused(f"{trigger} is not allowed while the order is {order.status}", reason="INVALID_STATUS")
    if by not in rule.owners:
        raise Refused(f"{by} does not own the transition {trigger}", reason="NOT_OWNER")
    new = target or rule.target or order.resume_status
    if new is None:
        raise Refused(f"{trigger} has no status to resume", reason="INVALID_STATUS")
    change = StatusChange(
        from_status=order.status, to_status=new, source=by, at=at, caused_by=caused_by, note=note
    )
    order.history.append(change)
    order.status = new
    if new not in (S.ON_HOLD, S.CANCEL_REQUESTED):
        order.resume_status = None
    if new is not S.REJECTED:
        order.rejection_reason, order.rejection_detail = (
            None,
            order.rejection_detail if new is S.REJECTED else "",
        )
    out.facts.append(Fact("OrderStatusChanged", by, {"change": change}))


def journal(
    order: Order,
    at: datetime,
    type_: str,
    source: System,
    summary: str,
    outcome: str = "SUCCEEDED",
    message_id: str = "",
) -> None:
    """Record a fact in the order's timeline, applied or not."""
    order.journal.append(
        JournalEntry(
            at=at, type=type_, source=source, summary=summary, outcome=outcome, message_id=message_id
        )
    )


def touch(order: Order, at: datetime) -> None:
    """Count a change: version + 1, updated_at."""
    order.version += 1
    order.updated_at = at


# -- ids ------------------------------------------------------------------------------------------

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_PREFIX = {"SHOPIFY": "shp"}


def order_id_for(system: str, channel_order_id: str) -> str:
    """The mesh's order id for a channel order, deterministic so a webhook and a poll meet one actor.

    `gid://shopify/Order/5001` of SHOPIFY becomes `shp-5001`.

    Raises:
        Invalid: the channel order id yields no valid mesh id.
    """
    tail = channel_order_id.rstrip("/").rsplit("/", 1)[-1]
    tail = re.sub(r"[^A-Za-z0-9._-]", "-", tail).strip("-")
    candidate = f"{_PREFIX.get(system, system.lower()[:8])}-{tail}"
    if not tail or not _ID.match(candidate):
        raise Invalid("order.channel_order.id", f"cannot derive an order id from {channel_order_id!r}")
    return candidate


def release_id_for(order: Order, location_id: str) -> str:
    """Deterministic release id: order, location and release round (the 3PL's reference id)."""
    return f"{order.order_id}:{location_id}:{order.release_round}"[:64]


def reserve_request_id(order: Order) -> str:
    """Idempotency key of the current reservation round at the inventory service."""
    return f"{order.order_id}:reserve:{order.reserve_round}"


# -- ingest ---------------------------------------------------------------------------------------

UPDATABLE = (
    "customer",
    "totals",
    "tax_lines",
    "shipping_method",
    "payment_status",
    "placed_at",
    "channel_order",
)


def ingest(
    current: Order | None, incoming: Order, at: datetime, *, request_id: str = ""
) -> tuple[Order, Outcome]:
    """Apply a channel version of an order (create or update), ordered by channel_updated_at.

    A first sight creates the order from the full payload, whether it came from orders/create or
    orders/updated. A newer version updates it; the same version is UNCHANGED; an older one is
    recorded in the journal as STALE and ignored.
    """
    out = Outcome()
    if current is None:
        order = incoming.model_copy(deep=True)
        order.status = S.RECEIVED
        order.history = [
            StatusChange(
                from_status=None, to_status=S.RECEIVED, source=System.SHOPIFY, at=at, caused_by=request_id
            )
        ]
        journal(order, at, "IngestOrder", System.SHOPIFY, "order received", message_id=request_id)
        touch(order, at)
        order.reserve_pending = True
        out.facts += [
            Fact("OrderReceived", System.SHOPIFY),
            Fact("OrderStatusChanged", System.SHOPIFY, {"change": order.history[-1]}),
        ]
        out.reply = {"outcome": "CREATED"}
        out.step = "RESERVE"
        return order, out
    order = current
    new_at, old_at = incoming.channel_updated_at, order.channel_updated_at
    if old_at is not None and new_at is not None and new_at < old_at:
        journal(
            order,
            at,
            "IngestOrder",
            System.SHOPIFY,
            f"stale channel version {new_at.isoformat()} < applied {old_at.isoformat()}",
            "STALE",
            request_id,
        )
        touch(order, at)
        out.reply = {"outcome": "STALE"}
        return order, out
    if old_at is not None and new_at == old_at:
        out.reply = {"outcome": "UNCHANGED"}
        return order, out
    changed = [name for name in UPDATABLE if getattr(order, name) != getattr(incoming, name)]
    for name in changed:
        setattr(order, name, getattr(incoming, name))
    if incoming.shipping_address != order.shipping_address:
        if order.status in PRE_RELEASE or order.status is S.RELEASED:
            # Edited in Shopify admin: as CorrectAddress, the warehouses of sent releases are told.
            release_ids = [r.release_id for r in order.releases if r.state in ("SENT", "ACCEPTED")]
            order.shipping_address = incoming.shipping_address
            changed.append("shipping_address")
            out.facts.append(Fact("OrderAddressCorrected", System.SHOPIFY, {"release_ids": release_ids}))
        else:
            journal(
                order,
                at,
                "IngestOrder",
                System.SHOPIFY,
                f"address change refused: the order is {order.status}",
                "REFUSED",
                request_id,
            )
    if _line_content(incoming.lines) != _line_content(order.lines):
        if order.status is S.RECEIVED and not order.reserve_pending:
            order.lines = incoming.lines
            changed.append("lines")
        else:
            _apply_line_edit(order, incoming, at, request_id, out, changed)
    order.channel_updated_at = new_at
    touch(order, at)
    journal(
        order,
        at,
        "IngestOrder",
        System.SHOPIFY,
        f"updated: {', '.join(changed) or 'timestamps'}",
        message_id=request_id,
    )
    out.facts.append(
        Fact("OrderUpdated", System.SHOPIFY, {"changed_fields": changed or ["channel_updated_at"]})
    )
    out.reply = {"outcome": "UPDATED"}
    return order, out


def _line_content(lines: list[Line]) -> list[tuple[str, str, int]]:
    """What the channel sees of the lines: id, SKU and quantity still open (cancelled units out)."""
    return sorted((line.line_id, line.sku, line.open_quantity) for line in lines if line.open_quantity > 0)


def _apply_line_edit(
    order: Order, incoming: Order, at: datetime, request_id: str, out: Outcome, changed: list[str]
) -> None:
    """A channel edit of reserved lines: units removed before release are cancelled (as
    CancelOrderLines by the channel); added units, and removals after release, are recorded only."""
    wanted = {}
    for line in order.open_lines:
        now = incoming.line(line.line_id)
        left = now.quantity if now is not None and now.sku == line.sku else 0
        if left < line.open_quantity:
            wanted[line.line_id] = line.open_quantity - left
    added = [
        line.line_id
        for line in incoming.lines
        if (mine := order.line(line.line_id)) is None or line.quantity > mine.open_quantity
    ]
    if wanted and order.status in PRE_RELEASE:
        done = cancel_lines(order, wanted, "ORDER_EDITED", System.SHOPIFY, at, request_id)
        out.facts += done.facts
        out.problems += done.problems
        changed.append("lines")
        journal(
            order,
            at,
            "IngestOrder",
            System.SHOPIFY,
            "units removed in the channel cancelled: "
            + ", ".join(f"{line_id} x{qty}" for line_id, qty in sorted(wanted.items())),
            message_id=request_id,
        )
    elif wanted:
        journal(
            order,
            at,
            "IngestOrder",
            System.SHOPIFY,
            f"units removed in the channel while {order.status} not applied; cancel through CancelOrderLines",
            "REFUSED",
            request_id,
        )
    if added:
        journal(
            order,
            at,
            "IngestOrder",
            System.SHOPIFY,
            "units added after reservation are not applied: " + ", ".join(sorted(added)),
            "REFUSED",
            request_id,
        )


# -- reservation ----------------------------------------------------------------------------------


@dataclass
class Shortage:
    """A line inventory could not reserve in full; reason `OUT_OF_STOCK`, `UNKNOWN_SKU`, ..."""

    line_id: str
    shortfall: int
    reason: str


def reservation_result(
    order: Order,
    round_: int,
    allocations: dict[str, dict[str, int]],
    shortages: list[Shortage],
    at: datetime,
    *,
    allow_backorder: bool,
) -> Outcome:
    """Record what inventory reserved in round `round_`: ACCEPTED, BACKORDERED or REJECTED.

    `allocations` is the order's active reservations after the call, line -> location -> quantity.
    A result of an older round, or one arriving after the order moved on, is recorded and ignored.
    """
    out = Outcome()
    working = order.resume_status if order.status is S.ON_HOLD else order.status
    if round_ != order.reserve_round or working not in (S.RECEIVED, S.BACKORDERED):
        journal(
            order, at, "Reserve", System.MESH, f"result of round {round_} ignored in {order.status}", "STALE"
        )
        return out
    order.reserve_pending = False
    for line in order.lines:
        line.allocations = {loc: q for loc, q in allocations.get(line.line_id, {}).items() if q > 0}
    invalid = [s for s in shortages if s.reason in ("UNKNOWN_SKU", "INVALID_SKU")]
    short = [line for line in order.open_lines if line.short > 0]
    touch(order, at)
    if invalid:
        _reject(
            order,
            "mesh_rejected",
            System.MESH,
            "INVALID_SKU",
            "unknown SKU "
            + ", ".join(sorted({order.line(s.line_id).sku for s in invalid if order.line(s.line_id)})),
            [s.line_id for s in invalid],
            at,
            out,
        )
    elif not short:
        _move(order, "reserved", System.MESH, at, out, note="every line reserved")
        if order.status is S.ACCEPTED:
            out.facts.append(Fact("OrderAccepted", System.MESH))
    elif allow_backorder:
        if working is S.RECEIVED:
            _move(
                order,
                "backordered",
                System.MESH,
                at,
                out,
                note="waiting for " + ", ".join(order.waiting_skus),
            )
            out.facts.append(
                Fact("OrderBackordered", System.MESH, {"line_ids": [ln.line_id for ln in short]})
            )
        else:
            journal(order, at, "Reserve", System.MESH, "still short: " + ", ".join(order.waiting_skus))
    else:
        _reject(
            order,
            "mesh_rejected",
            System.MESH,
            "OUT_OF_STOCK",
            "out of stock: " + ", ".join(order.waiting_skus),
            [ln.line_id for ln in short],
            at,
            out,
        )
    return out


def _move(
    order: Order, trigger: str, by: System, at: datetime, out: Outcome, *, caused_by: str = "", note: str = ""
) -> None:
    """Take `trigger`, or, while ON_HOLD, apply it to resume_status (the hold still stops the order)."""
    if order.status is S.ON_HOLD and order.resume_status in RULES[trigger].sources:
        target = RULES[trigger].target
        journal(order, at, trigger, by, f"while on hold: resumes to {target} when released")
        order.resume_status = target
        return
    transition(order, trigger, by, at, out, caused_by=caused_by, note=note)


def _reject(
    order: Order,
    trigger: str,
    by: System,
    reason: str,
    detail: str,
    line_ids: list[str],
    at: datetime,
    out: Outcome,
    *,
    caused_by: str = "",
) -> None:
    if order.status is S.ON_HOLD:
        # A rejection ends the hold: the order cannot go on either way.
        for hold in order.active_holds:
            hold.released_at = at
        order.status, order.resume_status = order.resume_status or order.status, None
    transition(order, trigger, by, at, out, caused_by=caused_by, note=reason)
    order.rejection_reason, order.rejection_detail = reason, detail
    out.facts.append(Fact("OrderRejected", by, {"reason": reason, "detail": detail, "line_ids": line_ids}))
    owner = (
        Owner.FINANCE
        if reason in ("TAX_REJECTED", "CREDIT_LIMIT_EXCEEDED", "PAYMENT_NOT_AUTHORIZED")
        else (Owner.CUSTOMER_SERVICE)
    )
    out.problems.append(Problem(reason, owner, detail))


def stock_available(
    order: Order, sku: str, at: datetime, *, event_id: str = "", retry: bool = False
) -> Outcome:
    """Stock of a SKU the order waits for arrived (the inventory's AvailabilityChanged `event_id`), or
    the backorder reminder fired (`retry`): a new reservation round if still BACKORDERED."""
    out = Outcome()
    if order.status is S.BACKORDERED and sku in order.waiting_skus and not order.reserve_pending:
        order.reserve_round += 1
        order.reserve_pending = True
        touch(order, at)
        if retry:
            journal(order, at, "BackorderRetry", System.MESH, f"still waiting for {sku}: reserving again")
        else:
            journal(
                order,
                at,
                "AvailabilityChanged",
                System.MESH,
                f"{sku} available: reserving again",
                message_id=event_id,
            )
        out.step = "RESERVE"
    return out


# -- ERP ------------------------------------------------------------------------------------------


def erp_created(order: Order, erp_sales_order: dict[str, Any], at: datetime, event_id: str) -> Outcome:
    """The ERP created the sales order: ERP_CREATED, then release when nothing holds the order."""
    out = Outcome()
    if (
        order.erp_sales_order
        and order.status not in (S.ACCEPTED,)
        and not (order.status is S.ON_HOLD and order.resume_status is S.ACCEPTED)
    ):
        journal(order, at, "ErpSalesOrderCreated", System.ERP, "already recorded", "DUPLICATE", event_id)
        return out
    if not (order.status is S.ACCEPTED or (order.status is S.ON_HOLD and order.resume_status is S.ACCEPTED)):
        raise Refused(f"ErpSalesOrderCreated while {order.status}", reason="INVALID_STATUS")
    order.erp_sales_order = erp_sales_order
    touch(order, at)
    _move(order, "erp_created", System.ERP, at, out, caused_by=event_id, note=erp_sales_order.get("name", ""))
    if order.status is S.ERP_CREATED:
        release(order, at, out)
    return out


def erp_rejected(order: Order, reason: str, detail: str, at: datetime, event_id: str) -> Outcome:
    """The ERP refused the order: REJECTED with its reason; an exception opens."""
    out = Outcome()
    working = order.resume_status if order.status is S.ON_HOLD else order.status
    if working is not S.ACCEPTED:
        raise Refused(f"ErpOrderRejected while {order.status}", reason="INVALID_STATUS")
    touch(order, at)
    _reject(order, "erp_rejected", System.ERP, reason, detail, [], at, out, caused_by=event_id)
    return out


# -- release and warehouse ------------------------------------------------------------------------


def release(order: Order, at: datetime, out: Outcome) -> None:
    """Release every reserved, unreleased quantity, one release per location (RELEASED)."""
    order.release_round += 1
    per_location: dict[str, dict[str, int]] = {}
    for line in order.open_lines:
        for loc, qty in line.allocations.items():
            left = qty - line.released.get(loc, 0)
            if left > 0:
                per_location.setdefault(loc, {})[line.line_id] = left
    transition(order, "released", System.MESH, at, out, note=", ".join(sorted(per_location)))
    for loc, lines in sorted(per_location.items()):
        rel = Release(release_id=release_id_for(order, loc), location_id=loc, lines=lines)
        order.releases.append(rel)
        for line_id, qty in lines.items():
            line = order.line(line_id)
            assert line is not None
            line.released[loc] = line.released.get(loc, 0) + qty
        out.facts.append(Fact("OrderReleasedToWarehouse", System.MESH, {"release_id": rel.release_id}))


def _release_of(order: Order, release_id: str) -> Release:
    rel = next((r for r in order.releases if r.release_id == release_id), None)
    if rel is None:
        raise Refused(f"unknown release {release_id}", reason="UNKNOWN_RELEASE")
    return rel


def warehouse_release_accepted(order: Order, release_id: str, at: datetime, event_id: str) -> Outcome:
    """The warehouse took the release: recorded (no status change)."""
    rel = _release_of(order, release_id)
    if rel.state == "SENT":
        rel.state = "ACCEPTED"
    touch(order, at)
    journal(order, at, "WarehouseReleaseAccepted", System.TPL, release_id, message_id=event_id)
    return Outcome()


def warehouse_release_rejected(
    order: Order, release_id: str, code: str, detail: str, at: datetime, event_id: str
) -> Outcome:
    """The warehouse refused a release: ON_HOLD (resume ERP_CREATED) and a warehouse exception."""
    out = Outcome()
    rel = _release_of(order, release_id)
    if rel.state == "REJECTED":
        return out
    rel.state = "REJECTED"
    for line_id, qty in rel.lines.items():
        line = order.line(line_id)
        if line is not None:
            line.released[rel.location_id] = max(0, line.released.get(rel.location_id, 0) - qty)
    touch(order, at)
    out.problems.append(Problem(code or "WAREHOUSE_RELEASE_REJECTED", Owner.WAREHOUSE, detail))
    if order.status is S.RELEASED:
        hold = Hold(
            hold_id=f"h{len(order.holds) + 1}",
            reason="WAREHOUSE_REJECTED",
            note=f"{code}: {detail}"[:2000],
            placed_by=System.TPL,
            placed_at=at,
        )
        order.holds.append(hold)
        order.resume_status = S.ERP_CREATED
        transition(order, "release_rejected", System.TPL, at, out, caused_by=event_id, note=code)
        out.facts.append(Fact("OrderHeld", System.TPL, {"hold_id": hold.hold_id}))
    else:
        journal(
            order,
            at,
            "WarehouseReleaseRejected",
            System.TPL,
            f"{code} in {order.status}",
            "REFUSED",
            event_id,
        )
    return out


def shipment_confirmed(
    order: Order, shipment_id: str, shipped: dict[str, int], at: datetime, event_id: str
) -> Outcome:
    """A shipment left a warehouse: PARTIALLY_SHIPPED or SHIPPED. Physical facts win over holds."""
    out = Outcome()
    if shipment_id in order.shipments:
        journal(order, at, "ShipmentConfirmed", System.TPL, shipment_id, "DUPLICATE", event_id)
        return out
    if order.status not in (S.RELEASED, S.PARTIALLY_SHIPPED, S.CANCEL_REQUESTED, S.ON_HOLD):
        raise Refused(f"ShipmentConfirmed while {order.status}", reason="INVALID_STATUS")
    order.shipments.append(shipment_id)
    lines = []
    for line_id, qty in shipped.items():
        line = order.line(line_id)
        if line is None:
            out.problems.append(
                Problem(
                    "UNKNOWN_LINE_SHIPPED", Owner.WAREHOUSE, f"{shipment_id} ships unknown line {line_id}"
                )
            )
            continue
        line.quantity_shipped = min(line.open_quantity, line.quantity_shipped + qty)
        lines.append({"line_id": line_id, "sku": line.sku, "quantity": qty})
    touch(order, at)
    if order.status is S.ON_HOLD:
        # Goods left while held (a warehouse shipped despite the rejection): the shipment wins.
        for hold in order.active_holds:
            hold.released_at = at
        order.status = S.RELEASED
    complete = all(line.to_ship == 0 for line in order.lines)
    data = {"shipment_id": shipment_id, "lines": lines}
    if complete:
        transition(order, "shipped", System.TPL, at, out, caused_by=event_id, note=shipment_id)
        out.facts.append(Fact("OrderShipped", System.TPL, data))
        if order.final_invoice_seen:
            transition(order, "invoiced", System.ERP, at, out, note="final invoice posted earlier")
            out.facts.append(Fact("OrderInvoiced", System.ERP))
    else:
        if order.status is not S.PARTIALLY_SHIPPED:
            if order.status is S.CANCEL_REQUESTED:
                order.resume_status = S.PARTIALLY_SHIPPED
                journal(
                    order, at, "ShipmentConfirmed", System.TPL, f"{shipment_id} while cancellation pending"
                )
            else:
                transition(
                    order, "partially_shipped", System.TPL, at, out, caused_by=event_id, note=shipment_id
                )
        out.facts.append(Fact("OrderPartiallyShipped", System.TPL, data))
    return out


def invoice_posted(
    order: Order, invoice: dict[str, Any], total: dict[str, Any], final: bool, at: datetime, event_id: str
) -> Outcome:
    """The ERP posted an invoice; the final one completes a shipped order (INVOICED)."""
    out = Outcome()
    if any(i.get("id") == invoice.get("id") for i in order.invoices):
        return out
    order.invoices.append(invoice)
    order.invoice_total = total
    touch(order, at)
    journal(
        order,
        at,
        "ErpInvoicePosted",
        System.ERP,
        invoice.get("name", "") + (" (final)" if final else ""),
        message_id=event_id,
    )
    if final:
        order.final_invoice_seen = True
        if order.status is S.SHIPPED:
            transition(order, "invoiced", System.ERP, at, out, caused_by=event_id)
            out.facts.append(Fact("OrderInvoiced", System.ERP))
    return out


# -- holds ----------------------------------------------------------------------------------------


def place_hold(order: Order, reason: str, by: System, note: str, at: datetime, request_id: str) -> Outcome:
    """Place a hold: ON_HOLD, remembering where to resume. A second hold adds to the first."""
    out = Outcome()
    if order.status is not S.ON_HOLD and not allowed("hold", order.status, by):
        raise Refused(
            f"a hold is not allowed while the order is {order.status} (or by {by})", reason="INVALID_STATUS"
        )
    hold = Hold(hold_id=f"h{len(order.holds) + 1}", reason=reason, note=note, placed_by=by, placed_at=at)
    order.holds.append(hold)
    touch(order, at)
    if order.status is not S.ON_HOLD:
        order.resume_status = order.status
        transition(order, "hold", by, at, out, caused_by=request_id, note=reason)
    out.facts.append(Fact("OrderHeld", by, {"hold_id": hold.hold_id}))
    out.reply = {"hold_id": hold.hold_id}
    return out


def release_hold(order: Order, hold_id: str, by: System, note: str, at: datetime, request_id: str) -> Outcome:
    """Release a hold (by its placer or an operator); the last one resumes resume_status."""
    out = Outcome()
    hold = next((h for h in order.holds if h.hold_id == hold_id), None)
    if hold is None:
        raise Invalid("hold_id", f"no hold {hold_id} on order {order.order_id}")
    if hold.released_at is not None:
        raise Refused(f"hold {hold_id} is already released", reason="HOLD_RELEASED")
    if by not in (hold.placed_by, System.OPERATOR):
        raise Refused(
            f"hold {hold_id} was placed by {hold.placed_by}; only it or an operator releases it",
            reason="NOT_OWNER",
        )
    hold.released_at = at
    touch(order, at)
    if not order.active_holds and order.status is S.ON_HOLD:
        transition(order, "hold_released", by, at, out, caused_by=request_id, note=note or hold.reason)
        resumed = order.status
        if resumed is S.ERP_CREATED:
            release(order, at, out)
        elif resumed is S.RECEIVED and not order.reserve_pending and order.reserve_round == 0:
            order.reserve_pending = True
            out.step = "RESERVE"
        elif resumed in (S.RECEIVED, S.BACKORDERED) and order.reserve_pending:
            out.step = "RESERVE"
    out.facts.append(Fact("OrderHoldReleased", by, {"hold_id": hold_id}))
    return out


# -- cancellation ---------------------------------------------------------------------------------


def cancel(order: Order, reason: str, by: System, at: datetime, request_id: str) -> Outcome:
    """Cancel the whole order: CANCELLED before release, CANCEL_REQUESTED (ask the 3PL) after."""
    out = Outcome()
    if order.status is S.CANCELLED or order.status is S.CANCEL_REQUESTED:
        return out
    if allowed("cancelled", order.status, by):
        for line in order.lines:
            line.quantity_cancelled = line.quantity - line.quantity_shipped
        transition(order, "cancelled", by, at, out, caused_by=request_id, note=reason)
        order.reserve_pending = False
        for hold in order.active_holds:
            hold.released_at = at
        out.facts.append(Fact("OrderCancelled", by, {"reason": reason}))
    elif allowed("cancel_requested", order.status, by):
        order.resume_status = order.status
        transition(order, "cancel_requested", by, at, out, caused_by=request_id, note=reason)
        for rel in order.releases:
            if rel.state in ("SENT", "ACCEPTED"):
                rel.state = "CANCEL_REQUESTED"
                for line_id in rel.lines:
                    line = order.line(line_id)
                    if line is not None:
                        line.cancel_requested = line.to_ship
                out.facts.append(
                    Fact(
                        "OrderCancellationRequested",
                        by,
                        {"release_id": rel.release_id, "whole_release": True, "lines": [], "reason": reason},
                    )
                )
    else:
        raise Refused(
            f"cancellation is not allowed while the order is {order.status} (or by {by})",
            reason="INVALID_STATUS",
        )
    touch(order, at)
    return out


def cancel_lines(
    order: Order,
    wanted: dict[str, int],
    reason: str,
    by: System,
    at: datetime,
    request_id: str,
    channel_updated_at: datetime | None = None,
) -> Outcome:
    """Cancel quantities of lines: at once before release, through the warehouse after."""
    out = Outcome()
    if by not in ANY_CHANNEL:
        raise Refused(f"{by} may not cancel lines", reason="NOT_OWNER")
    if channel_updated_at and order.channel_updated_at and channel_updated_at < order.channel_updated_at:
        journal(order, at, "CancelOrderLines", by, "stale channel edit ignored", "STALE", request_id)
        touch(order, at)
        out.reply = {"stale": True}
        return out
    for line_id, qty in wanted.items():
        line = order.line(line_id)
        if line is None:
            raise Invalid("lines", f"order {order.order_id} has no line {line_id}")
        if qty > line.to_ship - line.cancel_requested:
            raise Invalid(
                "lines", f"line {line_id} has only {line.to_ship - line.cancel_requested} open to cancel"
            )
    if order.status in TERMINAL or order.status is S.SHIPPED:
        raise Refused(f"lines cannot be cancelled while the order is {order.status}", reason="INVALID_STATUS")
    if order.status in PRE_RELEASE:
        cancelled = []
        for line_id, qty in wanted.items():
            line = order.line(line_id)
            assert line is not None
            line.quantity_cancelled += qty
            _trim_allocations(line)
            cancelled.append({"line_id": line_id, "sku": line.sku, "quantity": qty})
        out.facts.append(Fact("OrderLinesCancelled", by, {"lines": cancelled, "reason": reason}))
        if not order.open_lines:
            transition(order, "cancelled", by, at, out, caused_by=request_id, note="last line cancelled")
            out.facts.append(Fact("OrderCancelled", by, {"reason": reason}))
        elif order.status is S.BACKORDERED and all(line.short == 0 for line in order.open_lines):
            transition(order, "reserved", System.MESH, at, out, note="short lines cancelled")
            out.facts.append(Fact("OrderAccepted", System.MESH))
    else:
        per_release: dict[str, list[dict[str, Any]]] = {}
        for line_id, qty in wanted.items():
            line = order.line(line_id)
            assert line is not None
            left = qty
            for rel in order.releases:
                if left and rel.state in ("SENT", "ACCEPTED", "CANCEL_REQUESTED") and line_id in rel.lines:
                    take = min(left, rel.lines[line_id])
                    per_release.setdefault(rel.release_id, []).append(
                        {"line_id": line_id, "sku": line.sku, "quantity": take}
                    )
                    left -= take
            line.cancel_requested += qty
        if order.status is not S.CANCEL_REQUESTED:
            order.resume_status = order.status
            transition(order, "cancel_requested", by, at, out, caused_by=request_id, note=reason)
        for release_id, lines in per_release.items():
            out.facts.append(
                Fact(
                    "OrderCancellationRequested",
                    by,
                    {"release_id": release_id, "lines": lines, "whole_release": False, "reason": reason},
                )
            )
    touch(order, at)
    return out


def _trim_allocations(line: Line) -> None:
    """Give back reservations beyond the open quantity (inventory releases on OrderLinesCancelled)."""
    excess = line.reserved - line.open_quantity
    for loc in sorted(line.allocations, reverse=True):
        if excess <= 0:
            break
        take = min(excess, line.allocations[loc])
        line.allocations[loc] -= take
        excess -= take
    line.allocations = {k: v for k, v in line.allocations.items() if v > 0}


def warehouse_cancellation_accepted(
    order: Order, release_id: str, lines: dict[str, int], at: datetime, event_id: str
) -> Outcome:
    """The warehouse cancelled (part of) a release: CANCELLED, SHIPPED (rest shipped) or back to resume."""
    out = Outcome()
    rel = _release_of(order, release_id)
    if rel.state == "CANCELLED":
        return out
    cancelled = []
    todo = lines or {
        line_id: (order.line(line_id) or Line(line_id="", sku="", quantity=0)).cancel_requested
        for line_id in rel.lines
    }
    for line_id, qty in todo.items():
        line = order.line(line_id)
        if line is None or qty <= 0:
            continue
        qty = min(qty, line.to_ship)
        line.quantity_cancelled += qty
        line.cancel_requested = max(0, line.cancel_requested - qty)
        line.released[rel.location_id] = max(0, line.released.get(rel.location_id, 0) - qty)
        _trim_allocations(line)
        if qty:
            cancelled.append({"line_id": line_id, "sku": line.sku, "quantity": qty})
    if not lines or all(order.line(lid) is None or order.line(lid).to_ship == 0 for lid in rel.lines):
        rel.state = "CANCELLED"
    touch(order, at)
    journal(order, at, "WarehouseCancellationAccepted", System.TPL, release_id, message_id=event_id)
    if order.status is not S.CANCEL_REQUESTED:
        if cancelled:
            out.facts.append(Fact("OrderLinesCancelled", System.TPL, {"lines": cancelled, "reason": "OTHER"}))
        if order.status is S.PARTIALLY_SHIPPED and all(line.to_ship == 0 for line in order.lines):
            transition(order, "shipped", System.TPL, at, out, caused_by=event_id, note="rest cancelled")
        return out
    pending = any(line.cancel_requested > 0 for line in order.lines)
    nothing_shipped = all(line.quantity_shipped == 0 for line in order.lines)
    if not order.open_lines or (nothing_shipped and all(line.to_ship == 0 for line in order.lines)):
        transition(order, "cancel_accepted", System.TPL, at, out, caused_by=event_id)
        out.facts.append(Fact("OrderCancelled", System.TPL, {"reason": "OTHER"}))
    elif all(line.to_ship == 0 for line in order.lines):
        transition(order, "cancel_accepted_rest_shipped", System.TPL, at, out, caused_by=event_id)
        out.facts.append(Fact("OrderLinesCancelled", System.TPL, {"lines": cancelled, "reason": "OTHER"}))
    else:
        if cancelled:
            out.facts.append(Fact("OrderLinesCancelled", System.TPL, {"lines": cancelled, "reason": "OTHER"}))
        if not pending:
            transition(order, "cancel_accepted_lines", System.TPL, at, out, caused_by=event_id)
    return out


def warehouse_cancellation_rejected(
    order: Order, release_id: str, code: str, detail: str, at: datetime, event_id: str
) -> Outcome:
    """The warehouse refused a cancellation: back to resume_status (a shipment already won), exception."""
    out = Outcome()
    rel = _release_of(order, release_id)
    if rel.state == "CANCEL_REQUESTED":
        rel.state = "ACCEPTED"
    for line_id in rel.lines:
        line = order.line(line_id)
        if line is not None:
            line.cancel_requested = 0
    touch(order, at)
    out.problems.append(
        Problem(
            code or "CANCELLATION_REJECTED",
            Owner.CUSTOMER_SERVICE,
            f"warehouse refused to cancel {release_id}: {detail}",
        )
    )
    if order.status is S.CANCEL_REQUESTED:
        transition(order, "cancel_rejected", System.TPL, at, out, caused_by=event_id, note=code)
        if order.status is S.PARTIALLY_SHIPPED and all(line.to_ship == 0 for line in order.lines):
            transition(order, "shipped", System.TPL, at, out, caused_by=event_id)
    else:
        journal(
            order,
            at,
            "WarehouseCancellationRejected",
            System.TPL,
            f"{code}: order stays {order.status}",
            "REFUSED",
            event_id,
        )
    return out


def warehouse_address_updated(order: Order, release_id: str, at: datetime, event_id: str) -> Outcome:
    """The warehouse changed the address of a release's unpicked shipments: recorded."""
    _release_of(order, release_id)
    touch(order, at)
    journal(
        order,
        at,
        "WarehouseAddressUpdated",
        System.TPL,
        f"{release_id}: address updated",
        message_id=event_id,
    )
    return Outcome()


def warehouse_address_rejected(
    order: Order, release_id: str, code: str, detail: str, at: datetime, event_id: str
) -> Outcome:
    """The warehouse refused an address correction (picked or shipped): recorded, an exception opens."""
    out = Outcome()
    _release_of(order, release_id)
    touch(order, at)
    journal(
        order,
        at,
        "WarehouseAddressUpdateRejected",
        System.TPL,
        f"{release_id}: {code or 'REFUSED'}: {detail}",
        "REFUSED",
        event_id,
    )
    out.problems.append(
        Problem(
            "ADDRESS_CORRECTION_REFUSED",
            Owner.CUSTOMER_SERVICE,
            f"warehouse refused the address correction of {release_id}: {code}: {detail}",
        )
    )
    return out


# -- address, replay, replacement -----------------------------------------------------------------


def correct_address(
    order: Order,
    address: dict[str, Any],
    by: System,
    at: datetime,
    request_id: str,
    channel_updated_at: datetime | None = None,
) -> Outcome:
    """Correct the shipping address: before release freely, after release through the warehouses;
    after shipment refused and recorded (the reply says so)."""
    out = Outcome()
    if channel_updated_at and order.channel_updated_at and channel_updated_at < order.channel_updated_at:
        journal(order, at, "CorrectAddress", by, "stale channel change ignored", "STALE", request_id)
        touch(order, at)
        out.reply = {"stale": True}
        return out
    if order.status in PRE_RELEASE or order.status is S.RELEASED:
        release_ids = [r.release_id for r in order.releases if r.state in ("SENT", "ACCEPTED")]
        order.shipping_address = address
        touch(order, at)
        journal(
            order,
            at,
            "CorrectAddress",
            by,
            "address corrected" + (" (warehouses told)" if release_ids else ""),
            message_id=request_id,
        )
        out.facts.append(Fact("OrderAddressCorrected", by, {"release_ids": release_ids}))
        out.reply = {"warehouse_update_required": bool(release_ids)}
        return out
    journal(order, at, "CorrectAddress", by, f"refused: the order is {order.status}", "REFUSED", request_id)
    touch(order, at)
    out.problems.append(
        Problem(
            "ADDRESS_CORRECTION_REFUSED",
            Owner.CUSTOMER_SERVICE,
            f"address correction asked while {order.status}",
        )
    )
    out.reply = {"refused": f"the address cannot be corrected while the order is {order.status}"}
    return out


REPLAY_STEPS = (
    "REPLAY_STEP_RESERVE",
    "REPLAY_STEP_ERP_CREATE",
    "REPLAY_STEP_WAREHOUSE_RELEASE",
    "REPLAY_STEP_WAREHOUSE_CANCEL",
)


def replay(order: Order, step: str | None, note: str, at: datetime, request_id: str) -> Outcome:
    """An operator re-drives a step after a fix; REJECTED goes back to RECEIVED and reserves again."""
    out = Outcome()
    natural = {
        S.REJECTED: "REPLAY_STEP_RESERVE",
        S.RECEIVED: "REPLAY_STEP_RESERVE",
        S.BACKORDERED: "REPLAY_STEP_RESERVE",
        S.ACCEPTED: "REPLAY_STEP_ERP_CREATE",
        S.ERP_CREATED: "REPLAY_STEP_WAREHOUSE_RELEASE",
        S.RELEASED: "REPLAY_STEP_WAREHOUSE_RELEASE",
        S.CANCEL_REQUESTED: "REPLAY_STEP_WAREHOUSE_CANCEL",
    }.get(order.status)
    step = step or natural
    if step is None or step != natural:
        raise Refused(
            f"nothing to replay as {step or 'the current step'} while the order is {order.status}",
            reason="INVALID_STATUS",
        )
    if step == "REPLAY_STEP_RESERVE":
        if order.status is S.REJECTED:
            transition(order, "replayed", System.OPERATOR, at, out, caused_by=request_id, note=note)
            for line in order.lines:
                line.allocations = {}
        order.reserve_round += 1
        order.reserve_pending = True
        out.step = "RESERVE"
    elif step == "REPLAY_STEP_ERP_CREATE":
        out.facts.append(Fact("OrderAccepted", System.MESH))
    elif step == "REPLAY_STEP_WAREHOUSE_RELEASE":
        if order.status is S.ERP_CREATED:
            release(order, at, out)
        else:
            for rel in order.releases:
                if rel.state in ("SENT", "ACCEPTED"):
                    out.facts.append(
                        Fact("OrderReleasedToWarehouse", System.MESH, {"release_id": rel.release_id})
                    )
    else:
        for rel in order.releases:
            if rel.state == "CANCEL_REQUESTED":
                lines = [
                    {"line_id": lid, "sku": order.line(lid).sku, "quantity": order.line(lid).cancel_requested}
                    for lid in rel.lines
                    if order.line(lid) and order.line(lid).cancel_requested
                ]
                out.facts.append(
                    Fact(
                        "OrderCancellationRequested",
                        System.OPERATOR,
                        {
                            "release_id": rel.release_id,
                            "lines": lines,
                            "whole_release": not lines,
                            "reason": "OTHER",
                        },
                    )
                )
    touch(order, at)
    journal(order, at, "ReplayOrder", System.OPERATOR, f"{step}: {note}", message_id=request_id)
    out.facts.append(Fact("OrderReplayed", System.OPERATOR, {"step": step, "note": note}))
    out.reply = {"step": step}
    return out


def replacement_id(original: Order) -> str:
    """Id of the next replacement of `original`, deterministic (`<original>.r1`)."""
    n = len(original.replacements) + 1
    candidate = f"{original.order_id}.r{n}"
    return candidate if len(candidate) <= 64 else f"{original.order_id[:56]}.r{n}"


def plan_replacement(
    original: Order, wanted: list[tuple[str, int, str]], address: dict[str, Any] | None, at: datetime
) -> Order:
    """Build the replacement of `original` for (line_id, quantity, sku or '') and link it.

    Raises:
        Invalid: a line is unknown or more than its shipped quantity is asked.
        Refused: nothing has shipped yet.
    """
    if original.status not in (S.SHIPPED, S.INVOICED, S.PARTIALLY_SHIPPED):
        raise Refused(
            f"only shipped goods are replaced; the order is {original.status}", reason="INVALID_STATUS"
        )
    lines = []
    for line_id, qty, sku in wanted:
        line = original.line(line_id)
        if line is None:
            raise Invalid("lines", f"order {original.order_id} has no line {line_id}")
        if qty > line.quantity_shipped:
            raise Invalid("lines", f"line {line_id} shipped {line.quantity_shipped}, cannot replace {qty}")
        zero = {"minor_units": "0", "currency": line.unit_price.get("currency", "USD")}
        lines.append(
            Line(line_id=line_id, sku=sku or line.sku, title=line.title, quantity=qty, unit_price=zero)
        )
    new_id = replacement_id(original)
    original.replacements.append(new_id)
    touch(original, at)
    journal(original, at, "CreateReplacementOrder", System.OPERATOR, f"replaced by {new_id}")
    return Order(
        order_id=new_id,
        channel="replacement",
        channel_order=original.channel_order,
        customer=original.customer,
        lines=lines,
        shipping_address=address or original.shipping_address,
        shipping_method=original.shipping_method,
        payment_status=original.payment_status,
        placed_at=at,
        channel_updated_at=None,
        replacement_of_order_id=original.order_id,
    )


def create_replacement(order: Order, at: datetime) -> tuple[Order, Outcome]:
    """Start a replacement order at RECEIVED (it reserves like any order)."""
    order, out = ingest(None, order, at)
    order.history[-1].source = System.OPERATOR
    order.history[-1].note = f"replaces {order.replacement_of_order_id}"
    out.facts = [
        Fact("OrderReceived", System.OPERATOR),
        Fact("OrderStatusChanged", System.OPERATOR, {"change": order.history[-1]}),
        Fact("OrderReplacementCreated", System.OPERATOR),
    ]
    return order, out
