"""OrderActor: applies one command or fact per turn to one order, saves it, and stages its events.

Each turn runs in one transaction (libs.actors): the actor state, the `order_summary` read model,
the request reply, the exceptions and the outbox rows commit together or not at all.

Calls to the inventory service never run inside a turn (on SQLite a turn holds the single writer
lock): a turn that needs a reservation sets `reserve_pending`, a durable reminder, and after
commit starts `ReserveStep` outside the turn; its answer comes back as a `ReserveResult`
message (a second turn). If the process dies in between, the reminder re-drives the step with the
same request id, so the inventory service answers the first result again.

A consumed fact about one order (`ApplyFact`) is applied in the turn that also claims its delivery
(the bus's inbox row and hop row, `libs.bus.Subscription.runner`): one commit per fact. Facts that
concern several orders (a SKU back in stock) are staged in `order_inbound` and applied by `Drain`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from google.protobuf.message import Message
from pydantic import BaseModel
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.actors import Actor, Reminder, Turn
from libs.bus import Outbox, Unit
from libs.store import Compiled, Database, after_commit
from libs.telemetry import capture_flow, correlation_id, resume_flow
from services.orders.domain import machine
from services.orders.domain.machine import Invalid, Outcome, Refused, Shortage
from services.orders.domain.order import Order, Status, System
from services.orders.events.mapping import to_event
from services.orders.store.tables import (
    OrderBackorder,
    OrderException,
    OrderInbound,
    OrderRequest,
    OrderSummary,
)

log = logging.getLogger(__name__)
KIND = "order"

# Statements of every turn, built once on the tables and run as compiled statements
# (libs.store.Compiled; see `_save_summary`).
_SUMMARY = OrderSummary.__table__
_SUMMARY_STATUS = Compiled(select(_SUMMARY.c.status).where(_SUMMARY.c.order_id == bindparam("b_order_id")))
_INSERT_SUMMARY = Compiled(insert(_SUMMARY))
_UPDATE_SUMMARY = Compiled(update(_SUMMARY).where(_SUMMARY.c.order_id == bindparam("b_order_id")))
_REQUEST = OrderRequest.__table__
_STORED_REPLY = Compiled(
    select(_REQUEST.c.reply_json).where(_REQUEST.c.request_id == bindparam("b_request_id"))
)
_INSERT_REQUEST = Compiled(insert(_REQUEST))
_INBOUND_TABLE = OrderInbound.__table__
_INBOUND = Compiled(
    select(
        _INBOUND_TABLE.c.id, _INBOUND_TABLE.c.event_id, _INBOUND_TABLE.c.event_type, _INBOUND_TABLE.c.payload
    )
    .where(_INBOUND_TABLE.c.order_id == bindparam("b_order_id"))
    .order_by(_INBOUND_TABLE.c.id)
)
_TAKE_INBOUND = delete(_INBOUND_TABLE).where(_INBOUND_TABLE.c.id.in_(bindparam("b_ids", expanding=True)))


async def read_stored_reply(db: Database, request_id: str) -> dict[str, Any] | None:
    """`stored_reply` as a read of its own (`Database.fetch`), outside any transaction."""
    reply_json = (await db.fetch(_STORED_REPLY, {"b_request_id": request_id})).scalar()
    return None if reply_json is None else json.loads(reply_json)


async def stored_reply(session: AsyncSession, request_id: str) -> dict[str, Any] | None:
    """The reply a request already got, or None: repeating a request returns its first result."""
    reply_json = (await session.execute(_STORED_REPLY, {"b_request_id": request_id})).scalar()
    return None if reply_json is None else json.loads(reply_json)


class OrderState(BaseModel):
    """The actor's state: the order, or None before it exists, and the flow it belongs to.

    `flow` is the correlation id and trace context of the order's first ingest; every later turn
    runs inside it, so every event and call of the order continues one trace (MISSION V1).
    """

    order: Order | None = None
    flow: dict[str, str] = {}


class VersionMismatch(Exception):
    """expected_version given and the order is at another version (ABORTED)."""


class UnknownOrder(Exception):
    """The order does not exist (NOT_FOUND)."""


@dataclass
class Command:
    """An RPC command for one order.

    Attributes:
        rpc: the RPC name (stored with the reply).
        request_id: idempotency key; a repeat returns the first reply.
        apply: the domain operation, `(order, now) -> Outcome`.
        expected_version: 0 = do not check.
    """

    rpc: str
    request_id: str
    apply: Callable[[Order, datetime], Outcome]
    expected_version: int = 0


@dataclass
class Ingest:
    """IngestOrder: a channel version of the order (create or update), with the caller's flow."""

    request_id: str
    order: Order
    flow: dict[str, str] = field(default_factory=dict)


@dataclass
class CreateReplacement:
    """Create this order as the replacement built by the original's actor (idempotent)."""

    order: Order


@dataclass
class Drain:
    """Apply the facts waiting in `order_inbound` for this order."""


#: Applies one consumed event to an order: `(order, event, event_id, now) -> Outcome`.
FactApplier = Callable[[Order, Message, str, datetime], Outcome]
#: A fact to apply: its event type, its event id, and how to decode it into (event, applier).
_Fact = tuple[str, str, Callable[[], tuple[Message, FactApplier]]]


@dataclass
class ApplyFact:
    """Apply one consumed fact, claiming its delivery in the same turn.

    Attributes:
        event_type: the event's full protobuf name.
        event: the decoded event.
        apply: the domain applier of its type.
        event_id: the event's id (the journal's and the outbox's causation).
        unit: the delivery's unit of work (inbox claim and hop row), run first in
            the turn's session: a redelivery raises `DuplicateEvent` there and the turn commits
            nothing.
    """

    event_type: str
    event: Message
    apply: FactApplier
    event_id: str
    unit: Unit


@dataclass
class ReserveResult:
    """What inventory answered to the reservation round `round`."""

    round: int
    allocations: dict[str, dict[str, int]]
    shortages: list[Shortage] = field(default_factory=list)


@dataclass
class ReserveRequest:
    """What the out-of-turn reserve step sends to inventory."""

    order_id: str
    request_id: str
    round: int
    channel: str
    lines: list[tuple[str, str, int]]
    destination: dict[str, Any]
    allow_partial: bool


#: Runs a reservation against the inventory service and returns the result, or raises.
Reserver = Callable[[ReserveRequest], Awaitable[ReserveResult]]


class OrderActor(Actor[OrderState]):
    """The order actor (kind `order`, key = order id).

    Args:
        outbox: the service's outbox (`EventBus.outbox`).
        reserver: calls InventoryService.Reserve (outside turns).
        decode_fact: turns an `order_inbound` row (type, payload) into an applier call.
        backorder_channels: channels whose orders wait for stock instead of being rejected.
        reserve_retry_s: when a pending reservation is re-driven if no answer came.
        backorder_retry_s: how often a backordered order tries again without a stock signal.
    """

    kind = KIND
    state_type = OrderState

    def __init__(
        self,
        outbox: Outbox,
        reserver: Reserver,
        decode_fact: Callable[[str, bytes], tuple[Message, FactApplier]],
        *,
        backorder_channels: frozenset[str] = frozenset({"online-store"}),
        reserve_retry_s: float = 10.0,
        backorder_retry_s: float = 60.0,
    ) -> None:
        self.outbox = outbox
        self.reserver = reserver
        self.decode_fact = decode_fact
        self.backorder_channels = backorder_channels
        self.reserve_retry_s = reserve_retry_s
        self.backorder_retry_s = backorder_retry_s
        self.send: Callable[[str, Any], Awaitable[Any]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def bind(self, send: Callable[[str, Any], Awaitable[Any]]) -> None:
        """Give the actor a way to message itself (`runtime.ref(KIND, key).ask`), for step results."""
        self.send = send

    async def close(self) -> None:
        """Cancel reserve steps still running (their reminders re-drive them after restart)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- turns ------------------------------------------------------------------------------------

    async def receive(self, message: Any, ctx: Turn[OrderState]) -> Any:
        """Apply one message inside the order's flow; the reply is what the RPC returns or None."""
        if ctx.state.flow:
            with resume_flow(ctx.state.flow):
                return await self._dispatch(message, ctx)
        # The turn runs in the actor's task, not the caller's: the flow comes with the message.
        flow = message.flow if isinstance(message, Ingest) and message.flow else capture_flow()
        with resume_flow(flow):
            reply = await self._dispatch(message, ctx)
        if ctx.state.order is not None:
            ctx.state.flow = flow
        return reply

    async def _dispatch(self, message: Any, ctx: Turn[OrderState]) -> Any:
        if isinstance(message, Ingest):
            return await self._ingest(message, ctx)
        if isinstance(message, Command):
            return await self._command(message, ctx)
        if isinstance(message, ApplyFact):
            return await self._apply_fact(message, ctx)
        if isinstance(message, Drain):
            return await self._drain(ctx)
        if isinstance(message, ReserveResult):
            return await self._reserve_result(message, ctx)
        if isinstance(message, CreateReplacement):
            return await self._create_replacement(message, ctx)
        if isinstance(message, Reminder):
            return await self._reminder(message, ctx)
        raise TypeError(f"OrderActor cannot handle {type(message).__name__}")

    async def _ingest(self, msg: Ingest, ctx: Turn[OrderState]) -> dict[str, Any]:
        stored = await stored_reply(ctx.session, msg.request_id)
        if stored is not None:
            return stored
        order, out = machine.ingest(ctx.state.order, msg.order, ctx.now(), request_id=msg.request_id)
        if not order.correlation_id:
            order.correlation_id = correlation_id.get() or ""
        ctx.state.order = order
        return await self._commit(ctx, out, rpc="IngestOrder", request_id=msg.request_id)

    async def _command(self, cmd: Command, ctx: Turn[OrderState]) -> dict[str, Any]:
        stored = await stored_reply(ctx.session, cmd.request_id)
        if stored is not None:
            return stored
        order = ctx.state.order
        if order is None:
            raise UnknownOrder(f"no order {ctx.key}")
        if cmd.expected_version and cmd.expected_version != order.version:
            raise VersionMismatch(
                f"order {ctx.key} is at version {order.version}, not {cmd.expected_version}"
            )
        out = cmd.apply(order, ctx.now())
        return await self._commit(ctx, out, rpc=cmd.rpc, request_id=cmd.request_id)

    async def _create_replacement(self, msg: CreateReplacement, ctx: Turn[OrderState]) -> dict[str, Any]:
        if ctx.state.order is not None:
            return {"order": ctx.state.order.model_dump(mode="json")}
        order, out = machine.create_replacement(msg.order, ctx.now())
        ctx.state.order = order
        return await self._commit(ctx, out)

    async def _apply_fact(self, msg: ApplyFact, ctx: Turn[OrderState]) -> None:
        await msg.unit(ctx.session)
        await self._apply_facts(ctx, [(msg.event_type, msg.event_id, lambda: (msg.event, msg.apply))])

    async def _drain(self, ctx: Turn[OrderState]) -> None:
        rows = (await ctx.session.execute(_INBOUND, {"b_order_id": ctx.key})).all()
        if not rows:
            return
        await ctx.session.execute(_TAKE_INBOUND, {"b_ids": [row.id for row in rows]})
        await self._apply_facts(
            ctx,
            [
                (row.event_type, row.event_id, partial(self.decode_fact, row.event_type, row.payload))
                for row in rows
            ],
        )

    async def _apply_facts(self, ctx: Turn[OrderState], facts: list[_Fact]) -> None:
        """Apply facts in order; one refused or not applicable leaves the order as it was before
        it, and a fact for an order that does not exist is an exception of its own."""
        combined = Outcome()
        for event_type, event_id, decode in facts:
            if ctx.state.order is None:
                combined.problems.append(
                    machine.Problem(
                        "UNKNOWN_ORDER", machine.Owner.CUSTOMER_SERVICE, f"{event_type} for unknown order"
                    )
                )
                continue
            # Rebuilt only if the fact is refused: a dump costs about half a copy, and facts are
            # seldom refused.
            before = ctx.state.order.model_dump()
            try:
                event_msg, apply = decode()
                out = apply(ctx.state.order, event_msg, event_id, ctx.now())
            except Refused as refused:
                ctx.state.order = Order.model_validate(before)
                machine.journal(
                    ctx.state.order,
                    ctx.now(),
                    event_type.rsplit(".", 1)[-1],
                    System.MESH,
                    refused.message,
                    "REFUSED",
                    event_id,
                )
                machine.touch(ctx.state.order, ctx.now())
                continue
            except (Invalid, ValueError, KeyError) as error:
                ctx.state.order = Order.model_validate(before)
                combined.problems.append(
                    machine.Problem(
                        "EVENT_NOT_APPLICABLE", machine.Owner.CUSTOMER_SERVICE, f"{event_type}: {error}"
                    )
                )
                continue
            await self._stage(ctx, out)
            combined.problems += out.problems
            combined.step = combined.step or out.step
        if ctx.state.order is None:
            # No order to save: the exceptions alone (and the delivery's claim, when there is one).
            await self._record_problems(ctx, combined)
            return
        await self._commit(ctx, Outcome(problems=combined.problems, step=combined.step), answer=False)

    async def _reserve_result(self, msg: ReserveResult, ctx: Turn[OrderState]) -> None:
        order = ctx.state.order
        if order is None:
            return
        out = machine.reservation_result(
            order,
            msg.round,
            msg.allocations,
            msg.shortages,
            ctx.now(),
            allow_backorder=order.channel in self.backorder_channels,
        )
        if not order.reserve_pending:
            ctx.cancel_reminder("reserve")
        await self._commit(ctx, out, answer=False)

    async def _reminder(self, msg: Reminder, ctx: Turn[OrderState]) -> None:
        order = ctx.state.order
        if order is None:
            return
        out = Outcome()
        if msg.name == "reserve" and order.reserve_pending:
            out.step = "RESERVE"
        elif msg.name == "backorder" and order.status is Status.BACKORDERED:
            out = (
                machine.stock_available(order, order.waiting_skus[0], ctx.now(), retry=True)
                if order.waiting_skus
                else out
            )
        await self._commit(ctx, out, answer=False)

    # -- the end of every turn ------------------------------------------------------------------------

    async def _stage(self, ctx: Turn[OrderState], out: Outcome) -> None:
        """Add the outcome's events to the outbox (this turn's transaction)."""
        order = ctx.state.order
        assert order is not None
        for fact in out.facts:
            await self.outbox.add(ctx.session, to_event(order, fact), key=order.order_id)
        out.facts = []

    async def _record_problems(self, ctx: Turn[OrderState], out: Outcome) -> None:
        for problem in out.problems:
            ctx.session.add(
                OrderException(
                    order_id=ctx.key,
                    reason_code=problem.reason_code,
                    owner=problem.owner.value,
                    detail=problem.detail[:4000],
                    created_at=ctx.now(),
                )
            )

    async def _commit(
        self,
        ctx: Turn[OrderState],
        out: Outcome,
        *,
        rpc: str | None = None,
        request_id: str | None = None,
        answer: bool = True,
    ) -> dict[str, Any]:
        """Stage the turn's events, exceptions, summary and reminders; the reply if `answer`.

        A turn no caller awaits an answer from (a fact, a reservation result, a reminder) passes
        `answer=False`: the order is then not dumped a third time for a reply nobody reads.
        """
        order = ctx.state.order
        assert order is not None
        await self._stage(ctx, out)
        await self._record_problems(ctx, out)
        await self._save_summary(ctx.session, order)
        reply = {**out.reply, "order": order.model_dump(mode="json")} if answer or rpc is not None else {}
        if rpc is not None and request_id is not None:
            await ctx.session.execute(
                _INSERT_REQUEST,
                {
                    "request_id": request_id,
                    "rpc": rpc,
                    "order_id": order.order_id,
                    "reply_json": json.dumps(reply),
                    "created_at": ctx.now(),
                },
            )
        if order.status is Status.BACKORDERED:
            ctx.set_reminder("backorder", due_in=self.backorder_retry_s)
        if out.step == "RESERVE" and order.reserve_pending:
            ctx.set_reminder("reserve", due_in=self.reserve_retry_s)
            self._after_commit(ctx.session, self._reserve_request(order))
        return reply

    async def _save_summary(self, session: AsyncSession, order: Order) -> None:
        # Core statements built once: this runs in every turn, and the ORM's get-and-flush cost
        # several times the two statements (decision 0029).
        was = (await session.execute(_SUMMARY_STATUS, {"b_order_id": order.order_id})).scalar()
        values = {
            "order_id": order.order_id,
            "status": order.status.value,
            "channel": order.channel,
            "channel_order_id": str(order.channel_order.get("id", "")),
            "placed_at": order.placed_at,
            "updated_at": order.updated_at or order.placed_at,
            "hold_reasons": ",".join(sorted({h.reason for h in order.active_holds})),
            "locations": ",".join(order.locations),
            "version": order.version,
            "snapshot_json": order.model_dump_json(),
        }
        if was is None:
            await session.execute(_INSERT_SUMMARY, values)
        else:
            del values["order_id"]
            await session.execute(_UPDATE_SUMMARY, {"b_order_id": order.order_id, **values})
        was_backordered = was == Status.BACKORDERED.value
        if was_backordered or order.status is Status.BACKORDERED:
            # The index of waiting SKUs changes only on the way into or out of BACKORDERED.
            await session.execute(delete(OrderBackorder).where(OrderBackorder.order_id == order.order_id))
        if order.status is Status.BACKORDERED:
            for sku in order.waiting_skus:
                session.add(OrderBackorder(order_id=order.order_id, sku=sku))

    # -- the reserve step, outside turns ------------------------------------------------------------

    def _reserve_request(self, order: Order) -> ReserveRequest:
        address = order.shipping_address or {}
        return ReserveRequest(
            order_id=order.order_id,
            request_id=machine.reserve_request_id(order),
            round=order.reserve_round,
            channel=order.channel,
            lines=[(ln.line_id, ln.sku, ln.open_quantity) for ln in order.open_lines],
            destination={
                k: address[k] for k in ("country_code", "province_code", "postal_code") if k in address
            },
            allow_partial=order.channel in self.backorder_channels,
        )

    def _after_commit(self, session: AsyncSession, request: ReserveRequest) -> None:
        def start() -> None:
            task = asyncio.get_running_loop().create_task(self._run_reserve(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        after_commit(session, start)

    async def _run_reserve(self, request: ReserveRequest) -> None:
        try:
            result = await self.reserver(request)
            if self.send is not None:
                await self.send(request.order_id, result)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The reminder re-drives the step with the same request id.
            log.warning("reserve step for %s failed; retrying on reminder", request.order_id, exc_info=True)
