"""ShipmentsService as served by shipments: record shipments and tracking, read them back.

Every mutating RPC is idempotent by request_id (a `shipment_request` row, unique by key) and a
shipment is unique per warehouse shipment, so a webhook redelivered under a new id, or the same
shipment reported by webhook and by 945, records one shipment and publishes one ShipmentConfirmed.
The row, the request row and the event commit in one transaction (outbox).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import grpc
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.bus import Outbox, new_event_id
from libs.rpc import InvalidArgument, NotFound
from libs.store import Compiled, Database
from retail.common.v1 import common_pb2
from retail.shipments.v1 import events_pb2, shipments_pb2, shipments_service_pb2, shipments_service_pb2_grpc
from services.shipments.domain.tracking import Status, TrackingState, apply_update
from services.shipments.store import ShipmentRequestRow, ShipmentRow

DEFAULT_PAGE_SIZE = 50

# Statements of every RPC, built once on the tables and run as compiled statements
# (libs.store.Compiled): an ORM `session.get` or flush costs three to four times the same Core
# statement prebuilt. WHERE parameters are named `b_...` so they never collide with the column
# values of an UPDATE.
_SHIPMENT = ShipmentRow.__table__
_REQUEST = ShipmentRequestRow.__table__
_SEEN = Compiled(
    select(_REQUEST.c.shipment_id, _REQUEST.c.created).where(
        _REQUEST.c.request_id == bindparam("b_request_id")
    )
)
_INSERT_REQUEST = Compiled(insert(_REQUEST))
_NOTICE = Compiled(select(_SHIPMENT.c.notice).where(_SHIPMENT.c.shipment_id == bindparam("b_shipment_id")))
_NOTICE_BY_WAREHOUSE = Compiled(
    select(_SHIPMENT.c.notice).where(
        _SHIPMENT.c.warehouse_system == bindparam("b_system"),
        _SHIPMENT.c.warehouse_shipment_id == bindparam("b_warehouse_shipment_id"),
    )
)
# A tracking update reads the shipment to change it: the row is locked so that two updates of one
# shipment at once (two packages delivered) cannot both start from the same version (PostgreSQL,
# where the compiled statement runs as the plain one; SQLite's writers already exclude each other).
_TRACKING = Compiled(
    select(
        _SHIPMENT.c.status,
        _SHIPMENT.c.delivered_packages,
        _SHIPMENT.c.tracking_applied_at,
        _SHIPMENT.c.version,
        _SHIPMENT.c.notice,
    )
    .where(_SHIPMENT.c.shipment_id == bindparam("b_shipment_id"))
    .with_for_update()
)
_INSERT_SHIPMENT = Compiled(insert(_SHIPMENT))
_UPDATE_TRACKING = Compiled(update(_SHIPMENT).where(_SHIPMENT.c.shipment_id == bindparam("b_shipment_id")))


def _now() -> datetime:
    return datetime.now(UTC)


def _notice(stored: bytes) -> shipments_pb2.ShipmentNotice:
    return shipments_pb2.ShipmentNotice.FromString(stored)


class ShipmentsServiceServicer(shipments_service_pb2_grpc.ShipmentsServiceServicer):
    """`retail.shipments.v1.ShipmentsService`.

    Args:
        db: The service database (shipments tables and the bus outbox).
        outbox: The bus outbox events are staged in.
    """

    def __init__(self, db: Database, outbox: Outbox) -> None:
        self._db = db
        self._outbox = outbox

    async def RecordShipment(
        self, request: shipments_service_pb2.RecordShipmentRequest, context: grpc.aio.ServicerContext
    ) -> shipments_service_pb2.RecordShipmentResponse:
        """Record a warehouse shipment once and publish ShipmentConfirmed (see module docstring)."""
        try:
            return await self._record_shipment(request)
        except IntegrityError:
            # A concurrent replica recorded the same request or warehouse shipment first
            # (PostgreSQL); its rows are committed now, so the replay path answers.
            return await self._record_shipment(request)

    async def _record_shipment(
        self, request: shipments_service_pb2.RecordShipmentRequest
    ) -> shipments_service_pb2.RecordShipmentResponse:
        warehouse = request.shipment.warehouse_shipment

        async def unit(session: AsyncSession) -> shipments_service_pb2.RecordShipmentResponse:
            seen = (await session.execute(_SEEN, {"b_request_id": request.request_id})).first()
            if seen is not None:
                stored = (await session.execute(_NOTICE, {"b_shipment_id": seen.shipment_id})).scalar_one()
                return shipments_service_pb2.RecordShipmentResponse(
                    shipment=_notice(stored), created=seen.created
                )
            stored = await self._by_warehouse(session, warehouse.system, warehouse.id)
            created = stored is None
            shipment = await self._insert(session, request.shipment) if stored is None else _notice(stored)
            await session.execute(
                _INSERT_REQUEST,
                {
                    "request_id": request.request_id,
                    "kind": "shipment",
                    "shipment_id": shipment.shipment_id,
                    "created": created,
                    "created_at": _now(),
                },
            )
            return shipments_service_pb2.RecordShipmentResponse(shipment=shipment, created=created)

        # A 3PL wave reports its shipments at once: they share a commit (libs.store.group).
        return await self._db.group.run(unit)

    async def _by_warehouse(self, session: AsyncSession, system: int, shipment_id: str) -> bytes | None:
        """The stored notice of a warehouse shipment, or None."""
        params = {"b_system": system, "b_warehouse_shipment_id": shipment_id}
        return (await session.execute(_NOTICE_BY_WAREHOUSE, params)).scalar_one_or_none()

    async def _insert(
        self, session: AsyncSession, reported: shipments_pb2.ShipmentNotice
    ) -> shipments_pb2.ShipmentNotice:
        notice = shipments_pb2.ShipmentNotice()
        notice.CopyFrom(reported)
        for name in ("delivered_at", "erp_shipment", "channel_fulfillment"):
            notice.ClearField(name)
        notice.shipment_id = f"shp-{new_event_id()}"
        notice.status = shipments_pb2.SHIPMENT_STATUS_CONFIRMED
        notice.version = 1
        await session.execute(
            _INSERT_SHIPMENT,
            {
                "shipment_id": notice.shipment_id,
                "order_id": notice.order_id,
                "release_id": notice.release_id,
                "location_id": notice.location_id,
                "warehouse_system": notice.warehouse_shipment.system,
                "warehouse_shipment_id": notice.warehouse_shipment.id,
                "status": notice.status,
                "shipped_at": notice.shipped_at.ToDatetime(tzinfo=UTC),
                "tracking_applied_at": None,
                "delivered_packages": [],
                "version": notice.version,
                "notice": notice.SerializeToString(),
                "created_at": _now(),
            },
        )
        event = events_pb2.ShipmentConfirmed(shipment=notice)
        event.meta.source_system = common_pb2.SOURCE_SYSTEM_TPL
        event.meta.occurred_at.CopyFrom(notice.shipped_at)
        await self._outbox.add(session, event, key=notice.order_id)
        return notice

    async def RecordTrackingUpdate(
        self, request: shipments_service_pb2.RecordTrackingUpdateRequest, context: grpc.aio.ServicerContext
    ) -> shipments_service_pb2.RecordTrackingUpdateResponse:
        """Apply a carrier update once; publish ShipmentTrackingUpdated and, when every package
        is delivered, ShipmentDelivered. Updates older than the last applied one change nothing."""
        try:
            return await self._record_tracking(request)
        except IntegrityError:
            return await self._record_tracking(request)

    async def _record_tracking(
        self, request: shipments_service_pb2.RecordTrackingUpdateRequest
    ) -> shipments_service_pb2.RecordTrackingUpdateResponse:
        async def unit(session: AsyncSession) -> shipments_service_pb2.RecordTrackingUpdateResponse:
            seen = (await session.execute(_SEEN, {"b_request_id": request.request_id})).first()
            shipment_id = seen.shipment_id if seen else request.shipment_id
            row = (await session.execute(_TRACKING, {"b_shipment_id": shipment_id})).first()
            if row is None:
                raise NotFound(f"shipment {request.shipment_id} not found")
            if seen is not None:
                return shipments_service_pb2.RecordTrackingUpdateResponse(shipment=_notice(row.notice))
            notice = _notice(row.notice)
            package_ids = tuple(p.package_id for p in notice.packages)
            if request.package_id and request.package_id not in package_ids:
                raise InvalidArgument(
                    "package_id", f"shipment {shipment_id} has no package {request.package_id}"
                )
            occurred_at = request.occurred_at.ToDatetime(tzinfo=UTC)
            outcome = apply_update(
                TrackingState(
                    status=Status(row.status),
                    package_ids=package_ids,
                    delivered_packages=frozenset(row.delivered_packages),
                    applied_at=row.tracking_applied_at if row.tracking_applied_at else None,
                ),
                status=Status(request.status),
                package_id=request.package_id,
                occurred_at=occurred_at,
            )
            if outcome.applied:
                notice.status = int(outcome.state.status)
                notice.version = row.version + 1
                if outcome.delivered_now:
                    notice.delivered_at.CopyFrom(request.occurred_at)
                await session.execute(
                    _UPDATE_TRACKING,
                    {
                        "b_shipment_id": shipment_id,
                        "status": notice.status,
                        "version": notice.version,
                        "tracking_applied_at": occurred_at,
                        "delivered_packages": sorted(outcome.state.delivered_packages),
                        "notice": notice.SerializeToString(),
                    },
                )
                await self._publish_tracking(session, notice, request, delivered_now=outcome.delivered_now)
            await session.execute(
                _INSERT_REQUEST,
                {
                    "request_id": request.request_id,
                    "kind": "tracking",
                    "shipment_id": shipment_id,
                    "created": outcome.applied,
                    "created_at": _now(),
                },
            )
            return shipments_service_pb2.RecordTrackingUpdateResponse(shipment=notice)

        # With the other updates of a wave, in one commit; a refusal (NotFound, InvalidArgument)
        # reaches the caller from a run of its own (libs.store.group).
        return await self._db.group.run(unit)

    async def _publish_tracking(
        self,
        session: AsyncSession,
        notice: shipments_pb2.ShipmentNotice,
        request: shipments_service_pb2.RecordTrackingUpdateRequest,
        *,
        delivered_now: bool,
    ) -> None:
        updated = events_pb2.ShipmentTrackingUpdated(
            shipment_id=notice.shipment_id,
            order_id=notice.order_id,
            package_id=request.package_id,
            status=request.status,
            description=request.description,
        )
        updated.meta.source_system = common_pb2.SOURCE_SYSTEM_TPL
        updated.meta.occurred_at.CopyFrom(request.occurred_at)
        await self._outbox.add(session, updated, key=notice.order_id)
        if delivered_now:
            delivered = events_pb2.ShipmentDelivered(
                shipment_id=notice.shipment_id, order_id=notice.order_id, delivered_at=request.occurred_at
            )
            delivered.meta.source_system = common_pb2.SOURCE_SYSTEM_TPL
            delivered.meta.occurred_at.CopyFrom(request.occurred_at)
            await self._outbox.add(session, delivered, key=notice.order_id)

    async def GetShipment(
        self, request: shipments_service_pb2.GetShipmentRequest, context: grpc.aio.ServicerContext
    ) -> shipments_service_pb2.GetShipmentResponse:
        """One shipment by the mesh's id or by the warehouse's shipment record."""
        if request.WhichOneof("lookup") == "shipment_id":
            params = {"b_shipment_id": request.shipment_id}
            stored = (await self._db.fetch(_NOTICE, params)).scalar_one_or_none()
            wanted = request.shipment_id
        else:
            ref = request.warehouse_shipment
            params = {"b_system": ref.system, "b_warehouse_shipment_id": ref.id}
            stored = (await self._db.fetch(_NOTICE_BY_WAREHOUSE, params)).scalar_one_or_none()
            wanted = f"with warehouse shipment {ref.id}"
        if stored is None:
            raise NotFound(f"shipment {wanted} not found")
        return shipments_service_pb2.GetShipmentResponse(shipment=_notice(stored))

    async def ListShipments(
        self, request: shipments_service_pb2.ListShipmentsRequest, context: grpc.aio.ServicerContext
    ) -> shipments_service_pb2.ListShipmentsResponse:
        """Shipments matching the filters, newest first, paged by an opaque offset token."""
        size = request.page.page_size or DEFAULT_PAGE_SIZE
        offset = _offset(request.page.page_token)
        # The filters vary per request, so this query is built per call (on the table: no ORM).
        query = select(_SHIPMENT.c.notice)
        if request.order_id:
            query = query.where(_SHIPMENT.c.order_id == request.order_id)
        if request.location_id:
            query = query.where(_SHIPMENT.c.location_id == request.location_id)
        if request.statuses:
            query = query.where(_SHIPMENT.c.status.in_(list(request.statuses)))
        if request.HasField("shipped_after"):
            query = query.where(_SHIPMENT.c.shipped_at >= request.shipped_after.ToDatetime(tzinfo=UTC))
        query = query.order_by(_SHIPMENT.c.shipped_at.desc(), _SHIPMENT.c.shipment_id.desc())
        async with self._db.read() as session:
            rows = (await session.execute(query.offset(offset).limit(size + 1))).scalars().all()
        response = shipments_service_pb2.ListShipmentsResponse(shipments=[_notice(r) for r in rows[:size]])
        if len(rows) > size:
            response.page.next_page_token = base64.urlsafe_b64encode(f"o:{offset + size}".encode()).decode()
        return response


def _offset(token: str) -> int:
    if not token:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind != "o" or int(value) < 0:
            raise ValueError(token)
        return int(value)
    except ValueError:
        raise InvalidArgument("page.page_token", "not a token this service issued") from None
