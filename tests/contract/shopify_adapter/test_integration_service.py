"""IntegrationService of shopify-adapter on its real servicer stack (port 0): statuses and replay."""

from __future__ import annotations

import grpc
import pytest

from libs import bus
from libs.rpc import RpcServer
from libs.store import migrated
from retail.common.v1 import common_pb2
from retail.integration.v1 import integration_pb2, integration_service_pb2, integration_service_pb2_grpc
from services.shopify_adapter.api.servicer import IntegrationServiceServicer
from services.shopify_adapter.app import SERVICE
from services.shopify_adapter.clients.admin import ConnectionState
from services.shopify_adapter.config import ShopifyAdapterSettings
from services.shopify_adapter.store import MIGRATIONS
from services.shopify_adapter.sync.subscriptions import SubscriptionCheck


class _Keeper:
    """Counts subscription checks (stands in for the Admin API in this contract test)."""

    def __init__(self) -> None:
        self.calls = 0

    async def ensure(self) -> SubscriptionCheck:
        self.calls += 1
        return SubscriptionCheck(compared=6, created=("ORDERS_EDITED",))


@pytest.fixture
async def stub(sqlite_url):
    """The servicer with a real database, served on a free port."""
    async with migrated(sqlite_url, [bus.MIGRATIONS, MIGRATIONS]) as db:
        keeper = _Keeper()
        servicer = IntegrationServiceServicer(
            ConnectionState(base_url="http://shop.example"), db=db, reconciler=object(), subscriptions=keeper
        )
        server = RpcServer(
            ShopifyAdapterSettings(grpc_port=0, metrics_port=0),
            servicers=[(integration_service_pb2_grpc.add_IntegrationServiceServicer_to_server, servicer)],
            service_names=[SERVICE],
        )
        port = await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield integration_service_pb2_grpc.IntegrationServiceStub(channel), keeper
        await server.stop(0)


async def test_get_connection_reports_shopify_and_its_base_url(stub):
    client, _ = stub

    reply = await client.GetConnection(integration_service_pb2.GetConnectionRequest())

    assert reply.connection.system == common_pb2.SOURCE_SYSTEM_SHOPIFY
    assert reply.connection.base_url == "http://shop.example"
    assert reply.connection.budget_available == 1.0


async def test_run_reconciliation_without_request_id_is_invalid_and_names_the_field(stub):
    client, _ = stub

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await client.RunReconciliation(integration_service_pb2.RunReconciliationRequest())

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in error.value.details()


async def test_a_repeated_subscriptions_run_returns_the_first_run_and_checks_once(stub):
    client, keeper = stub
    request = integration_service_pb2.RunReconciliationRequest(
        request_id="subs-1", kind=integration_pb2.RECONCILIATION_KIND_SUBSCRIPTIONS
    )

    first = await client.RunReconciliation(request)
    again = await client.RunReconciliation(request)

    assert (first.run.compared, first.run.repaired) == (6, 1)
    assert again.run == first.run
    assert keeper.calls == 1


async def test_inventory_reconciliation_is_unimplemented_not_a_fake_success(stub):
    client, _ = stub

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await client.RunReconciliation(
            integration_service_pb2.RunReconciliationRequest(
                request_id="inv-1", kind=integration_pb2.RECONCILIATION_KIND_INVENTORY
            )
        )

    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
