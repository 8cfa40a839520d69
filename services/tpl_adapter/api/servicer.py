"""IntegrationService as served by tpl-adapter."""

from retail.integration.v1 import integration_service_pb2_grpc


class IntegrationServiceServicer(integration_service_pb2_grpc.IntegrationServiceServicer):
    """`retail.integration.v1.IntegrationService`.

    RPCs not built yet are inherited from the generated base, which raises
    NotImplementedError; the error interceptor answers UNIMPLEMENTED, never a fake success.
    """
