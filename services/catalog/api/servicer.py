"""CatalogService as served by catalog."""

from retail.catalog.v1 import catalog_service_pb2_grpc


class CatalogServiceServicer(catalog_service_pb2_grpc.CatalogServiceServicer):
    """`retail.catalog.v1.CatalogService`.

    RPCs not built yet are inherited from the generated base, which raises
    NotImplementedError; the error interceptor answers UNIMPLEMENTED, never a fake success.
    """
