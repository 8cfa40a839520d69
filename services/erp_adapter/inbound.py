"""Purchase orders from Business Central → incoming stock in the inventory service (I5).

A poll, not webhooks: BC's webhook notifications carry no record and expire after three days, and
the mesh's reconcilers must not depend on them (M6). Each poll:

1. reads the purchase orders changed since the watermark (the largest `lastModifiedDateTime`
   already applied; `ge`, so a change in the same millisecond is not missed), lines expanded, and
   sends each whose lines differ from what was last sent as `InventoryService.RecordInbound`
   (absolute: the same order read twice changes nothing);
2. lists the ids of every purchase order still in BC and closes the ones that are gone: BC
   deletes a purchase order once it is fully received and invoiced, so its lines stop counting.

Requests go in the ERP budget's bulk lane, so order creation keeps its headroom (M5).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
from sqlalchemy import func, select

from libs.http.budget import Lane
from libs.store import Database
from retail.inventory.v1 import inventory_service_pb2, inventory_service_pb2_grpc
from services.erp_adapter.clients import BcError, BusinessCentralClient
from services.erp_adapter.store.inbound import ErpInboundDocumentRow
from services.erp_adapter.translate.purchase_order import (
    closed_purchase_order,
    digest,
    inbound_from_purchase_order,
)

log = logging.getLogger(__name__)
KIND = "PURCHASE_ORDER"


@dataclass
class PollResult:
    """What one poll sent: purchase orders recorded and closed."""

    recorded: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)


class PurchaseOrderPoller:
    """Polls BC purchase orders and records them with inventory (run by a `libs.lifecycle.Loop`).

    Args:
        db: The adapter's database (documents sent, watermark).
        client: The Business Central client.
        inventory: An InventoryService stub.
        timeout_s: Deadline of each RecordInbound call.
    """

    def __init__(
        self,
        db: Database,
        client: BusinessCentralClient,
        inventory: inventory_service_pb2_grpc.InventoryServiceStub,
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self._db = db
        self._client = client
        self._inventory = inventory
        self._timeout_s = timeout_s
        self._lock = asyncio.Lock()

    async def poll(self) -> PollResult:
        """One poll now.

        Raises:
            BcError: Business Central failed (the next poll tries again).
            grpc.aio.AioRpcError: the inventory service failed (likewise).
        """
        async with self._lock:
            result = PollResult()
            locations = await self._location_codes()
            params = {"$expand": "purchaseOrderLines"}
            watermark = await self._watermark()
            if watermark:
                params["$filter"] = f"lastModifiedDateTime ge {watermark}"
            body = await self._client.request("GET", "purchaseOrders", lane=Lane.BULK, params=params)
            for order in body.get("value") or []:
                request = inbound_from_purchase_order(order, locations)
                if await self._send(request, order, digest(request)):
                    result.recorded.append(str(order.get("number") or order["id"]))
            listed = await self._client.request(
                "GET", "purchaseOrders", lane=Lane.BULK, params={"$select": "id,number"}
            )
            present = {str(x["id"]).lower() for x in listed.get("value") or []}
            async with self._db.read() as session:
                open_rows = (
                    await session.execute(
                        select(ErpInboundDocumentRow).where(
                            ErpInboundDocumentRow.kind == KIND, ErpInboundDocumentRow.closed.is_(False)
                        )
                    )
                ).scalars()
                gone = [(r.document_id, r.number) for r in open_rows if r.document_id.lower() not in present]
            for document_id, number in gone:
                await self._record(closed_purchase_order(document_id, number))
                await self._save(document_id, number, None, "closed", closed=True)
                result.closed.append(number)
            if result.recorded or result.closed:
                log.info(
                    "BC purchase orders applied", extra={"recorded": result.recorded, "closed": result.closed}
                )
            return result

    async def _send(
        self, request: inventory_service_pb2.RecordInboundRequest, order: dict, lines: str
    ) -> bool:
        async with self._db.read() as session:
            row = await session.get(ErpInboundDocumentRow, str(order["id"]))
        modified = str(order.get("lastModifiedDateTime") or "")
        if row is not None and row.digest == lines and not row.closed:
            if modified > row.last_modified:
                await self._save(str(order["id"]), request.document.name, modified, lines, closed=False)
            return False
        await self._record(request)
        await self._save(str(order["id"]), request.document.name, modified, lines, closed=False)
        return True

    async def _record(self, request: inventory_service_pb2.RecordInboundRequest) -> None:
        await self._inventory.RecordInbound(request, timeout=self._timeout_s)

    async def _save(
        self, document_id: str, number: str, modified: str | None, lines: str, *, closed: bool
    ) -> None:
        async with self._db.transaction() as session:
            row = await session.get(ErpInboundDocumentRow, document_id)
            if row is None:
                row = ErpInboundDocumentRow(document_id=document_id, kind=KIND, last_modified=modified or "")
                session.add(row)
            row.number = number
            if modified is not None:
                row.last_modified = max(row.last_modified, modified)
            row.digest, row.closed, row.updated_at = lines, closed, datetime.now(UTC)

    async def _watermark(self) -> str | None:
        async with self._db.read() as session:
            value = (
                await session.execute(
                    select(func.max(ErpInboundDocumentRow.last_modified)).where(
                        ErpInboundDocumentRow.kind == KIND
                    )
                )
            ).scalar_one_or_none()
        return value or None

    async def _location_codes(self) -> dict[str, str]:
        body = await self._client.request("GET", "locations", lane=Lane.BULK, params={"$select": "id,code"})
        return {str(x["id"]).lower(): str(x["code"]) for x in body.get("value") or []}

    async def step(self) -> bool:
        """One poll for `libs.lifecycle.Loop`: ERP or inventory failures are logged, polling goes on."""
        try:
            await self.poll()
        except (BcError, grpc.aio.AioRpcError) as error:
            log.warning("BC purchase order poll failed", extra={"error": str(error)[:300]})
        return False
