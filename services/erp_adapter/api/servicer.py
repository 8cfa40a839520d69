"""IntegrationService as served by erp-adapter."""

from __future__ import annotations

from typing import Any

from libs.rpc import FailedPrecondition, Unimplemented
from retail.common.v1 import common_pb2
from retail.integration.v1 import integration_pb2, integration_service_pb2, integration_service_pb2_grpc
from services.erp_adapter.clients import BusinessCentralClient

K = integration_pb2.ReconciliationKind


class IntegrationServiceServicer(integration_service_pb2_grpc.IntegrationServiceServicer):
    """`retail.integration.v1.IntegrationService`: the Business Central connection and its jobs.

    Args:
        client: the ERP client whose health and budget GetConnection reports.
    """

    def __init__(self, client: BusinessCentralClient) -> None:
        self.client = client

    async def GetConnection(
        self, request: integration_service_pb2.GetConnectionRequest, context: Any
    ) -> integration_service_pb2.GetConnectionResponse:
        """The base URL, last success and failure of ERP calls, and the free share of the budget."""
        health = self.client.health
        connection = integration_pb2.Connection(
            system=common_pb2.SOURCE_SYSTEM_ERP,
            base_url=self.client.base_url,
            last_failure=health.last_failure,
            budget_available=self.client.budget.available(),
        )
        if health.last_success_at is not None:
            connection.last_success_at.FromDatetime(health.last_success_at)
        if health.last_failure_at is not None:
            connection.last_failure_at.FromDatetime(health.last_failure_at)
        return integration_service_pb2.GetConnectionResponse(connection=connection)

    async def RunReconciliation(
        self, request: integration_service_pb2.RunReconciliationRequest, context: Any
    ) -> integration_service_pb2.RunReconciliationResponse:
        """FINANCE (F1) is the erp-adapter's job but not built yet; other kinds belong elsewhere."""
        if request.kind == K.RECONCILIATION_KIND_FINANCE:
            raise Unimplemented("finance reconciliation (F1) is not built yet in erp-adapter")
        raise FailedPrecondition(
            f"{K.Name(request.kind)} is not run by erp-adapter", reason="KIND_NOT_SERVED"
        )
