"""InventoryService as served by inventory."""

from retail.inventory.v1 import inventory_service_pb2_grpc


class InventoryServiceServicer(inventory_service_pb2_grpc.InventoryServiceServicer):
    """`retail.inventory.v1.InventoryService`.

    RPCs not built yet are inherited from the generated base, which raises
    NotImplementedError; the error interceptor answers UNIMPLEMENTED, never a fake success.
    """
