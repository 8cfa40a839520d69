"""ReturnsService as served by returns."""

from retail.returns.v1 import returns_service_pb2_grpc


class ReturnsServiceServicer(returns_service_pb2_grpc.ReturnsServiceServicer):
    """`retail.returns.v1.ReturnsService`.

    RPCs not built yet are inherited from the generated base, which raises
    NotImplementedError; the error interceptor answers UNIMPLEMENTED, never a fake success.
    """
