"""3PL receipts → the inventory service (I5, R1 inventory effect): completed warehouse receiving
orders (polled: the 3PL has no receiving webhook; each applied WRO is marked synced so the next poll
skips it), completed returns (the `return.completed` webhook) and EDI 944s, each as
`InventoryService.RecordReceipt`, which applies every receipt line once.

Returns only change stock here: a good unit goes back on hand, a damaged one to the damaged part of
on hand (docs/decisions/0016-return-to-stock-through-tpl-adapter.md); the returns service
(R1: authorization, credit memo, refund) is a later issue.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from retail.inventory.v1 import inventory_service_pb2, inventory_service_pb2_grpc
from services.tpl_adapter.clients.mesh import is_transient
from services.tpl_adapter.clients.tpl_api import TplApi, TplError
from services.tpl_adapter.translate.receipt import receipt_from_wro
from services.tpl_adapter.webhooks.reporter import ReportFailed

log = logging.getLogger(__name__)


class ReceiptReporter:
    """Calls InventoryService.RecordReceipt.

    Args:
        inventory: An InventoryService stub.
        timeout_s: Deadline of each call.
    """

    def __init__(
        self, inventory: inventory_service_pb2_grpc.InventoryServiceStub, timeout_s: float = 10.0
    ) -> None:
        self._inventory = inventory
        self._timeout_s = timeout_s

    async def record(self, request: inventory_service_pb2.RecordReceiptRequest) -> int:
        """Record one receipt; returns the lines applied now (0 for a repeat).

        Raises:
            ReportFailed: the call failed (`transient` when a later try can succeed).
        """
        try:
            reply = await self._inventory.RecordReceipt(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            raise ReportFailed(
                f"RecordReceipt {request.receipt.id}: {error.code().name} {error.details()}",
                transient=is_transient(error),
            ) from error
        log.info(
            "3PL receipt recorded",
            extra={
                "receipt": request.receipt.id,
                "location": request.location_id,
                "applied": reply.lines_applied,
            },
        )
        return reply.lines_applied


class ReceivingPuller:
    """Polls completed, not yet synced WROs and records them (run by a `libs.lifecycle.Loop`).

    Args:
        api: The 3PL API.
        reporter: Records receipts.
    """

    def __init__(self, api: TplApi, reporter: ReceiptReporter) -> None:
        self._api = api
        self._reporter = reporter
        self._lock = asyncio.Lock()

    async def pull(self) -> list[int]:
        """One poll now; returns the WRO ids recorded and marked synced.

        A WRO is marked synced only after RecordReceipt succeeded; a crash in between leaves it
        unsynced and the next poll records it again, which applies nothing twice.
        """
        async with self._lock:
            try:
                wros = await self._api.receiving_orders(statuses="Completed", synced=False)
            except TplError as error:
                raise ReportFailed(f"3PL receiving orders: {error}", transient=error.transient) from error
            done: list[int] = []
            for wro in wros:
                request = receipt_from_wro(wro)
                try:
                    if request is not None:
                        await self._reporter.record(request)
                except ReportFailed as failure:
                    if failure.transient:
                        raise
                    log.warning("WRO not applied", extra={"wro": wro.get("id"), "error": str(failure)})
                done.append(int(wro["id"]))
            if done:
                try:
                    await self._api.mark_receiving_synced(done)
                except TplError as error:
                    raise ReportFailed(f"3PL setExternalSync: {error}", transient=error.transient) from error
            return done

    async def step(self) -> bool:
        """One poll for `libs.lifecycle.Loop`: a failed poll is logged, polling goes on."""
        try:
            await self.pull()
        except ReportFailed as failure:
            log.warning("3PL receiving poll failed", extra={"error": str(failure)})
        return False
