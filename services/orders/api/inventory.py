"""The orders service's calls to InventoryService (Reserve for the reserve step, availability checks)."""

from __future__ import annotations

import grpc

from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_service_pb2 as inv
from retail.inventory.v1 import inventory_service_pb2_grpc
from services.orders.actors.order import ReserveRequest, ReserveResult
from services.orders.domain.machine import Shortage


class InventoryClient:
    """InventoryService over one channel.

    Args:
        channel: a channel to the inventory service (`libs.rpc.channel(settings.inventory_addr)`).
        timeout_s: deadline of a Reserve call.
    """

    def __init__(self, channel: grpc.aio.Channel, *, timeout_s: float = 5.0) -> None:
        self.stub = inventory_service_pb2_grpc.InventoryServiceStub(channel)
        self.timeout_s = timeout_s

    async def reserve(self, request: ReserveRequest) -> ReserveResult:
        """Reserve the order's open lines (idempotent by request id and per line at inventory)."""
        reply = await self.stub.Reserve(
            inv.ReserveRequest(
                request_id=request.request_id,
                order_id=request.order_id,
                channel=request.channel,
                lines=[
                    inv.ReserveLine(line_id=lid, sku=sku, quantity=qty) for lid, sku, qty in request.lines
                ],
                destination=common_pb2.Destination(**request.destination) if request.destination else None,
                allow_partial=request.allow_partial,
            ),
            timeout=self.timeout_s,
        )
        allocations: dict[str, dict[str, int]] = {}
        for r in reply.reservations:
            per_line = allocations.setdefault(r.line_id, {})
            per_line[r.location_id] = per_line.get(r.location_id, 0) + r.quantity
        shortages = [
            Shortage(s.line_id, s.shortfall, s.reason.code or "OUT_OF_STOCK") for s in reply.shortages
        ]
        return ReserveResult(round=request.round, allocations=allocations, shortages=shortages)

    async def check(
        self, request: inv.CheckAvailabilityRequest, timeout: float | None
    ) -> inv.CheckAvailabilityResponse:
        """CheckAvailability within the caller's deadline."""
        return await self.stub.CheckAvailability(request, timeout=timeout)
