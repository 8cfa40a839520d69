"""Order events the warehouse must hear about (O5, O7): a release becomes a 3PL order (JSON API
with reference id = release id, or a 940), a cancellation request a 3PL cancel, an address
correction an update of the 3PL order's unpicked shipments.

Every handler runs inside its delivery's transaction (inbox row, release row and the answer
event commit together); 3PL calls that may help on a later try raise Retryable, refusals become
Warehouse*Rejected facts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from libs.bus import MessageContext, Permanent, Retryable, Subscription
from libs.telemetry import capture_flow
from libs.x12 import Reference
from retail.common.v1 import common_pb2
from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2
from services.tpl_adapter.clients.mailbox import EdiMailbox
from services.tpl_adapter.clients.tpl_api import TplApi, TplError
from services.tpl_adapter.edi import outgoing
from services.tpl_adapter.store import ReleaseRow
from services.tpl_adapter.translate import release as translate

log = logging.getLogger(__name__)

DURABLE = "tpl-adapter"


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


def _retry_or_fail(error: TplError) -> Exception:
    if error.transient:
        return Retryable(f"3PL: {error}", delay=error.retry_after)
    return Permanent(f"3PL refused: {error}")


@dataclass
class WarehouseEvents:
    """The handlers, bound to the 3PL clients.

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
            ack_wait=60.0,
        )

    async def handle(self, event, ctx: MessageContext) -> None:
        """Dispatch by event type."""
        if isinstance(event, order_events.OrderReleasedToWarehouse):
            await self.on_release(event, ctx)
        elif isinstance(event, order_events.OrderCancellationRequested):
            await self.on_cancellation(event, ctx)
        elif isinstance(event, order_events.OrderAddressCorrected):
            await self.on_address_corrected(event, ctx)

    # --- release (O5) -----------------------------------------------------------------------

    async def on_release(self, event: order_events.OrderReleasedToWarehouse, ctx: MessageContext) -> None:
        """Create the 3PL order for a release exactly once (M2) and say what the 3PL answered."""
        session = ctx.session
        row = await session.get(ReleaseRow, event.release_id)
        if row is not None and row.status != "sent":
            return  # answered already (a replay of the same release under another event id)
        if row is None:
            row = ReleaseRow(
                release_id=event.release_id,
                order_id=event.order_id,
                location_id=event.location_id,
                lines=translate.Release.of(event).lines_json(),
                mode=self.mode,
                status="sent",
                shipped=False,
                flow=capture_flow(),
                created_at=_now(),
                updated_at=_now(),
            )
            session.add(row)
        if self.mode == "edi":
            await self._release_by_edi(session, event, row)
            return
        try:
            center = await self._center(event.location_id)
            order = await self.api.create_order(translate.order_body(event, center))
        except TplError as error:
            if error.code == "DuplicateReferenceId":
                order = await self._existing(event.release_id)
            elif error.transient:
                raise Retryable(f"3PL order create: {error}", delay=error.retry_after) from error
            else:
                await self._reject(ctx, row, event, error)
                return
        row.status = "accepted"
        row.warehouse_order_id = str(order["id"])
        row.updated_at = _now()
        accepted = order_events.WarehouseReleaseAccepted(
            order_id=event.order_id,
            release_id=event.release_id,
            warehouse_order=common_pb2.ExternalRef(
                system=common_pb2.SOURCE_SYSTEM_TPL, id=str(order["id"]), name=event.release_id
            ),
        )
        await ctx.emit(_tpl_fact(accepted), key=event.order_id)

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
        row: ReleaseRow,
        event: order_events.OrderReleasedToWarehouse,
        error: TplError,
    ) -> None:
        code = (
            "INVALID_SKU"
            if "product" in error.message.lower() or "sku" in error.message.lower()
            else "WAREHOUSE_REJECTED"
        )
        row.status = "rejected"
        row.updated_at = _now()
        rejected = order_events.WarehouseReleaseRejected(
            order_id=event.order_id,
            release_id=event.release_id,
            reason=tpl_reason(code, error.message, error.code),
        )
        await ctx.emit(_tpl_fact(rejected), key=event.order_id)

    async def _release_by_edi(
        self, session: AsyncSession, event: order_events.OrderReleasedToWarehouse, row: ReleaseRow
    ) -> None:
        """Drop a 940; the 3PL's 997 (read by the EDI poller) accepts or rejects the release."""
        assert self.mailbox is not None
        if row.edi_control is not None:
            return  # written before; waiting for its 997
        control = await outgoing.send(
            session,
            self.mailbox,
            [translate.shipping_order(event).to_transaction("0001")],
            sender_id=self.sender_id,
            receiver_id=self.receiver_id,
        )
        row.edi_control = control
        row.updated_at = _now()

    # --- cancellation (O7) -------------------------------------------------------------------

    async def on_cancellation(
        self, event: order_events.OrderCancellationRequested, ctx: MessageContext
    ) -> None:
        """Ask the 3PL to cancel a release: accepted, or rejected because it already shipped."""
        row = await ctx.session.get(ReleaseRow, event.release_id)
        if row is None or row.status == "sent":
            raise Retryable(f"release {event.release_id} not yet answered by the 3PL", delay=2.0)
        release = translate.Release.from_json(row.release_id, row.order_id, row.location_id, row.lines)
        lines = list(event.lines) or [
            orders_pb2.LineQuantity(line_id=x.line_id, sku=x.sku, quantity=x.quantity) for x in release.lines
        ]
        if row.status in ("cancelled", "rejected"):
            await self._cancel_accepted(ctx, row, lines)
            return
        if row.status == "cancel_rejected" or (row.shipped and row.mode == "api"):
            await self._cancel_rejected(ctx, row, "ALREADY_SHIPPED", "already shipped", "")
            return
        whole = event.whole_release or _covers(release, lines)
        if not whole:
            # The 3PL cancels whole orders only (API and 940 alike); a line cancellation of a
            # released order cannot reach the warehouse and must be refused, not faked.
            await self._cancel_rejected(
                ctx, row, "LINE_CANCEL_UNSUPPORTED", "the 3PL cancels whole orders only", ""
            )
            return
        if row.mode == "edi":
            await self._cancel_by_edi(ctx.session, row, lines)
            return
        try:
            await self.api.cancel_order(
                row.warehouse_order_id or (await self._existing(row.release_id))["id"]
            )
        except TplError as error:
            if error.code == "OrderAlreadyShipped":
                row.shipped = True
                await self._cancel_rejected(
                    ctx, row, "ALREADY_SHIPPED", f"already shipped: {error.message}", error.code
                )
                return
            if error.transient:
                raise Retryable(f"3PL cancel: {error}", delay=error.retry_after) from error
            await self._cancel_rejected(ctx, row, "WAREHOUSE_REJECTED", error.message, error.code)
            return
        await self._cancel_accepted(ctx, row, lines)

    async def _cancel_accepted(self, ctx: MessageContext, row: ReleaseRow, lines: list) -> None:
        row.status = "cancelled"
        row.updated_at = _now()
        accepted = order_events.WarehouseCancellationAccepted(
            order_id=row.order_id, release_id=row.release_id, lines=lines
        )
        await ctx.emit(_tpl_fact(accepted), key=row.order_id)

    async def _cancel_rejected(
        self, ctx: MessageContext, row: ReleaseRow, code: str, message: str, external: str
    ) -> None:
        if code == "ALREADY_SHIPPED":
            row.status = "cancel_rejected"
        row.updated_at = _now()
        rejected = order_events.WarehouseCancellationRejected(
            order_id=row.order_id, release_id=row.release_id, reason=tpl_reason(code, message, external)
        )
        await ctx.emit(_tpl_fact(rejected), key=row.order_id)

    async def _cancel_by_edi(self, session: AsyncSession, row: ReleaseRow, lines: list) -> None:
        """Drop a cancelling 940; the EDI poller answers on its 997 (rejected if a 945 came)."""
        assert self.mailbox is not None
        if row.cancel_control is not None:
            return
        order = translate.cancel_order(row.release_id)
        order.references.append(Reference(qualifier="PO", value=row.order_id))
        row.cancel_control = await outgoing.send(
            session,
            self.mailbox,
            [order.to_transaction("0001")],
            sender_id=self.sender_id,
            receiver_id=self.receiver_id,
        )
        row.cancel_lines = [{"line_id": x.line_id, "sku": x.sku, "quantity": x.quantity} for x in lines]
        row.status = "cancel_requested"
        row.updated_at = _now()

    # --- address correction (O7) --------------------------------------------------------------

    async def on_address_corrected(
        self, event: order_events.OrderAddressCorrected, ctx: MessageContext
    ) -> None:
        """Send a corrected address to the warehouse of each of the order's releases (O7).

        The JSON API changes every shipment not yet picked (ShipBob's
        `PUT /shipment/{id}:updateAddress`) and each release answers `WarehouseAddressUpdated`;
        a shipment already picked or shipped, or a release sent by EDI (no 940 modify is sent
        yet), answers `WarehouseAddressUpdateRejected` with the reason, for customer service.
        """
        for release_id in event.release_ids:
            row = await ctx.session.get(ReleaseRow, release_id)
            if row is None or row.status == "sent":
                raise Retryable(f"release {release_id} not yet answered by the 3PL", delay=2.0)
            if row.status in ("rejected", "cancelled"):
                continue
            if row.shipped or row.status == "cancel_rejected":
                await self._address_rejected(ctx, row, "ALREADY_SHIPPED", "already shipped", "")
            elif row.mode == "edi":
                await self._address_rejected(
                    ctx,
                    row,
                    "ADDRESS_UPDATE_UNSUPPORTED",
                    "the EDI channel sends no 940 modify: correct the address at the 3PL by hand",
                    "",
                )
            else:
                await self._update_address(ctx, row, event.shipping_address)

    async def _update_address(self, ctx: MessageContext, row: ReleaseRow, address) -> None:
        try:
            order = await self.api.get_order(
                row.warehouse_order_id or (await self._existing(row.release_id))["id"]
            )
        except TplError as error:
            raise _retry_or_fail(error) from error
        pending = [
            s for s in order.get("shipments") or [] if s.get("status") not in ("Completed", "Cancelled")
        ]
        if not pending:
            row.shipped = row.shipped or any(
                s.get("status") == "Completed" for s in order.get("shipments") or []
            )
            await self._address_rejected(ctx, row, "ALREADY_SHIPPED", "nothing left to ship", "")
            return
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
                await self._address_rejected(ctx, row, code, error.message, error.code)
                return
        row.updated_at = _now()
        updated = order_events.WarehouseAddressUpdated(
            order_id=row.order_id,
            release_id=row.release_id,
            warehouse_shipments=[
                common_pb2.ExternalRef(system=common_pb2.SOURCE_SYSTEM_TPL, id=str(s["id"])) for s in pending
            ],
        )
        await ctx.emit(_tpl_fact(updated), key=row.order_id)

    async def _address_rejected(
        self, ctx: MessageContext, row: ReleaseRow, code: str, message: str, external: str
    ) -> None:
        log.info("address correction refused", extra={"release_id": row.release_id, "code": code})
        rejected = order_events.WarehouseAddressUpdateRejected(
            order_id=row.order_id, release_id=row.release_id, reason=tpl_reason(code, message, external)
        )
        await ctx.emit(_tpl_fact(rejected), key=row.order_id)


def _covers(release: translate.Release, lines: list) -> bool:
    asked: dict[str, int] = {}
    for line in lines:
        asked[line.line_id] = asked.get(line.line_id, 0) + line.quantity
    return all(asked.get(x.line_id, 0) >= x.quantity for x in release.lines)
