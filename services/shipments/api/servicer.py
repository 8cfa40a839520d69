"""ShipmentsService as served by shipments."""

from retail.shipments.v1 import shipments_service_pb2_grpc


class ShipmentsServiceServicer(shipments_service_pb2_grpc.ShipmentsServiceServicer):
    """`retail.shipments.v1.ShipmentsService`.

    RPCs not built yet are inherited from the generated base, which raises
    NotImplementedError; the error interceptor answers UNIMPLEMENTED, never a fake success.
    """
