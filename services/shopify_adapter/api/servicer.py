"""IntegrationService as served by shopify-adapter: connection health and reconciliation on demand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from libs.rpc import FailedPrecondition, InvalidArgument, Unavailable, Unimplemented
from libs.store import Database
from retail.common.v1 import common_pb2
from retail.integration.v1 import integration_pb2, integration_service_pb2, integration_service_pb2_grpc
from services.shopify_adapter.clients.admin import ConnectionState, ShopifyError, ShopifyTransient
from services.shopify_adapter.store import tables
from services.shopify_adapter.store.queries import insert_if_absent


class IntegrationServiceServicer(integration_service_pb2_grpc.IntegrationServiceServicer):
    """`retail.integration.v1.IntegrationService`.

    Args:
        connection: the Admin API client's connection state (a fresh, empty one when not given).
        db: the service database (RunReconciliation keeps its runs there by request_id).
        reconciler: the order reconciler (`sync.reconciler.OrderReconciler`).
        subscriptions: the subscription keeper (`sync.subscriptions.SubscriptionKeeper`).
    """

    def __init__(
        self,
        connection: ConnectionState | None = None,
        *,
        db: Database | None = None,
        reconciler: Any = None,
        subscriptions: Any = None,
    ) -> None:
        self.connection = connection or ConnectionState()
        self.db = db
        self.reconciler = reconciler
        self.subscriptions = subscriptions

    async def GetConnection(self, request, context):
        """The health of the connection to Shopify: base URL, last success and failure, budget."""
        state = self.connection
        connection = integration_pb2.Connection(
            system=common_pb2.SOURCE_SYSTEM_SHOPIFY,
            base_url=state.base_url,
            last_failure=state.last_failure,
            budget_available=state.budget_available(),
        )
        if state.last_success_at is not None:
            connection.last_success_at.FromDatetime(state.last_success_at)
        if state.last_failure_at is not None:
            connection.last_failure_at.FromDatetime(state.last_failure_at)
        return integration_service_pb2.GetConnectionResponse(connection=connection)

    async def RunReconciliation(self, request, context):
        """Run ORDERS or SUBSCRIPTIONS now; a repeated request_id returns the first run."""
        if self.db is None or self.reconciler is None or self.subscriptions is None:
            raise Unimplemented("RunReconciliation is not built yet in this process (no reconciler wired)")
        async with self.db.read() as session:
            known = await session.get(tables.ReconciliationRunRow, request.request_id)
        if known is not None:
            return integration_service_pb2.RunReconciliationResponse(
                run=integration_pb2.ReconciliationRun.FromString(known.run)
            )
        kind = request.kind
        try:
            if kind == integration_pb2.RECONCILIATION_KIND_ORDERS:
                run = await self.reconciler.run(request.lookback_minutes)
            elif kind == integration_pb2.RECONCILIATION_KIND_SUBSCRIPTIONS:
                run = integration_pb2.ReconciliationRun(run_id=request.request_id, kind=kind)
                run.started_at.FromDatetime(datetime.now(UTC))
                check = await self.subscriptions.ensure()
                run.compared, run.drifted, run.repaired = (
                    check.compared,
                    len(check.created),
                    len(check.created),
                )
                run.finished_at.FromDatetime(datetime.now(UTC))
            elif kind == integration_pb2.RECONCILIATION_KIND_INVENTORY:
                raise Unimplemented("inventory reconciliation at Shopify is not built yet (issue 5)")
            else:
                raise InvalidArgument("kind", "shopify-adapter reconciles ORDERS and SUBSCRIPTIONS")
        except ShopifyTransient as exc:
            raise Unavailable(f"Shopify unavailable: {exc}") from None
        except ShopifyError as exc:
            raise FailedPrecondition(f"Shopify refused: {exc}") from None
        async with self.db.transaction() as session:
            await insert_if_absent(
                session,
                tables.ReconciliationRunRow,
                {
                    "request_id": request.request_id,
                    "run": run.SerializeToString(),
                    "created_at": datetime.now(UTC),
                },
                ["request_id"],
            )
        async with self.db.read() as session:
            first = await session.get(tables.ReconciliationRunRow, request.request_id)
        return integration_service_pb2.RunReconciliationResponse(
            run=integration_pb2.ReconciliationRun.FromString(first.run)
        )
