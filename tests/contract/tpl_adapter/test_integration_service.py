"""IntegrationService of tpl-adapter on its real service stack (port 0, real database and
nats-server, the real 3PL stand-in over HTTP; the inventory service is a stand-in recording
ApplySnapshot): every RPC's status, validation naming the field, request_id replay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf.message_factory import GetMessageClass

from libs.bus.embedded import free_port
from libs.rpc import RpcServer
from libs.rpc.errors import REASON_KEY
from retail.common.v1 import common_pb2
from retail.integration.v1 import integration_pb2, integration_service_pb2, integration_service_pb2_grpc
from retail.inventory.v1 import inventory_service_pb2, inventory_service_pb2_grpc
from sandbox.common.server import serve_in_thread
from sandbox.tpl.app import create_app
from sandbox.tpl.config import API_VERSION, DEFAULT_TOKEN, TplSettings
from services.tpl_adapter.app import Running, running
from services.tpl_adapter.config import TplAdapterSettings

pb = integration_service_pb2
Kind = integration_pb2.ReconciliationKind
INVENTORY_SERVICE = inventory_service_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name
#: Registered at the 3PL; nothing is shipped in these tests, so nothing is ever delivered to it.
CALLBACK_URL = "http://127.0.0.1:9/webhooks/tpl"


class InventoryStandIn(inventory_service_pb2_grpc.InventoryServiceServicer):
    """Records the ApplySnapshot calls the adapter makes (the inventory service's part here)."""

    def __init__(self) -> None:
        self.snapshots: list[inventory_service_pb2.ApplySnapshotRequest] = []

    async def ApplySnapshot(self, request, context):
        self.snapshots.append(request)
        return inventory_service_pb2.ApplySnapshotResponse(applied=True, positions_changed=len(request.lines))


@dataclass
class Served:
    """The running adapter, a stub on its gRPC port, and what it talks to."""

    stub: integration_service_pb2_grpc.IntegrationServiceStub
    channel: grpc.aio.Channel
    adapter: Running
    inventory: InventoryStandIn
    tpl_url: str


@pytest.fixture
def tpl_url() -> Iterator[str]:
    """The 3PL stand-in (no simulated warehouse clock) on a free port."""
    with serve_in_thread(create_app(TplSettings(simulate=False))) as url:
        yield url


@asynccontextmanager
async def _serve(tmp_path: Path, nats_url: str, tpl_url: str, **settings: object) -> AsyncIterator[Served]:
    inventory = InventoryStandIn()
    inventory_server = RpcServer(
        TplAdapterSettings(grpc_port=0, metrics_port=0),
        servicers=[(inventory_service_pb2_grpc.add_InventoryServiceServicer_to_server, inventory)],
        service_names=[INVENTORY_SERVICE],
    )
    inventory_port = await inventory_server.start()
    config = TplAdapterSettings(
        grpc_port=0,
        metrics_port=0,
        http_port=None,
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'tpl-adapter.db'}",
        nats_url=nats_url,
        inventory_addr=f"127.0.0.1:{inventory_port}",
        shipments_addr=f"127.0.0.1:{free_port()}",  # never called: nothing ships here
        tpl_base_url=tpl_url,
        tpl_api_token=DEFAULT_TOKEN,
        tpl_inventory_interval_s=0,
        tpl_receiving_interval_s=0,
        **{"tpl_webhook_callback_url": CALLBACK_URL, **settings},
    )
    try:
        async with (
            running(config) as adapter,
            grpc.aio.insecure_channel(f"127.0.0.1:{adapter.grpc_port}") as channel,
        ):
            stub = integration_service_pb2_grpc.IntegrationServiceStub(channel)
            yield Served(stub, channel, adapter, inventory, tpl_url)
    finally:
        await inventory_server.stop(0)


@pytest.fixture
async def served(tmp_path: Path, nats_server, tpl_url: str) -> AsyncIterator[Served]:
    """The tpl-adapter against the 3PL stand-in, its webhooks registered at start."""
    async with _serve(tmp_path, nats_server.url, tpl_url) as served:
        yield served


@pytest.fixture
async def unreachable(tmp_path: Path, nats_server) -> AsyncIterator[Served]:
    """The tpl-adapter whose 3PL base URL has nothing listening."""
    async with _serve(tmp_path, nats_server.url, f"http://127.0.0.1:{free_port()}") as served:
        yield served


def _run(kind: int = Kind.RECONCILIATION_KIND_INVENTORY, **fields: object) -> pb.RunReconciliationRequest:
    return pb.RunReconciliationRequest(**{"request_id": "recon-1", "kind": kind, **fields})


async def _first_pull_done(served: Served, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while served.adapter.puller.last is None:
        assert time.monotonic() < deadline, "the inventory pull at start never completed"
        await asyncio.sleep(0.05)


async def _webhooks_at_the_3pl(served: Served) -> list[dict]:
    async with httpx.AsyncClient(
        base_url=f"{served.tpl_url}/{API_VERSION}", headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    ) as http:
        return (await http.get("/webhook")).json()


async def test_get_connection_reports_the_3pl_and_its_last_success(served: Served):
    reply = await served.stub.GetConnection(pb.GetConnectionRequest(), timeout=5)

    assert reply.connection.system == common_pb2.SOURCE_SYSTEM_TPL
    assert reply.connection.base_url == served.tpl_url
    assert reply.connection.HasField("last_success_at")  # the webhook registration at start
    assert not reply.connection.HasField("last_failure_at")
    assert 0 < reply.connection.budget_available <= 1


async def test_get_connection_reports_the_last_failure_when_the_3pl_is_unreachable(unreachable: Served):
    reply = await unreachable.stub.GetConnection(pb.GetConnectionRequest(), timeout=5)

    assert reply.connection.HasField("last_failure_at")
    assert reply.connection.last_failure.startswith("ConnectError")
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
        (_run(Kind.RECONCILIATION_KIND_ORDERS), "kind"),
        (_run(Kind.RECONCILIATION_KIND_FINANCE), "kind"),
    ],
    ids=[
        "no-request-id",
        "request-id-too-long",
        "no-kind",
        "unknown-kind",
        "negative-lookback",
        "lookback-over-a-week",
        "orders-kind",
        "finance-kind",
    ],
)
async def test_an_invalid_reconciliation_request_is_invalid_argument_naming_the_field(
    served: Served, request_: pb.RunReconciliationRequest, field: str
):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await served.stub.RunReconciliation(request_, timeout=5)

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(f"{field}:"), error.value.details()


async def test_inventory_reconciliation_applies_the_3pls_stock_and_a_repeat_returns_the_first_run(
    served: Served,
):
    await _first_pull_done(served)
    before = len(served.inventory.snapshots)

    first = await served.stub.RunReconciliation(_run(Kind.RECONCILIATION_KIND_INVENTORY), timeout=10)
    applied = served.inventory.snapshots[before:]
    again = await served.stub.RunReconciliation(_run(Kind.RECONCILIATION_KIND_INVENTORY), timeout=10)

    assert applied, "the run applied no snapshot"
    assert first.run.kind == Kind.RECONCILIATION_KIND_INVENTORY
    assert first.run.compared == sum(len(s.lines) for s in applied) > 0
    assert first.run.HasField("finished_at")
    assert again.run == first.run
    assert len(served.inventory.snapshots) == before + len(applied)  # the repeat pulled nothing


async def test_subscriptions_reconciliation_recreates_a_webhook_deleted_at_the_3pl(served: Served):
    registered = await _webhooks_at_the_3pl(served)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"}) as http:
        gone = await http.delete(f"{served.tpl_url}/{API_VERSION}/webhook/{registered[0]['id']}")

    reply = await served.stub.RunReconciliation(_run(Kind.RECONCILIATION_KIND_SUBSCRIPTIONS), timeout=10)
    after = await _webhooks_at_the_3pl(served)

    assert gone.status_code == 204
    assert (reply.run.compared, reply.run.drifted, reply.run.repaired) == (3, 1, 1)
    assert sorted(w["topic"] for w in after) == sorted(w["topic"] for w in registered)
    assert {w["subscription_url"] for w in after} == {CALLBACK_URL}


async def test_subscriptions_reconciliation_without_a_callback_url_fails_precondition(
    tmp_path: Path, nats_server, tpl_url: str
):
    async with _serve(tmp_path, nats_server.url, tpl_url, tpl_webhook_callback_url=None) as served:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await served.stub.RunReconciliation(_run(Kind.RECONCILIATION_KIND_SUBSCRIPTIONS), timeout=5)

    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "TPL_WEBHOOK_CALLBACK_URL" in error.value.details()
    assert (REASON_KEY, "NO_CALLBACK_URL") in tuple(error.value.trailing_metadata() or ())


@pytest.mark.parametrize(
    "kind", [Kind.RECONCILIATION_KIND_INVENTORY, Kind.RECONCILIATION_KIND_SUBSCRIPTIONS], ids=Kind.Name
)
async def test_a_reconciliation_with_the_3pl_unreachable_is_unavailable(unreachable: Served, kind: int):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await unreachable.stub.RunReconciliation(_run(kind), timeout=10)

    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "ConnectError" in error.value.details()


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
