"""IntegrationService of erp-adapter on its real servicer stack (port 0, the real Business Central
client against the Business Central stand-in): every RPC's status, validation naming the field."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.message_factory import GetMessageClass

from libs.rpc import RpcServer
from libs.rpc.errors import REASON_KEY
from retail.common.v1 import common_pb2
from retail.integration.v1 import integration_pb2, integration_service_pb2, integration_service_pb2_grpc
from sandbox.business_central.app import create_app
from sandbox.business_central.config import BusinessCentralSettings
from sandbox.common.server import serve_in_thread
from services.erp_adapter.api.servicer import IntegrationServiceServicer
from services.erp_adapter.app import SERVICE, business_central
from services.erp_adapter.clients import BcError, BusinessCentralClient
from services.erp_adapter.config import ErpAdapterSettings

pb = integration_service_pb2
Kind = integration_pb2.ReconciliationKind


@dataclass
class Served:
    """The servicer on a free port, its client stub and the ERP client it reports on."""

    stub: integration_service_pb2_grpc.IntegrationServiceStub
    channel: grpc.aio.Channel
    erp: BusinessCentralClient
    bc_url: str


@pytest.fixture
def bc_url() -> Iterator[str]:
    """The Business Central stand-in on a free port."""
    with serve_in_thread(create_app(BusinessCentralSettings())) as url:
        yield url


@asynccontextmanager
async def _serve(bc_url: str, **settings: object) -> AsyncIterator[Served]:
    config = ErpAdapterSettings(grpc_port=0, metrics_port=0, bc_base_url=bc_url, **settings)
    async with business_central(config) as erp:
        server = RpcServer(
            config,
            servicers=[
                (
                    integration_service_pb2_grpc.add_IntegrationServiceServicer_to_server,
                    IntegrationServiceServicer(erp),
                )
            ],
            service_names=[SERVICE],
        )
        port = await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                yield Served(
                    integration_service_pb2_grpc.IntegrationServiceStub(channel), channel, erp, bc_url
                )
        finally:
            await server.stop(0)


@pytest.fixture
async def served(bc_url: str) -> AsyncIterator[Served]:
    """erp-adapter's IntegrationService with the sandbox's published credentials."""
    async with _serve(bc_url, bc_client_secret="sandbox-secret") as served:
        yield served


@pytest.fixture
async def refused(bc_url: str) -> AsyncIterator[Served]:
    """erp-adapter's IntegrationService with a client secret Business Central refuses."""
    async with _serve(bc_url, bc_client_secret="not-the-secret") as served:
        yield served


def _run(kind: int = Kind.RECONCILIATION_KIND_FINANCE, **fields: object) -> pb.RunReconciliationRequest:
    return pb.RunReconciliationRequest(**{"request_id": "recon-1", "kind": kind, **fields})


async def test_get_connection_reports_business_central_and_its_last_success(served: Served):
    await served.erp.company_id()

    reply = await served.stub.GetConnection(pb.GetConnectionRequest(), timeout=5)

    assert reply.connection.system == common_pb2.SOURCE_SYSTEM_ERP
    assert reply.connection.base_url == served.bc_url
    assert reply.connection.HasField("last_success_at")
    assert not reply.connection.HasField("last_failure_at")
    assert 0 < reply.connection.budget_available < 1  # the calls just made used part of the window


async def test_get_connection_reports_the_last_failure_without_a_payload(refused: Served):
    with pytest.raises(BcError):
        await refused.erp.company_id()

    reply = await refused.stub.GetConnection(pb.GetConnectionRequest(), timeout=5)

    assert reply.connection.HasField("last_failure_at")
    assert reply.connection.last_failure.startswith("401 ")
    assert not reply.connection.HasField("last_success_at")


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (_run(request_id=""), "request_id"),
        (_run(request_id="r" * 129), "request_id"),
        (_run(kind=Kind.RECONCILIATION_KIND_UNSPECIFIED), "kind"),
        (_run(kind=99), "kind"),
        (_run(lookback_minutes=-1), "lookback_minutes"),
        (_run(lookback_minutes=10081), "lookback_minutes"),
    ],
    ids=[
        "no-request-id",
        "request-id-too-long",
        "no-kind",
        "unknown-kind",
        "negative-lookback",
        "lookback-over-a-week",
    ],
)
async def test_an_invalid_reconciliation_request_is_invalid_argument_naming_the_field(
    served: Served, request_: pb.RunReconciliationRequest, field: str
):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await served.stub.RunReconciliation(request_, timeout=5)

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(f"{field}:"), error.value.details()


async def test_finance_reconciliation_is_unimplemented_not_a_fake_success(served: Served):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await served.stub.RunReconciliation(_run(Kind.RECONCILIATION_KIND_FINANCE), timeout=5)

    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "not built yet" in error.value.details()


@pytest.mark.parametrize(
    "kind",
    [
        Kind.RECONCILIATION_KIND_ORDERS,
        Kind.RECONCILIATION_KIND_INVENTORY,
        Kind.RECONCILIATION_KIND_SUBSCRIPTIONS,
    ],
    ids=Kind.Name,
)
async def test_a_kind_another_adapter_runs_is_refused_with_its_reason(served: Served, kind: int):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await served.stub.RunReconciliation(_run(kind), timeout=5)

    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert Kind.Name(kind) in error.value.details()
    assert (REASON_KEY, "KIND_NOT_SERVED") in tuple(error.value.trailing_metadata() or ())


async def test_every_rpc_answers_a_definite_status_for_an_empty_request(served: Served):
    descriptor = integration_service_pb2.DESCRIPTOR.services_by_name["IntegrationService"]
    outcomes = {}
    for method in descriptor.methods:
        call = served.channel.unary_unary(
            f"/{descriptor.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=GetMessageClass(method.output_type).FromString,
        )
        try:
            await call(GetMessageClass(method.input_type)(), timeout=5)
            outcomes[method.name] = "OK"
        except grpc.aio.AioRpcError as error:
            outcomes[method.name] = f"{error.code().name} {error.details()}"

    assert outcomes.pop("GetConnection") == "OK"
    assert outcomes.pop("RunReconciliation").startswith("INVALID_ARGUMENT request_id:")
    assert outcomes == {}, "an RPC without a contract test here yet"
