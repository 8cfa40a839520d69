"""OpsService as served by ops."""

from retail.ops.v1 import ops_service_pb2_grpc


class OpsServiceServicer(ops_service_pb2_grpc.OpsServiceServicer):
    """`retail.ops.v1.OpsService`.

    RPCs not built yet are inherited from the generated base, which raises
    NotImplementedError; the error interceptor answers UNIMPLEMENTED, never a fake success.
    """
