"""IntegrationService as served by tpl-adapter: the 3PL connection's health, and reconciliation on
demand (INVENTORY pulls a 3PL stock snapshot into the inventory service; SUBSCRIPTIONS checks and
re-registers the webhook subscriptions)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import grpc

from libs.bus import new_event_id
from libs.rpc import FailedPrecondition, InvalidArgument, Unavailable
from libs.store import Database
from retail.common.v1 import common_pb2
from retail.integration.v1 import integration_pb2, integration_service_pb2, integration_service_pb2_grpc
from services.tpl_adapter.clients.tpl_api import TplApi, TplError
from services.tpl_adapter.snapshots import InventoryPuller, SnapshotFailed
from services.tpl_adapter.store import ReconciliationRunRow


class IntegrationServiceServicer(integration_service_pb2_grpc.IntegrationServiceServicer):
    """`retail.integration.v1.IntegrationService`.

    Args:
        db: The adapter's database (runs by request id).
        api: The 3PL API (its connection health).
        puller: The inventory snapshot puller.
        register_webhooks: Re-registers the webhook subscriptions; returns how many were made, or
            None when no callback URL is configured.
    """

    def __init__(
        self,
        db: Database,
        api: TplApi,
        puller: InventoryPuller,
        register_webhooks: Callable[[], Awaitable[int | None]],
    ) -> None:
        self._db = db
        self._api = api
        self._puller = puller
        self._register = register_webhooks

    async def GetConnection(
        self, request: integration_service_pb2.GetConnectionRequest, context: grpc.aio.ServicerContext
    ) -> integration_service_pb2.GetConnectionResponse:
        """The 3PL connection as the last calls saw it."""
        health = self._api.health
        connection = integration_pb2.Connection(
            system=common_pb2.SOURCE_SYSTEM_TPL,
            base_url=self._api.base_url,
            last_failure=health.last_failure,
            budget_available=self._api.budget_available(),
        )
        if health.last_success_at:
            connection.last_success_at.FromDatetime(health.last_success_at)
        if health.last_failure_at:
            connection.last_failure_at.FromDatetime(health.last_failure_at)
        return integration_service_pb2.GetConnectionResponse(connection=connection)

    async def RunReconciliation(
        self, request: integration_service_pb2.RunReconciliationRequest, context: grpc.aio.ServicerContext
    ) -> integration_service_pb2.RunReconciliationResponse:
        """Run INVENTORY or SUBSCRIPTIONS now; a repeated request id returns the first run."""
        async with self._db.read() as session:
            seen = await session.get(ReconciliationRunRow, request.request_id)
        if seen is not None:
            return integration_service_pb2.RunReconciliationResponse(
                run=integration_pb2.ReconciliationRun.FromString(seen.run)
            )
        run = integration_pb2.ReconciliationRun(run_id=f"run-{new_event_id()}", kind=request.kind)
        run.started_at.FromDatetime(datetime.now(UTC))
        if request.kind == integration_pb2.RECONCILIATION_KIND_INVENTORY:
            try:
                result = await self._puller.pull()
            except SnapshotFailed as failure:
                raise Unavailable(str(failure)) from failure
            run.compared, run.drifted, run.repaired = result.lines, result.drifted, result.changed
        elif request.kind == integration_pb2.RECONCILIATION_KIND_SUBSCRIPTIONS:
            try:
                made = await self._register()
            except TplError as error:
                raise Unavailable(f"3PL: {error}") from error
            if made is None:
                raise FailedPrecondition(
                    "no TPL_WEBHOOK_CALLBACK_URL is configured", reason="NO_CALLBACK_URL"
                )
            run.compared, run.drifted, run.repaired = 3, made, made
        else:
            raise InvalidArgument("kind", "the tpl-adapter reconciles INVENTORY and SUBSCRIPTIONS only")
        run.finished_at.FromDatetime(datetime.now(UTC))
        async with self._db.transaction() as session:
            if await session.get(ReconciliationRunRow, request.request_id) is None:
                session.add(
                    ReconciliationRunRow(
                        request_id=request.request_id,
                        run=run.SerializeToString(),
                        created_at=datetime.now(UTC),
                    )
                )
        return integration_service_pb2.RunReconciliationResponse(run=run)
