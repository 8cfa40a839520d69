"""The orders service as the adapter calls it: ingest, cancel, look up; failures classified.

Transient statuses (the call may succeed later) raise `OrdersUnavailable`; business refusals
(`INVALID_ARGUMENT`, `FAILED_PRECONDITION`, `NOT_FOUND`, ...) raise `OrdersRefused` with the status
and details, which the delivery worker records on the delivery for inspection and replay.
"""

from __future__ import annotations

import grpc

from retail.common.v1 import common_pb2
from retail.orders.v1 import orders_pb2, orders_service_pb2, orders_service_pb2_grpc

TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


class OrdersUnavailable(Exception):
    """The orders service could not answer now; retry later."""


class OrdersRefused(Exception):
    """The orders service refused the request for a business reason.

    Attributes:
        code: the gRPC status name (`INVALID_ARGUMENT`).
    """

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code


def _raise(error: grpc.aio.AioRpcError) -> None:
    if error.code() in TRANSIENT:
        raise OrdersUnavailable(f"{error.code().name}: {error.details() or ''}"[:500]) from None
    raise OrdersRefused(error.code().name, (error.details() or "")[:500]) from None


class OrdersClient:
    """Calls to `retail.orders.v1.OrdersService` over one channel."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_s: float = 5.0) -> None:
        self._stub = orders_service_pb2_grpc.OrdersServiceStub(channel)
        self._timeout = timeout_s

    async def ingest(
        self, order: orders_pb2.SalesOrder, request_id: str
    ) -> orders_service_pb2.IngestOrderResponse:
        """IngestOrder; repeating a request_id returns the first result."""
        try:
            return await self._stub.IngestOrder(
                orders_service_pb2.IngestOrderRequest(request_id=request_id, order=order),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as error:
            _raise(error)
            raise

    async def cancel(
        self, order_id: str, reason: int, request_id: str, note: str = ""
    ) -> orders_pb2.SalesOrder:
        """CancelOrder as asked by Shopify."""
        try:
            reply = await self._stub.CancelOrder(
                orders_service_pb2.CancelOrderRequest(
                    request_id=request_id,
                    order_id=order_id,
                    reason=reason,
                    requested_by=common_pb2.SOURCE_SYSTEM_SHOPIFY,
                    note=note,
                ),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as error:
            _raise(error)
            raise
        return reply.order

    async def channel_order(self, order_id: str) -> common_pb2.ExternalRef | None:
        """The channel order (Shopify GID) of a mesh order, or None when the order is unknown."""
        try:
            reply = await self._stub.GetOrder(
                orders_service_pb2.GetOrderRequest(order_id=order_id), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            _raise(error)
            raise
        return reply.order.channel_order if reply.order.HasField("channel_order") else None
