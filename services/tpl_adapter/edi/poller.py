"""Reading the 3PL's outbound EDI files: 997 (acceptance of our 940s), 945 (shipments → the
shipments service), 846 (stock → the inventory service), 944 (receipts of purchase orders
and returns → the inventory service), 947 (stock adjustments → InventoryService.Adjust, one per
W19 line), answering each non-997 group with a 997 of our own.

A file is applied whole or not at all: a transient failure (a peer down) leaves it in
`outbound/` for the next poll, and the calls it makes are idempotent by control numbers, so
applying it again changes nothing that was already applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import grpc
from sqlalchemy import bindparam, insert, select

from libs.bus import Outbox
from libs.store import Compiled, Database
from libs.telemetry.flow import CORRELATION_KEY
from libs.x12 import (
    AdjustmentAdvice,
    FunctionalAck,
    Interchange,
    InventoryAdvice,
    ReceiptAdvice,
    ShippingAdvice,
    TransactionSet,
    X12Error,
    acknowledge,
    read,
)
from libs.x12 import acknowledgment as x997
from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_service_pb2_grpc
from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2
from services.tpl_adapter.clients.mailbox import EdiMailbox
from services.tpl_adapter.clients.mesh import is_transient
from services.tpl_adapter.edi import outgoing
from services.tpl_adapter.events.warehouse import tpl_reason
from services.tpl_adapter.receipts import ReceiptReporter
from services.tpl_adapter.snapshots import SnapshotFailed, apply_snapshots
from services.tpl_adapter.store import EdiFileRow, releases
from services.tpl_adapter.store.releases import StoredRelease
from services.tpl_adapter.translate.adjustment import adjustments_from_947
from services.tpl_adapter.translate.inventory import snapshots_from_846
from services.tpl_adapter.translate.receipt import receipt_from_944
from services.tpl_adapter.translate.shipment import notice_from_945
from services.tpl_adapter.webhooks.reporter import ReportFailed, ShipmentReporter

log = logging.getLogger(__name__)

# Built once on the table and run as compiled statements (libs.store.Compiled): every file of
# every poll runs them.
_FILE = EdiFileRow.__table__
_SEEN = Compiled(select(_FILE.c.name).where(_FILE.c.name == bindparam("b_name")))
_RECORD = Compiled(insert(_FILE))


class Deferred(Exception):
    """The file cannot be applied now; try again on the next poll."""


def _now() -> datetime:
    return datetime.now(UTC)


class EdiPoller:
    """Polls `outbound/` every `interval_s` seconds.

    Args:
        db: The adapter's database.
        outbox: The bus outbox (release and cancellation answers from 997s).
        mailbox: The drop folders.
        reporter: Reports 945 shipments.
        inventory: An InventoryService stub (846 snapshots, 947 adjustments).
        sender_id / receiver_id: Our and the 3PL's interchange ids for our 997s.
        interval_s: Poll period.
        receipts: Records 944 receipts (purchase orders, returns) with the inventory service.
    """

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        mailbox: EdiMailbox,
        reporter: ShipmentReporter,
        inventory: inventory_service_pb2_grpc.InventoryServiceStub,
        *,
        sender_id: str,
        receiver_id: str,
        interval_s: float,
        receipts: ReceiptReporter | None = None,
    ) -> None:
        self._receipts = receipts
        self._db = db
        self._outbox = outbox
        self._mailbox = mailbox
        self._reporter = reporter
        self._inventory = inventory
        self._sender_id = sender_id
        self._receiver_id = receiver_id
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def start(self) -> None:
        """Poll in the background."""
        self._task = asyncio.create_task(self._run(), name="tpl-edi-poll")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:  # one bad pass must not end polling
                log.exception("EDI poll failed")
            await asyncio.sleep(self._interval_s)

    async def poll(self) -> list[str]:
        """Read every complete outbound file now; returns the names applied."""
        applied = []
        async with self._lock:
            for path in self._mailbox.ready():
                try:
                    if await self._read(path):
                        applied.append(path.name)
                except Deferred as later:
                    log.info("EDI file deferred", extra={"file": path.name, "reason": str(later)})
        return applied

    async def _read(self, path: Path) -> bool:
        async with self._db.read() as session:
            seen = (await session.execute(_SEEN, {"b_name": path.name})).first()
        if seen is not None:
            self._mailbox.done(path)
            return False
        data = self._mailbox.read(path)
        try:
            interchanges = read(data, strict=False)
        except X12Error as error:
            await self._record(path, "???", "", "failed", f"not X12: {error}")
            self._mailbox.done(path)
            return False
        code = ""
        for interchange in interchanges:
            for group in interchange.groups:
                for transaction in group.transactions:
                    code = code or transaction.code
                    await self._apply(interchange, transaction)
        async with self._db.transaction() as session:
            for interchange in interchanges:
                for group in interchange.groups:
                    if group.functional_id != "FA":
                        ack = acknowledge(group)
                        await outgoing.send(
                            session,
                            self._mailbox,
                            [ack.to_transaction("0001")],
                            sender_id=self._sender_id,
                            receiver_id=interchange.sender_id or self._receiver_id,
                        )
            await session.execute(
                _RECORD,
                {
                    "name": path.name,
                    "set_code": code or "?",
                    "interchange_control": interchanges[0].control_number if interchanges else "",
                    "status": "done",
                    "received_at": _now(),
                },
            )
        self._mailbox.done(path)
        return True

    async def _record(self, path: Path, code: str, control: str, status: str, detail: str) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                _RECORD,
                {
                    "name": path.name,
                    "set_code": code,
                    "interchange_control": control,
                    "status": status,
                    "detail": detail,
                    "received_at": _now(),
                },
            )

    async def _apply(self, interchange: Interchange, transaction: TransactionSet) -> None:
        control = f"{interchange.control_number}:{transaction.control_number}"
        if transaction.code == "997":
            await self._on_ack(FunctionalAck.from_transaction(transaction))
        elif transaction.code == "945":
            advice = ShippingAdvice.from_transaction(transaction)
            try:
                release = await self._reporter.release(advice.order_number)
                await self._reporter.shipped(f"edi-945:{control}", notice_from_945(advice, release))
            except ReportFailed as failure:
                if failure.transient:
                    raise Deferred(str(failure)) from failure
                log.warning("945 not applied", extra={"error": str(failure)})
        elif transaction.code == "846":
            advice = InventoryAdvice.from_transaction(transaction)
            as_of = _as_of(advice.date, advice.time)
            requests = snapshots_from_846(advice, snapshot_id=f"edi-846:{control}", as_of=as_of)
            try:
                await apply_snapshots(self._inventory, requests)
            except SnapshotFailed as failure:
                if failure.transient:
                    raise Deferred(str(failure)) from failure
                log.warning("846 not applied", extra={"error": str(failure)})
        elif transaction.code == "944":
            receipt = ReceiptAdvice.from_transaction(transaction)
            request = receipt_from_944(receipt, control=control)
            if request is None or self._receipts is None:
                log.info("EDI 944 not applied", extra={"receipt": receipt.receipt_number})
                return
            try:
                await self._receipts.record(request)
            except ReportFailed as failure:
                if failure.transient:
                    raise Deferred(str(failure)) from failure
                log.warning("944 not applied", extra={"error": str(failure)})
        elif transaction.code == "947":
            await self._on_adjustment(AdjustmentAdvice.from_transaction(transaction), control)

    async def _on_adjustment(self, advice: AdjustmentAdvice, control: str) -> None:
        """Adjust per W19 line; a repeat (same request_id) changes nothing again."""
        requests, skipped = adjustments_from_947(advice, control=control)
        for line in skipped:
            log.warning(
                "947 line not applied",
                extra={"adjustment": advice.adjustment_number, "line": line.line_number, "why": line.why},
            )
        for request in requests:
            try:
                await self._inventory.Adjust(request, timeout=10.0)
            except grpc.aio.AioRpcError as error:
                detail = f"Adjust {request.request_id}: {error.code().name} {error.details()}"
                if is_transient(error):
                    raise Deferred(detail) from error
                log.warning("947 line not applied", extra={"error": detail})

    async def _on_ack(self, ack: FunctionalAck) -> None:
        """A 997 for one of our 940 groups: accept or reject the releases (or cancellations)."""
        control = int(ack.group_control_number) if ack.group_control_number.isdigit() else -1
        accepted = ack.status in (x997.ACCEPTED, x997.ACCEPTED_WITH_ERRORS)
        async with self._db.transaction() as session:
            for row in await releases.of_control(session, control):
                if row.edi_control == control and row.status == "sent":
                    await self._release_answer(session, row, accepted, ack)
                elif row.cancel_control == control and row.status == "cancel_requested":
                    await self._cancel_answer(session, row, accepted, ack)

    async def _release_answer(self, session, row: StoredRelease, accepted: bool, ack: FunctionalAck) -> None:
        if accepted:
            answer = {"status": "accepted", "warehouse_order_id": row.release_id}
            event = order_events.WarehouseReleaseAccepted(
                order_id=row.order_id,
                release_id=row.release_id,
                warehouse_order=common_pb2.ExternalRef(
                    system=common_pb2.SOURCE_SYSTEM_TPL, id=row.release_id, name=f"940 {row.edi_control}"
                ),
            )
        else:
            answer = {"status": "rejected"}
            errors = "; ".join([*ack.errors, *(e for t in ack.transactions for e in t.errors)])
            event = order_events.WarehouseReleaseRejected(
                order_id=row.order_id,
                release_id=row.release_id,
                reason=tpl_reason(
                    "EDI_REJECTED", f"997 rejected the 940: {errors or ack.status}", f"AK9 {ack.status}"
                ),
            )
        await releases.change(session, row.release_id, updated_at=_now(), **answer)
        event.meta.source_system = common_pb2.SOURCE_SYSTEM_TPL
        await self._outbox.add(
            session, event, key=row.order_id, correlation_id=(row.flow or {}).get(CORRELATION_KEY)
        )

    async def _cancel_answer(self, session, row: StoredRelease, accepted: bool, ack: FunctionalAck) -> None:
        # The partner cancels an unshipped order silently and ignores the cancel of a shipped one
        # (its 945 tells); so a 997 plus "no shipment seen" means cancelled.
        if accepted and not row.shipped:
            status = "cancelled"
            lines = [orders_pb2.LineQuantity(**x) for x in row.cancel_lines or row.lines]
            event = order_events.WarehouseCancellationAccepted(
                order_id=row.order_id, release_id=row.release_id, lines=lines
            )
        else:
            status = "cancel_rejected"
            why = "already shipped" if row.shipped else f"997 rejected the cancelling 940 ({ack.status})"
            event = order_events.WarehouseCancellationRejected(
                order_id=row.order_id,
                release_id=row.release_id,
                reason=tpl_reason("ALREADY_SHIPPED" if row.shipped else "EDI_REJECTED", why),
            )
        await releases.change(session, row.release_id, status=status, updated_at=_now())
        event.meta.source_system = common_pb2.SOURCE_SYSTEM_TPL
        await self._outbox.add(
            session, event, key=row.order_id, correlation_id=(row.flow or {}).get(CORRELATION_KEY)
        )


def _as_of(date: str, time: str) -> datetime:
    try:
        return datetime.strptime(f"{date}{(time or '0000')[:4]}", "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return _now()
