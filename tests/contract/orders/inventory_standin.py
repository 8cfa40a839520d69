"""A minimal in-process InventoryService STAND-IN for the orders tests only (not the real service).

services/inventory did not implement Reserve when the orders service was built; the lead's e2e
tests use the real one. It keeps stock per (sku, location), reserves idempotently by request id
and per (order, line, location), and answers CheckAvailability. Unknown SKUs are short with reason
UNKNOWN_SKU.
"""

from __future__ import annotations

import grpc

from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_pb2, inventory_service_pb2, inventory_service_pb2_grpc


class InventoryStandIn(inventory_service_pb2_grpc.InventoryServiceServicer):
    """Stock per (sku, location); reservations per (order, line, location)."""

    def __init__(self, stock: dict[tuple[str, str], int]) -> None:
        self.stock = dict(stock)
        self.reservations: dict[tuple[str, str, str], int] = {}
        self.replies: dict[str, inventory_service_pb2.ReserveResponse] = {}
        self.calls = 0
        self._sku: dict[tuple[str, str], str] = {}

    def available(self, sku: str, location: str) -> int:
        held = sum(
            q
            for (o, ln, loc), q in self.reservations.items()
            if loc == location and self._sku.get((o, ln)) == sku
        )
        return self.stock.get((sku, location), 0) - held

    async def Reserve(self, request, context):
        self.calls += 1
        if request.request_id in self.replies:
            return self.replies[request.request_id]
        reply = inventory_service_pb2.ReserveResponse()
        known = {sku for sku, _ in self.stock}
        for line in request.lines:
            self._sku[(request.order_id, line.line_id)] = line.sku
            have = sum(
                q
                for (o, ln, _), q in self.reservations.items()
                if (o, ln) == (request.order_id, line.line_id)
            )
            need = line.quantity - have
            if line.sku not in known:
                reason = common_pb2.Reason(code="UNKNOWN_SKU", message=line.sku)
                reply.shortages.add(
                    line_id=line.line_id, sku=line.sku, requested=line.quantity, shortfall=need, reason=reason
                )
                continue
            for (sku, loc), _ in sorted(self.stock.items()):
                if need <= 0 or sku != line.sku:
                    continue
                take = min(need, self.available(sku, loc))
                if (take > 0 and request.allow_partial) or take >= need:
                    key = (request.order_id, line.line_id, loc)
                    self.reservations[key] = self.reservations.get(key, 0) + take
                    need -= take
            if need > 0:
                reason = common_pb2.Reason(code="OUT_OF_STOCK", message=line.sku)
                reply.shortages.add(
                    line_id=line.line_id, sku=line.sku, requested=line.quantity, shortfall=need, reason=reason
                )
        for (o, ln, loc), q in self.reservations.items():
            if o == request.order_id and q > 0:
                reply.reservations.add(
                    order_id=o,
                    line_id=ln,
                    sku=self._sku[(o, ln)],
                    location_id=loc,
                    quantity=q,
                    state=inventory_pb2.RESERVATION_STATE_ACTIVE,
                )
        reply.outcome = (
            inventory_service_pb2.RESERVE_OUTCOME_PARTIALLY_RESERVED
            if reply.shortages and reply.reservations
            else inventory_service_pb2.RESERVE_OUTCOME_REJECTED
            if reply.shortages
            else inventory_service_pb2.RESERVE_OUTCOME_RESERVED
        )
        self.replies[request.request_id] = reply
        return reply

    async def CheckAvailability(self, request, context):
        reply = inventory_service_pb2.CheckAvailabilityResponse(fulfillable=True)
        for item in request.items:
            locs = [(loc, self.available(sku, loc)) for (sku, loc) in self.stock if sku == item.sku]
            total = sum(a for _, a in locs)
            reply.items.add(
                sku=item.sku,
                requested=item.quantity,
                available=total,
                fulfillable=total >= item.quantity,
                locations=[
                    inventory_service_pb2.LocationAvailability(location_id=loc, available=a)
                    for loc, a in locs
                ],
            )
            reply.fulfillable &= total >= item.quantity
        return reply


async def serve_standin(standin: InventoryStandIn) -> tuple[grpc.aio.Server, int]:
    """Serve the stand-in on a free port; returns the server and its port."""
    server = grpc.aio.server()
    inventory_service_pb2_grpc.add_InventoryServiceServicer_to_server(standin, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port
