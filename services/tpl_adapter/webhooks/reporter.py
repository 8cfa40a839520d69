"""Reporting what the warehouse did to the shipments service (O6): a shipment → RecordShipment
(request id = the 3PL's shipment id or the EDI control numbers), a delivery →
RecordTrackingUpdate. Shared by the webhook processor and the EDI poller."""

from __future__ import annotations

import logging
from datetime import datetime

import grpc
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import Database
from libs.telemetry import resume_flow
from retail.common.v1 import common_pb2
from retail.shipments.v1 import shipments_pb2, shipments_service_pb2, shipments_service_pb2_grpc
from services.tpl_adapter.clients.mesh import is_transient
from services.tpl_adapter.store import releases
from services.tpl_adapter.translate.release import Release

log = logging.getLogger(__name__)

#: First back-off of a report that overtook what it depends on (doubling from there).
OVERTAKEN_RETRY_S = 1.0
#: How long a report may wait for the release it names to be recorded. The 3PL can ship, and
#: say so, before the adapter has committed the order it has just created (the 3PL answered
#: and the commit is still on its way); after a crash between the 3PL call and the commit, the
#: release is recorded only when its event is delivered again (ack_wait, 60 s).
UNKNOWN_RELEASE_PATIENCE_S = 600.0


class ReportFailed(Exception):
    """A report that could not be made; `transient` says whether trying later can help,
    `retry_s` (when given) how soon: the first back-off step instead of the inbox's own, and
    `patience_s` (when given) for how long: a delivery older than that fails instead."""

    def __init__(
        self, message: str, *, transient: bool, retry_s: float | None = None, patience_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_s = retry_s
        self.patience_s = patience_s


class ShipmentReporter:
    """Looks releases up and calls ShipmentsService.

    Args:
        db: The adapter's database (releases).
        shipments: A ShipmentsService stub.
        timeout_s: Deadline of each call.
    """

    def __init__(
        self,
        db: Database,
        shipments: shipments_service_pb2_grpc.ShipmentsServiceStub,
        timeout_s: float = 10.0,
    ) -> None:
        self._db = db
        self._shipments = shipments
        self._timeout_s = timeout_s

    async def release(self, release_id: str) -> Release:
        """The stored release a warehouse report refers to.

        Raises:
            ReportFailed: not recorded (yet): tried again for UNKNOWN_RELEASE_PATIENCE_S, then
                taken as not ours.
        """
        row = await releases.read(self._db, release_id)
        if row is None:
            raise ReportFailed(
                f"no release {release_id!r} was sent by this adapter",
                transient=True,
                retry_s=OVERTAKEN_RETRY_S,
                patience_s=UNKNOWN_RELEASE_PATIENCE_S,
            )
        return Release.from_json(row.release_id, row.order_id, row.location_id, row.lines)

    async def shipped(
        self, request_id: str, notice: shipments_pb2.ShipmentNotice
    ) -> shipments_pb2.ShipmentNotice:
        """Record a shipment; marks the release shipped (cancellations are refused from then on).

        The call continues the order's flow saved with the release, so the shipment's hops join
        the order's trace and correlation id.
        """
        release = await releases.read(self._db, notice.release_id)
        flow = release.flow if release is not None else None
        try:
            with resume_flow(flow):
                reply = await self._shipments.RecordShipment(
                    shipments_service_pb2.RecordShipmentRequest(request_id=request_id, shipment=notice),
                    timeout=self._timeout_s,
                )
        except grpc.aio.AioRpcError as error:
            raise ReportFailed(
                f"RecordShipment: {error.code().name} {error.details()}", transient=is_transient(error)
            ) from error

        async def shipped(session: AsyncSession) -> None:
            await releases.change(session, notice.release_id, shipped=True)

        await self._db.group.run(shipped)
        return reply.shipment

    async def delivered(self, request_id: str, warehouse_shipment_id: str, at: datetime) -> None:
        """Record that every package of a warehouse shipment was delivered."""
        try:
            found = await self._shipments.GetShipment(
                shipments_service_pb2.GetShipmentRequest(
                    warehouse_shipment=common_pb2.ExternalRef(
                        system=common_pb2.SOURCE_SYSTEM_TPL, id=warehouse_shipment_id
                    )
                ),
                timeout=self._timeout_s,
            )
            update = shipments_service_pb2.RecordTrackingUpdateRequest(
                request_id=request_id,
                shipment_id=found.shipment.shipment_id,
                status=shipments_pb2.SHIPMENT_STATUS_DELIVERED,
                description="delivered",
            )
            update.occurred_at.FromDatetime(at)
            await self._shipments.RecordTrackingUpdate(update, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            # NOT_FOUND: the delivery overtook its shipment's report, which the 3PL sent at the same
            # moment: look again soon rather than after the inbox's back-off.
            overtook = error.code() == grpc.StatusCode.NOT_FOUND
            raise ReportFailed(
                f"tracking: {error.code().name} {error.details()}",
                transient=is_transient(error) or overtook,
                retry_s=OVERTAKEN_RETRY_S if overtook else None,
            ) from error
