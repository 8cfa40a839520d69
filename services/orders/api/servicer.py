"""OrdersService as served by orders: requests to order actor commands, answers from the read model."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from sqlalchemy import bindparam, select

from libs.actors import ActorRuntime
from libs.rpc import Conflict, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from libs.store import Compiled, Database
from libs.telemetry import capture_flow
from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_service_pb2 as inv
from retail.orders.v1 import orders_pb2, orders_service_pb2, orders_service_pb2_grpc
from services.orders.actors.order import (
    KIND,
    Command,
    CreateReplacement,
    Ingest,
    UnknownOrder,
    VersionMismatch,
    read_stored_reply,
)
from services.orders.api.inventory import InventoryClient
from services.orders.api.mapping import (
    hold_to_proto,
    order_from_proto,
    order_to_proto,
    status_name,
    system_name,
    to_dict,
    ts_to_dt,
)
from services.orders.domain import machine
from services.orders.domain.order import Order, System
from services.orders.store.tables import OrderSummary

pb = orders_service_pb2
ACTOR_TIMEOUT_S = 30.0
# Built once and compiled once: the read of one order's snapshot runs on every GetOrder and command.
_SNAPSHOT = Compiled(
    select(OrderSummary.__table__.c.snapshot_json).where(
        OrderSummary.__table__.c.order_id == bindparam("b_order_id")
    )
)


def _enum(enum: Any, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix)


class OrdersServiceServicer(orders_service_pb2_grpc.OrdersServiceServicer):
    """`retail.orders.v1.OrdersService`.

    Args:
        db: the service database (read model, request replies).
        runtime: the actor runtime hosting OrderActor.
        inventory: the inventory client (AcceptOrder's availability check).
        backorder_channels: channels that allow backorders (AcceptOrder's answer).
    """

    def __init__(
        self,
        db: Database,
        runtime: ActorRuntime,
        inventory: InventoryClient,
        *,
        backorder_channels: frozenset[str] = frozenset({"online-store"}),
    ) -> None:
        self.db = db
        self.runtime = runtime
        self.inventory = inventory
        self.backorder_channels = backorder_channels

    # -- helpers ----------------------------------------------------------------------------------

    async def _ask(self, order_id: str, message: Any) -> dict[str, Any]:
        try:
            return await self.runtime.ref(KIND, order_id).ask(message, timeout=ACTOR_TIMEOUT_S)
        except machine.Refused as refused:
            raise FailedPrecondition(refused.message, reason=refused.reason) from None
        except machine.Invalid as invalid:
            raise InvalidArgument(invalid.field, invalid.message) from None
        except UnknownOrder as missing:
            raise NotFound(str(missing), reason="ORDER_NOT_FOUND") from None
        except VersionMismatch as mismatch:
            raise Conflict(str(mismatch), reason="VERSION_MISMATCH") from None

    async def _command(
        self, rpc: str, request_id: str, order_id: str, apply: Any, expected_version: int = 0
    ) -> dict:
        stored = await self._stored(request_id)
        if stored is not None:
            return stored
        return await self._ask(order_id, Command(rpc, request_id, apply, expected_version))

    async def _stored(self, request_id: str) -> dict[str, Any] | None:
        return await read_stored_reply(self.db, request_id)

    @staticmethod
    def _order(reply: dict[str, Any]) -> orders_pb2.SalesOrder:
        return order_to_proto(Order.model_validate(reply["order"]))

    # -- ingest and queries -----------------------------------------------------------------------

    async def IngestOrder(self, request: pb.IngestOrderRequest, context: grpc.aio.ServicerContext):
        """Create or update an order from a channel version (stale versions are recorded and ignored)."""
        msg = request.order
        if not msg.channel_order.id:
            raise InvalidArgument("order.channel_order", "the channel order (system and id) is required")
        if not msg.HasField("channel_updated_at"):
            raise InvalidArgument("order.channel_updated_at", "required: updates are ordered by it")
        ids = [ln.line_id for ln in msg.lines]
        if len(set(ids)) != len(ids):
            raise InvalidArgument("order.lines", "line ids must be unique within the order")
        currencies = {ln.unit_price.currency for ln in msg.lines}
        if len(currencies) > 1:
            raise InvalidArgument("order.lines", f"one currency per order, got {sorted(currencies)}")
        try:
            order_id = machine.order_id_for(system_name(msg.channel_order.system), msg.channel_order.id)
        except machine.Invalid as invalid:
            raise InvalidArgument(invalid.field, invalid.message) from None
        stored = await self._stored(request.request_id)
        reply = stored or await self._ask(
            order_id, Ingest(request.request_id, order_from_proto(msg, order_id), flow=capture_flow())
        )
        order = Order.model_validate(reply["order"])
        return pb.IngestOrderResponse(
            order_id=order.order_id,
            outcome=pb.IngestOutcome.Value(f"INGEST_OUTCOME_{reply['outcome']}"),
            status=orders_pb2.OrderStatus.Value(f"ORDER_STATUS_{order.status}"),
            version=order.version,
        )

    async def _load(self, order_id: str) -> Order:
        snapshot = (await self.db.fetch(_SNAPSHOT, {"b_order_id": order_id})).scalar()
        if snapshot is None:
            raise NotFound(f"no order {order_id}", reason="ORDER_NOT_FOUND")
        return Order.model_validate_json(snapshot)

    async def GetOrder(self, request: pb.GetOrderRequest, context: grpc.aio.ServicerContext):
        """The order with its status history (source system and time) and, on request, its timeline."""
        if request.WhichOneof("lookup") == "order_id":
            order = await self._load(request.order_id)
        else:
            async with self.db.read() as session:
                row = (
                    await session.scalars(
                        select(OrderSummary)
                        .where(OrderSummary.channel_order_id == request.channel_order.id)
                        .limit(1)
                    )
                ).first()
            if row is None:
                raise NotFound(
                    f"no order for channel order {request.channel_order.id}", reason="ORDER_NOT_FOUND"
                )
            order = Order.model_validate_json(row.snapshot_json)
        reply = pb.GetOrderResponse(order=order_to_proto(order))
        if request.include_timeline:
            reply.timeline.extend(_timeline(order))
        return reply

    async def ListOrders(self, request: pb.ListOrdersRequest, context: grpc.aio.ServicerContext):
        """Orders by status, channel, location, time and hold reason; newest first, paged."""
        query = select(OrderSummary)
        if request.statuses:
            query = query.where(OrderSummary.status.in_([status_name(s) for s in request.statuses]))
        if request.channel:
            query = query.where(OrderSummary.channel == request.channel)
        if request.location_id:
            query = query.where(OrderSummary.locations.contains(request.location_id))
        if request.HasField("placed_after"):
            query = query.where(OrderSummary.placed_at >= ts_to_dt(request.placed_after))
        if request.HasField("placed_before"):
            query = query.where(OrderSummary.placed_at < ts_to_dt(request.placed_before))
        if request.HasField("unchanged_since"):
            query = query.where(OrderSummary.updated_at <= ts_to_dt(request.unchanged_since))
        if request.hold_reason:
            reason = _enum(orders_pb2.HoldReason, request.hold_reason, "HOLD_REASON_")
            query = query.where(OrderSummary.hold_reasons.contains(reason))
        size = request.page.page_size or 50
        offset = 0
        if request.page.page_token:
            try:
                offset = int(base64.urlsafe_b64decode(request.page.page_token.encode()).decode())
            except ValueError:
                raise InvalidArgument("page.page_token", "not a token this service issued") from None
        query = (
            query.order_by(OrderSummary.placed_at.desc(), OrderSummary.order_id)
            .offset(offset)
            .limit(size + 1)
        )
        async with self.db.read() as session:
            rows = (await session.scalars(query)).all()
        reply = pb.ListOrdersResponse(
            orders=[order_to_proto(Order.model_validate_json(r.snapshot_json)) for r in rows[:size]]
        )
        if len(rows) > size:
            reply.page.next_page_token = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
        return reply

    # -- commands ---------------------------------------------------------------------------------

    async def CancelOrder(self, request: pb.CancelOrderRequest, context: grpc.aio.ServicerContext):
        """Cancel before release (CANCELLED) or ask the warehouses (CANCEL_REQUESTED)."""
        reason = _enum(orders_pb2.CancellationReason, request.reason, "CANCELLATION_REASON_")
        by = System(system_name(request.requested_by))
        reply = await self._command(
            "CancelOrder",
            request.request_id,
            request.order_id,
            lambda order, now: machine.cancel(order, reason, by, now, request.request_id),
            request.expected_version,
        )
        return pb.CancelOrderResponse(order=self._order(reply))

    async def CancelOrderLines(self, request: pb.CancelOrderLinesRequest, context: grpc.aio.ServicerContext):
        """Cancel line quantities; released lines go through the warehouse."""
        reason = _enum(orders_pb2.CancellationReason, request.reason, "CANCELLATION_REASON_")
        by = System(system_name(request.requested_by))
        wanted: dict[str, int] = {}
        for line in request.lines:
            wanted[line.line_id] = wanted.get(line.line_id, 0) + line.quantity
        at = ts_to_dt(request.channel_updated_at, request.HasField("channel_updated_at"))
        reply = await self._command(
            "CancelOrderLines",
            request.request_id,
            request.order_id,
            lambda order, now: machine.cancel_lines(order, wanted, reason, by, now, request.request_id, at),
            request.expected_version,
        )
        return pb.CancelOrderLinesResponse(order=self._order(reply))

    async def CorrectAddress(self, request: pb.CorrectAddressRequest, context: grpc.aio.ServicerContext):
        """Correct the address before shipment; after shipment refused (FAILED_PRECONDITION) and recorded."""
        by = System(system_name(request.requested_by))
        address = to_dict(request.shipping_address)
        at = ts_to_dt(request.channel_updated_at, request.HasField("channel_updated_at"))
        reply = await self._command(
            "CorrectAddress",
            request.request_id,
            request.order_id,
            lambda order, now: machine.correct_address(order, address, by, now, request.request_id, at),
            request.expected_version,
        )
        if "refused" in reply:
            raise FailedPrecondition(reply["refused"], reason="ADDRESS_CORRECTION_REFUSED")
        return pb.CorrectAddressResponse(
            order=self._order(reply), warehouse_update_required=reply.get("warehouse_update_required", False)
        )

    async def PlaceHold(self, request: pb.PlaceHoldRequest, context: grpc.aio.ServicerContext):
        """Hold the order before release; it resumes where it was when the last hold is released."""
        reason = _enum(orders_pb2.HoldReason, request.reason, "HOLD_REASON_")
        by = System(system_name(request.placed_by))
        reply = await self._command(
            "PlaceHold",
            request.request_id,
            request.order_id,
            lambda order, now: machine.place_hold(order, reason, by, request.note, now, request.request_id),
        )
        order = Order.model_validate(reply["order"])
        hold = next(h for h in order.holds if h.hold_id == reply["hold_id"])
        return pb.PlaceHoldResponse(hold=hold_to_proto(hold), order=order_to_proto(order))

    async def ReleaseHold(self, request: pb.ReleaseHoldRequest, context: grpc.aio.ServicerContext):
        """Release a hold (its placer or an operator)."""
        by = System(system_name(request.released_by))
        reply = await self._command(
            "ReleaseHold",
            request.request_id,
            request.order_id,
            lambda order, now: machine.release_hold(
                order, request.hold_id, by, request.note, now, request.request_id
            ),
        )
        return pb.ReleaseHoldResponse(order=self._order(reply))

    async def ReplayOrder(self, request: pb.ReplayOrderRequest, context: grpc.aio.ServicerContext):
        """Re-drive the order's step after a fix (REJECTED goes back to RECEIVED and reserves again)."""
        step = pb.ReplayStep.Name(request.step) if request.step else None
        reply = await self._command(
            "ReplayOrder",
            request.request_id,
            request.order_id,
            lambda order, now: machine.replay(order, step, request.note, now, request.request_id),
        )
        return pb.ReplayOrderResponse(step=pb.ReplayStep.Value(reply["step"]), order=self._order(reply))

    async def CreateReplacementOrder(
        self, request: pb.CreateReplacementOrderRequest, context: grpc.aio.ServicerContext
    ):
        """Create a replacement order (RECEIVED, channel `replacement`) linked to its original."""
        wanted = [(ln.line_id, ln.quantity, ln.sku) for ln in request.lines]
        address = to_dict(request.shipping_address) if request.HasField("shipping_address") else None
        planned: dict[str, Order] = {}

        def plan(order: Order, now: datetime) -> machine.Outcome:
            replacement = machine.plan_replacement(order, wanted, address, now)
            planned["order"] = replacement
            return machine.Outcome(reply={"replacement": replacement.model_dump(mode="json")})

        reply = await self._command(
            "CreateReplacementOrder", request.request_id, request.original_order_id, plan
        )
        replacement = Order.model_validate(reply["replacement"])
        created = await self._ask(replacement.order_id, CreateReplacement(replacement))
        return pb.CreateReplacementOrderResponse(order=self._order(created))

    # -- synchronous acceptance (O8) --------------------------------------------------------------

    async def AcceptOrder(self, request: pb.AcceptOrderRequest, context: grpc.aio.ServicerContext):
        """Would this order be accepted? SKU validity, price sanity and ATP, within the caller's deadline."""
        currencies = {ln.unit_price.currency for ln in request.lines}
        remaining = context.time_remaining()
        timeout = None if remaining is None else max(0.05, remaining - 0.05)
        quantities: dict[str, int] = {}
        for ln in request.lines:
            quantities[ln.sku] = quantities.get(ln.sku, 0) + ln.quantity
        try:
            atp = await self.inventory.check(
                inv.CheckAvailabilityRequest(
                    items=[inv.CartItem(sku=sku, quantity=q) for sku, q in quantities.items()],
                    channel=request.channel,
                    destination=request.destination,
                ),
                timeout,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument("lines", f"inventory refused the cart: {error.details()}") from None
            raise Unavailable(f"availability could not be checked: {error.code().name}") from None
        by_sku = {item.sku: item for item in atp.items}
        backorders = request.channel in self.backorder_channels
        reply = pb.AcceptOrderResponse()
        reasons: list[common_pb2.Reason] = []
        decisions = []
        left = {sku: (by_sku[sku].available if sku in by_sku else 0) for sku in quantities}
        for ln in request.lines:
            line = pb.LineAcceptance(line_id=ln.line_id, confirmed_unit_price=ln.unit_price)
            item = by_sku.get(ln.sku)
            if ln.unit_price.minor_units <= 0 or len(currencies) > 1:
                line.decision = pb.ACCEPTANCE_DECISION_REJECTED
                line.rejection_reason = orders_pb2.REJECTION_REASON_PRICE_MISMATCH
                reasons.append(
                    _reason("PRICE_MISMATCH", f"line {ln.line_id}: price must be positive, one currency")
                )
            elif item is None or not item.locations:
                line.decision = pb.ACCEPTANCE_DECISION_REJECTED
                line.rejection_reason = orders_pb2.REJECTION_REASON_INVALID_SKU
                reasons.append(_reason("INVALID_SKU", f"line {ln.line_id}: {ln.sku} is not stocked anywhere"))
            else:
                available = max(0, min(ln.quantity, left[ln.sku]))
                left[ln.sku] -= available
                line.available_quantity = available
                best = max(item.locations, key=lambda loc: loc.available)
                line.location_id = best.location_id
                if available >= ln.quantity:
                    line.decision = pb.ACCEPTANCE_DECISION_ACCEPTED
                elif backorders:
                    line.decision = pb.ACCEPTANCE_DECISION_ACCEPTED_WITH_CHANGES
                    line.backordered_quantity = ln.quantity - available
                    reasons.append(
                        _reason("BACKORDERED", f"line {ln.line_id}: {ln.quantity - available} backordered")
                    )
                else:
                    line.decision = pb.ACCEPTANCE_DECISION_REJECTED
                    line.rejection_reason = orders_pb2.REJECTION_REASON_OUT_OF_STOCK
                    reasons.append(
                        _reason("OUT_OF_STOCK", f"line {ln.line_id}: only {available} of {ln.sku}")
                    )
            decisions.append(line.decision)
            reply.lines.append(line)
        if pb.ACCEPTANCE_DECISION_REJECTED in decisions:
            reply.decision = pb.ACCEPTANCE_DECISION_REJECTED
        elif pb.ACCEPTANCE_DECISION_ACCEPTED_WITH_CHANGES in decisions:
            reply.decision = pb.ACCEPTANCE_DECISION_ACCEPTED_WITH_CHANGES
        else:
            reply.decision = pb.ACCEPTANCE_DECISION_ACCEPTED
        reply.reasons.extend(reasons)
        if len(currencies) == 1:
            currency = currencies.pop()
            subtotal = sum(ln.unit_price.minor_units * ln.quantity for ln in request.lines)
            reply.totals.subtotal.CopyFrom(common_pb2.Money(minor_units=subtotal, currency=currency))
            reply.totals.grand_total.CopyFrom(common_pb2.Money(minor_units=subtotal, currency=currency))
        reply.valid_until.FromDatetime(datetime.now(UTC) + timedelta(minutes=5))
        return reply


def _reason(code: str, message: str) -> common_pb2.Reason:
    return common_pb2.Reason(
        code=code,
        message=message,
        source_system=common_pb2.SOURCE_SYSTEM_MESH,
        failure_kind=common_pb2.FAILURE_KIND_BUSINESS,
    )


_OUTCOMES = {
    "SUCCEEDED": common_pb2.HOP_OUTCOME_SUCCEEDED,
    "STALE": common_pb2.HOP_OUTCOME_STALE,
    "REFUSED": common_pb2.HOP_OUTCOME_FAILED,
    "DUPLICATE": common_pb2.HOP_OUTCOME_DUPLICATE,
}


def _timeline(order: Order) -> list[common_pb2.TimelineEntry]:
    """Status changes and journal entries (facts applied, stale or refused), oldest first."""
    entries = []
    for change in order.history:
        entry = common_pb2.TimelineEntry(
            type="OrderStatusChanged",
            message_id=change.caused_by,
            correlation_id=order.correlation_id,
            source_system=common_pb2.SourceSystem.Value(f"SOURCE_SYSTEM_{change.source}"),
            service="orders",
            outcome=common_pb2.HOP_OUTCOME_SUCCEEDED,
            summary=f"{change.from_status or '-'} -> {change.to_status} {change.note}".strip(),
        )
        entry.occurred_at.FromDatetime(change.at)
        entries.append(entry)
    for note in order.journal:
        entry = common_pb2.TimelineEntry(
            type=note.type,
            message_id=note.message_id,
            correlation_id=order.correlation_id,
            source_system=common_pb2.SourceSystem.Value(f"SOURCE_SYSTEM_{note.source}"),
            service="orders",
            outcome=_OUTCOMES.get(note.outcome, common_pb2.HOP_OUTCOME_UNSPECIFIED),
            summary=note.summary,
        )
        entry.occurred_at.FromDatetime(note.at)
        entries.append(entry)
    entries.sort(key=lambda e: (e.occurred_at.seconds, e.occurred_at.nanos))
    return entries
