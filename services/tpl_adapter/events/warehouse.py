"""Order events the warehouse must hear about (O5, O7): a release becomes a 3PL order (JSON API
with reference id = release id, or a 940), a cancellation request a 3PL cancel, an address
correction an update of the 3PL order's unpicked shipments.

Each message is handled in two steps (docs/decisions/0027-prepare-phase-outside-the-transaction.md):

- `prepare_*` runs before the consumer's transaction and holds no database lock. It takes the
  order's turn (a per-order lock kept until the transaction ends), reads the release rows, makes
  the 3PL calls and returns their outcome. On SQLite a transaction holds the process's only
  writer, so a 3PL call inside it would make every other order wait. Every prepare step is safe to
  repeat, because a redelivery repeats it: a release is looked up by its reference id before it is
  created on a redelivery and a 422 "Duplicate reference ID" is adopted (M2), a cancel of a
  cancelled order answers the order, an address update sets absolute values.
- `on_*` runs in the transaction (inbox row, release row and the answer event commit together).
  It checks that the rows are still what prepare read, records the outcome and emits the facts.
  Within one process the order's turn keeps the rows unchanged; if another replica (or the
  webhook reporter) changed one, the handler raises `Retryable` and the next delivery prepares
  again from the new state.

3PL calls that may help on a later try raise Retryable (with the 3PL's Retry-After), refusals
become Warehouse*Rejected facts. EDI mode makes no network call: its 940s are written in the
transaction, which needs the control number it takes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from libs.bus import KeyedLocks, MessageContext, Permanent, PrepareContext, Retryable, Subscription
from libs.telemetry import capture_flow
from libs.x12 import Reference
from retail.common.v1 import common_pb2
from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2
from services.tpl_adapter.clients.mailbox import EdiMailbox
from services.tpl_adapter.clients.tpl_api import TplApi, TplError
from services.tpl_adapter.edi import outgoing
from services.tpl_adapter.store import releases
from services.tpl_adapter.store.releases import StoredRelease
from services.tpl_adapter.translate import release as translate

log = logging.getLogger(__name__)

DURABLE = "tpl-adapter"
#: Retry delay while a release the message needs is not answered by the 3PL yet.
UNANSWERED_RETRY_S = 2.0


def _now() -> datetime:
    return datetime.now(UTC)


def tpl_reason(code: str, message: str, external_code: str = "") -> common_pb2.Reason:
    """A business refusal by the 3PL."""
    return common_pb2.Reason(
        code=code,
        message=message[:2000],
        source_system=common_pb2.SOURCE_SYSTEM_TPL,
        failure_kind=common_pb2.FAILURE_KIND_BUSINESS,
        external_code=external_code[:255],
    )


def _tpl_fact(event):
    event.meta.source_system = common_pb2.SOURCE_SYSTEM_TPL
    return event


def _unanswered(release_id: str) -> Retryable:
    return Retryable(f"release {release_id} not yet answered by the 3PL", delay=UNANSWERED_RETRY_S)


def _retry_or_fail(error: TplError) -> Exception:
    if error.transient:
        return Retryable(f"3PL: {error}", delay=error.retry_after)
    return Permanent(f"3PL refused: {error}")


#: What a prepare step read of a release row (status, mode, 3PL order id, shipped); None: no row.
ReleaseState = tuple[str, str, str | None, bool] | None


def _state(row: StoredRelease | None) -> ReleaseState:
    """The parts of a release row its handler checks again in the transaction."""
    if row is None:
        return None
    return (row.status, row.mode, row.warehouse_order_id, bool(row.shipped))


@dataclass(frozen=True)
class Refusal:
    """A 3PL business refusal, as the handler turns it into a Warehouse*Rejected fact."""

    code: str
    message: str
    external_code: str = ""


@dataclass
class Prepared:
    """What a prepare step hands to its handler.

    Attributes:
        seen: each release row the handler depends on, as prepare read it (by release id).
    """

    seen: dict[str, ReleaseState]


@dataclass
class ReleasePrepared(Prepared):
    """OrderReleasedToWarehouse: the 3PL order found or created, or the 3PL's refusal.

    Both None: nothing sent (answered already, or EDI mode, whose 940 the handler writes).
    """

    order: dict[str, Any] | None = None
    refusal: Refusal | None = None


@dataclass
class CancelPrepared(Prepared):
    """OrderCancellationRequested: the outcome of the 3PL cancel (None: no cancel was sent).

    Attributes:
        cancelled: the 3PL cancelled the order.
        refusal: the 3PL refused the cancel.
        shipped: the refusal says the order has shipped.
    """

    cancelled: bool = False
    refusal: Refusal | None = None
    shipped: bool = False


@dataclass
class AddressOutcome:
    """The 3PL's answer for one release: the shipments updated, or its refusal."""

    updated: list[str] = field(default_factory=list)
    refusal: Refusal | None = None
    shipped: bool = False


@dataclass
class AddressPrepared(Prepared):
    """OrderAddressCorrected: the outcome per release sent by JSON API (by release id)."""

    outcomes: dict[str, AddressOutcome] = field(default_factory=dict)


P = TypeVar("P", bound=Prepared)


def _prepared(ctx: MessageContext, kind: type[P]) -> P:
    if not isinstance(ctx.prepared, kind):
        raise RuntimeError(f"no {kind.__name__} for this handler: subscribe it with its prepare step")
    return ctx.prepared


def _release_rejection(error: TplError) -> Refusal:
    text = error.message.lower()
    code = "INVALID_SKU" if "product" in text or "sku" in text else "WAREHOUSE_REJECTED"
    return Refusal(code, error.message, error.code)


@dataclass
class WarehouseEvents:
    """The prepare steps and handlers, bound to the 3PL clients.

    Args:
        api: The 3PL JSON API.
        mode: `api` (orders by JSON API) or `edi` (940s in the drop folder).
        mailbox: The EDI folders (EDI mode).
        sender_id / receiver_id: Interchange ids of the 940s.
    """

    api: TplApi
    mode: str = "api"
    mailbox: EdiMailbox | None = None
    sender_id: str = "RETAILMESH"
    receiver_id: str = "TPLSANDBOX"
    _centers: dict[str, int] = field(default_factory=dict)
    # One message at a time per order in this process, from its prepare step until its
    # transaction ends, so a cancellation or an address correction never runs while the order's
    # release is being created. A lock is dropped when nobody holds or wants it.
    _locks: KeyedLocks = field(default_factory=KeyedLocks, repr=False)

    def subscription(self) -> Subscription:
        """The one durable consumer of the tpl-adapter on ORDERS."""
        return Subscription(
            durable=DURABLE,
            filter_subjects=[
                order_events.OrderReleasedToWarehouse,
                order_events.OrderCancellationRequested,
                order_events.OrderAddressCorrected,
            ],
            handler=self.handle,
            prepare=self.prepare,
            ack_wait=60.0,
        )

    async def prepare(self, event, pctx: PrepareContext) -> Prepared | None:
        """Dispatch by event type: the 3PL calls, before the transaction."""
        if isinstance(event, order_events.OrderReleasedToWarehouse):
            return await self.prepare_release(event, pctx)
        if isinstance(event, order_events.OrderCancellationRequested):
            return await self.prepare_cancellation(event, pctx)
        if isinstance(event, order_events.OrderAddressCorrected):
            return await self.prepare_address_corrected(event, pctx)
        return None

    async def handle(self, event, ctx: MessageContext) -> None:
        """Dispatch by event type: record and answer, in the transaction."""
        if isinstance(event, order_events.OrderReleasedToWarehouse):
            await self.on_release(event, ctx)
        elif isinstance(event, order_events.OrderCancellationRequested):
            await self.on_cancellation(event, ctx)
        elif isinstance(event, order_events.OrderAddressCorrected):
            await self.on_address_corrected(event, ctx)

    # --- the order's turn and the re-check ------------------------------------------------------

    async def _turn(self, pctx: PrepareContext, order_id: str) -> None:
        """Wait for the order's turn and keep it until the delivery is settled."""
        # Taken before the transaction, never in it: a handler holds the SQLite writer, and must
        # not wait for a lock whose holder is waiting for the writer.
        await pctx.hold(self._locks.of(order_id))

    @staticmethod
    async def _read(pctx: PrepareContext, release_ids: list[str]) -> dict[str, StoredRelease | None]:
        return {release_id: await releases.read(pctx.db, release_id) for release_id in release_ids}

    @staticmethod
    def _unchanged(row: StoredRelease | None, release_id: str, prepared: Prepared) -> None:
        """Raise Retryable when the row is not as prepare read it (another replica wrote it)."""
        if _state(row) != prepared.seen.get(release_id):
            raise Retryable(
                f"release {release_id} changed while its 3PL calls were made", delay=UNANSWERED_RETRY_S
            )

    # --- release (O5) -----------------------------------------------------------------------

    async def prepare_release(
        self, event: order_events.OrderReleasedToWarehouse, pctx: PrepareContext
    ) -> ReleasePrepared:
        """Find the 3PL order of the release by its reference id, or create it (M2)."""
        await self._turn(pctx, event.order_id)
        row = (await self._read(pctx, [event.release_id]))[event.release_id]
        prepared = ReleasePrepared(seen={event.release_id: _state(row)})
        if (row is not None and row.status != "sent") or self.mode == "edi":
            return prepared  # answered already, or a 940 (written in the transaction)
        try:
            if pctx.delivery > 1 or row is not None:
                # An earlier attempt may have created it and lost the answer (timeout, 5xx, a
                # crash before our commit): adopt it rather than ask for a 422.
                found = await self.api.orders_by_reference(event.release_id)
                if found:
                    prepared.order = found[0]
                    return prepared
            center = await self._center(event.location_id)
            prepared.order = await self.api.create_order(translate.order_body(event, center))
        except TplError as error:
            if error.code == "DuplicateReferenceId":
                prepared.order = await self._existing(event.release_id)
            elif error.transient:
                raise Retryable(f"3PL order create: {error}", delay=error.retry_after) from error
            else:
                prepared.refusal = _release_rejection(error)
        return prepared

    async def on_release(self, event: order_events.OrderReleasedToWarehouse, ctx: MessageContext) -> None:
        """Record the 3PL order made for a release exactly once (M2) and say what the 3PL answered."""
        prepared = _prepared(ctx, ReleasePrepared)
        session = ctx.session
        row = await releases.get(session, event.release_id)
        if row is not None and row.status != "sent":
            return  # answered already (a replay of the same release under another event id)
        self._unchanged(row, event.release_id, prepared)
        if self.mode == "edi":
            await self._release_by_edi(session, event, row)
            return
        if prepared.refusal is not None:
            await self._reject(ctx, row, event, prepared.refusal)
            return
        order = prepared.order
        assert order is not None
        await self._record_release(
            session, event, row, status="accepted", warehouse_order_id=str(order["id"])
        )
        accepted = order_events.WarehouseReleaseAccepted(
            order_id=event.order_id,
            release_id=event.release_id,
            warehouse_order=common_pb2.ExternalRef(
                system=common_pb2.SOURCE_SYSTEM_TPL, id=str(order["id"]), name=event.release_id
            ),
        )
        await ctx.emit(_tpl_fact(accepted), key=event.order_id)

    async def _record_release(
        self,
        session: AsyncSession,
        event: order_events.OrderReleasedToWarehouse,
        row: StoredRelease | None,
        **changes: Any,
    ) -> None:
        """Insert the release's row with `changes` (no `row` yet), or set them on `row`."""
        now = _now()
        if row is not None:
            await releases.change(session, event.release_id, updated_at=now, **changes)
            return
        await releases.add(
            session,
            {
                "release_id": event.release_id,
                "order_id": event.order_id,
                "location_id": event.location_id,
                "lines": translate.Release.of(event).lines_json(),
                "mode": self.mode,
                "status": "sent",
                "shipped": False,
                "flow": capture_flow(),
                "created_at": now,
                "updated_at": now,
                **changes,
            },
        )

    async def _center(self, location_id: str) -> int | None:
        """The 3PL's id of the fulfillment center named `location_id` (the mesh's location ids are
        the centers' names, as in the inventory snapshots), or None when it has none by that name."""
        if location_id not in self._centers:
            for center in await self.api.locations():
                self._centers[str(center.get("name", ""))] = int(center["id"])
        found = self._centers.get(location_id)
        if found is None:
            log.warning("3PL has no center named %s; it picks one for the release", location_id)
        return found

    async def _existing(self, release_id: str) -> dict:
        """The 3PL order already holding this reference id (a lost response, a redelivery)."""
        try:
            found = await self.api.orders_by_reference(release_id)
        except TplError as error:
            raise _retry_or_fail(error) from error
        if not found:
            raise Retryable(f"3PL says reference {release_id} exists but does not list it yet")
        return found[0]

    async def _reject(
        self,
        ctx: MessageContext,
        row: StoredRelease | None,
        event: order_events.OrderReleasedToWarehouse,
        refusal: Refusal,
    ) -> None:
        await self._record_release(ctx.session, event, row, status="rejected")
        rejected = order_events.WarehouseReleaseRejected(
            order_id=event.order_id,
            release_id=event.release_id,
            reason=tpl_reason(refusal.code, refusal.message, refusal.external_code),
        )
        await ctx.emit(_tpl_fact(rejected), key=event.order_id)

    async def _release_by_edi(
        self,
        session: AsyncSession,
        event: order_events.OrderReleasedToWarehouse,
        row: StoredRelease | None,
    ) -> None:
        """Drop a 940; the 3PL's 997 (read by the EDI poller) accepts or rejects the release."""
        assert self.mailbox is not None
        if row is not None and row.edi_control is not None:
            return  # written before; waiting for its 997
        if row is None:
            # Inserted before the control number is taken: a replica racing for the same release
            # fails here, before it writes a 940.
            await self._record_release(session, event, None)
        control = await outgoing.send(
            session,
            self.mailbox,
            [translate.shipping_order(event).to_transaction("0001")],
            sender_id=self.sender_id,
            receiver_id=self.receiver_id,
        )
        await releases.change(session, event.release_id, edi_control=control, updated_at=_now())

    # --- cancellation (O7) -------------------------------------------------------------------

    @staticmethod
    def _cancel_plan(
        event: order_events.OrderCancellationRequested, row: StoredRelease | None
    ) -> tuple[str, list]:
        """What a cancellation does with the release as `row` stands, and the lines it cancels.

        One of `wait` (not answered yet), `accepted` (cancelled or never made), `shipped`,
        `lines` (a line cancellation, which the 3PL cannot do), `edi` (a cancelling 940) or `api`
        (a 3PL cancel).
        """
        if row is None or row.status == "sent":
            return "wait", []
        release = translate.Release.from_json(row.release_id, row.order_id, row.location_id, row.lines)
        lines = list(event.lines) or [
            orders_pb2.LineQuantity(line_id=x.line_id, sku=x.sku, quantity=x.quantity) for x in release.lines
        ]
        if row.status in ("cancelled", "rejected"):
            return "accepted", lines
        if row.status == "cancel_rejected" or (row.shipped and row.mode == "api"):
            return "shipped", lines
        if not (event.whole_release or _covers(release, lines)):
            # The 3PL cancels whole orders only (API and 940 alike); a line cancellation of a
            # released order cannot reach the warehouse and must be refused, not faked.
            return "lines", lines
        return ("edi" if row.mode == "edi" else "api"), lines

    async def prepare_cancellation(
        self, event: order_events.OrderCancellationRequested, pctx: PrepareContext
    ) -> CancelPrepared:
        """Ask the 3PL to cancel the release's order (a cancel of a cancelled order is a no-op)."""
        await self._turn(pctx, event.order_id)
        row = (await self._read(pctx, [event.release_id]))[event.release_id]
        prepared = CancelPrepared(seen={event.release_id: _state(row)})
        plan, _ = self._cancel_plan(event, row)
        if plan == "wait":
            raise _unanswered(event.release_id)
        if plan != "api":
            return prepared
        assert row is not None
        try:
            order_id = row.warehouse_order_id or (await self._existing(row.release_id))["id"]
            await self.api.cancel_order(order_id)
        except TplError as error:
            if error.code == "OrderAlreadyShipped":
                prepared.shipped = True
                prepared.refusal = Refusal("ALREADY_SHIPPED", f"already shipped: {error.message}", error.code)
            elif error.transient:
                raise Retryable(f"3PL cancel: {error}", delay=error.retry_after) from error
            else:
                prepared.refusal = Refusal("WAREHOUSE_REJECTED", error.message, error.code)
            return prepared
        prepared.cancelled = True
        return prepared

    async def on_cancellation(
        self, event: order_events.OrderCancellationRequested, ctx: MessageContext
    ) -> None:
        """Record the 3PL's answer to a cancellation: accepted, or rejected (it already shipped)."""
        prepared = _prepared(ctx, CancelPrepared)
        row = await releases.get(ctx.session, event.release_id)
        self._unchanged(row, event.release_id, prepared)
        plan, lines = self._cancel_plan(event, row)
        if plan == "wait":
            raise _unanswered(event.release_id)
        assert row is not None
        if plan == "accepted":
            await self._cancel_accepted(ctx, row, lines)
        elif plan == "shipped":
            await self._cancel_rejected(ctx, row, Refusal("ALREADY_SHIPPED", "already shipped"))
        elif plan == "lines":
            await self._cancel_rejected(
                ctx, row, Refusal("LINE_CANCEL_UNSUPPORTED", "the 3PL cancels whole orders only")
            )
        elif plan == "edi":
            await self._cancel_by_edi(ctx.session, row, lines)
        elif prepared.refusal is not None:
            await self._cancel_rejected(ctx, row, prepared.refusal, shipped=prepared.shipped)
        else:
            assert prepared.cancelled
            await self._cancel_accepted(ctx, row, lines)

    async def _cancel_accepted(self, ctx: MessageContext, row: StoredRelease, lines: list) -> None:
        await releases.change(ctx.session, row.release_id, status="cancelled", updated_at=_now())
        accepted = order_events.WarehouseCancellationAccepted(
            order_id=row.order_id, release_id=row.release_id, lines=lines
        )
        await ctx.emit(_tpl_fact(accepted), key=row.order_id)

    async def _cancel_rejected(
        self, ctx: MessageContext, row: StoredRelease, refusal: Refusal, *, shipped: bool = False
    ) -> None:
        """Refuse the cancellation; `shipped`: the 3PL's refusal says the release has shipped."""
        changes: dict[str, Any] = {"updated_at": _now()}
        if refusal.code == "ALREADY_SHIPPED":
            changes["status"] = "cancel_rejected"
        if shipped and not row.shipped:
            changes["shipped"] = True
        await releases.change(ctx.session, row.release_id, **changes)
        rejected = order_events.WarehouseCancellationRejected(
            order_id=row.order_id,
            release_id=row.release_id,
            reason=tpl_reason(refusal.code, refusal.message, refusal.external_code),
        )
        await ctx.emit(_tpl_fact(rejected), key=row.order_id)

    async def _cancel_by_edi(self, session: AsyncSession, row: StoredRelease, lines: list) -> None:
        """Drop a cancelling 940; the EDI poller answers on its 997 (rejected if a 945 came)."""
        assert self.mailbox is not None
        if row.cancel_control is not None:
            return
        order = translate.cancel_order(row.release_id)
        order.references.append(Reference(qualifier="PO", value=row.order_id))
        control = await outgoing.send(
            session,
            self.mailbox,
            [order.to_transaction("0001")],
            sender_id=self.sender_id,
            receiver_id=self.receiver_id,
        )
        await releases.change(
            session,
            row.release_id,
            cancel_control=control,
            cancel_lines=[{"line_id": x.line_id, "sku": x.sku, "quantity": x.quantity} for x in lines],
            status="cancel_requested",
            updated_at=_now(),
        )

    # --- address correction (O7) --------------------------------------------------------------

    async def prepare_address_corrected(
        self, event: order_events.OrderAddressCorrected, pctx: PrepareContext
    ) -> AddressPrepared:
        """Set the corrected address on every unpicked 3PL shipment of the order's API releases."""
        await self._turn(pctx, event.order_id)
        rows = await self._read(pctx, list(event.release_ids))
        prepared = AddressPrepared(seen={release_id: _state(row) for release_id, row in rows.items()})
        for release_id, row in rows.items():
            if row is None or row.status == "sent":
                raise _unanswered(release_id)
        for release_id, row in rows.items():
            assert row is not None
            if _address_plan(row) == "api":
                prepared.outcomes[release_id] = await self._update_address(row, event.shipping_address)
        return prepared

    async def on_address_corrected(
        self, event: order_events.OrderAddressCorrected, ctx: MessageContext
    ) -> None:
        """Answer a corrected address for each of the order's releases (O7).

        The JSON API changes every shipment not yet picked (ShipBob's
        `PUT /shipment/{id}:updateAddress`) and each release answers `WarehouseAddressUpdated`;
        a shipment already picked or shipped, or a release sent by EDI (no 940 modify is sent
        yet), answers `WarehouseAddressUpdateRejected` with the reason, for customer service.
        """
        prepared = _prepared(ctx, AddressPrepared)
        rows: dict[str, StoredRelease] = {}
        for release_id in event.release_ids:
            row = await releases.get(ctx.session, release_id)
            self._unchanged(row, release_id, prepared)
            if row is None or row.status == "sent":
                raise _unanswered(release_id)
            rows[release_id] = row
        for release_id, row in rows.items():
            plan = _address_plan(row)
            if plan == "skip":
                continue
            if plan == "shipped":
                await self._address_rejected(ctx, row, Refusal("ALREADY_SHIPPED", "already shipped"))
            elif plan == "edi":
                await self._address_rejected(
                    ctx,
                    row,
                    Refusal(
                        "ADDRESS_UPDATE_UNSUPPORTED",
                        "the EDI channel sends no 940 modify: correct the address at the 3PL by hand",
                    ),
                )
            else:
                await self._address_outcome(ctx, row, prepared.outcomes[release_id])

    async def _update_address(self, row: StoredRelease, address) -> AddressOutcome:
        """Update every pending shipment of the release's 3PL order (absolute: safe to repeat)."""
        try:
            order = await self.api.get_order(
                row.warehouse_order_id or (await self._existing(row.release_id))["id"]
            )
        except TplError as error:
            raise _retry_or_fail(error) from error
        shipments = order.get("shipments") or []
        pending = [s for s in shipments if s.get("status") not in ("Completed", "Cancelled")]
        if not pending:
            return AddressOutcome(
                refusal=Refusal("ALREADY_SHIPPED", "nothing left to ship"),
                shipped=any(s.get("status") == "Completed" for s in shipments),
            )
        body = translate.address_update(address)
        for shipment in pending:
            try:
                await self.api.update_shipment_address(shipment["id"], body)
            except TplError as error:
                if error.transient:
                    raise Retryable(f"3PL address update: {error}", delay=error.retry_after) from error
                code = {
                    "ShipmentAlreadyPicked": "ALREADY_PICKED",
                    "ShipmentAlreadyShipped": "ALREADY_SHIPPED",
                }.get(error.code, "WAREHOUSE_REJECTED")
                return AddressOutcome(refusal=Refusal(code, error.message, error.code))
        return AddressOutcome(updated=[str(s["id"]) for s in pending])

    async def _address_outcome(
        self, ctx: MessageContext, row: StoredRelease, outcome: AddressOutcome
    ) -> None:
        if outcome.refusal is not None:
            if outcome.shipped and not row.shipped:
                await releases.change(ctx.session, row.release_id, shipped=True)
            await self._address_rejected(ctx, row, outcome.refusal)
            return
        await releases.change(ctx.session, row.release_id, updated_at=_now())
        updated = order_events.WarehouseAddressUpdated(
            order_id=row.order_id,
            release_id=row.release_id,
            warehouse_shipments=[
                common_pb2.ExternalRef(system=common_pb2.SOURCE_SYSTEM_TPL, id=shipment_id)
                for shipment_id in outcome.updated
            ],
        )
        await ctx.emit(_tpl_fact(updated), key=row.order_id)

    async def _address_rejected(self, ctx: MessageContext, row: StoredRelease, refusal: Refusal) -> None:
        log.info("address correction refused", extra={"release_id": row.release_id, "code": refusal.code})
        rejected = order_events.WarehouseAddressUpdateRejected(
            order_id=row.order_id,
            release_id=row.release_id,
            reason=tpl_reason(refusal.code, refusal.message, refusal.external_code),
        )
        await ctx.emit(_tpl_fact(rejected), key=row.order_id)


def _address_plan(row: StoredRelease) -> str:
    """What an address correction does with an answered release: `skip` (rejected or cancelled),
    `shipped`, `edi` (refused: no 940 modify) or `api` (update the 3PL shipments)."""
    if row.status in ("rejected", "cancelled"):
        return "skip"
    if row.shipped or row.status == "cancel_rejected":
        return "shipped"
    return "edi" if row.mode == "edi" else "api"


def _covers(release: translate.Release, lines: list) -> bool:
    asked: dict[str, int] = {}
    for line in lines:
        asked[line.line_id] = asked.get(line.line_id, 0) + line.quantity
    return all(asked.get(x.line_id, 0) >= x.quantity for x in release.lines)
