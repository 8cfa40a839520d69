"""OrdersService as served by orders."""

from retail.orders.v1 import orders_service_pb2_grpc


class OrdersServiceServicer(orders_service_pb2_grpc.OrdersServiceServicer):
    """`retail.orders.v1.OrdersService`.

    RPCs not built yet are inherited from the generated base, which raises
    NotImplementedError; the error interceptor answers UNIMPLEMENTED, never a fake success.
    """
