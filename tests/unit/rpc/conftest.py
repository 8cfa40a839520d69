"""Fixtures for libs.rpc tests: a real RpcServer on a free port serving the probe service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from libs.config import ServiceSettings
from libs.rpc import RpcServer, channel
from libs.telemetry.testing import memory_exporter

from .probe import SERVICE, ProbeServicer, ProbeStub, add_probe_servicer

# pytest-grpc (auto-loaded) owns the names grpc_server, grpc_channel, grpc_addr...; ours differ on purpose.


def make_settings(**overrides: Any) -> ServiceSettings:
    """Settings of a probe service on free ports, with no grace so stop() is immediate."""
    values: dict[str, Any] = {
        "service_name": "probe",
        "grpc_port": 0,
        "metrics_port": 0,
        "shutdown_grace_s": 0,
    }
    values.update(overrides)
    return ServiceSettings(**values)


@pytest.fixture
def spans():
    """The process-wide in-memory span exporter, emptied for this test."""
    exporter = memory_exporter()
    exporter.clear()
    return exporter


@pytest.fixture
def probe() -> ProbeServicer:
    """The probe servicer, to inspect what the server did."""
    return ProbeServicer()


StartServer = Callable[..., Awaitable[RpcServer]]


@pytest.fixture
async def start_server(probe: ProbeServicer) -> AsyncIterator[StartServer]:
    """Start RpcServers serving the probe service (keyword arguments go to RpcServer); stop them after."""
    started: list[RpcServer] = []

    async def start(settings: ServiceSettings | None = None, **kwargs: Any) -> RpcServer:
        server = RpcServer(
            settings or make_settings(),
            servicers=[(add_probe_servicer, probe)],
            service_names=[SERVICE],
            **kwargs,
        )
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop(0)


@pytest.fixture
async def rpc_server(start_server: StartServer) -> RpcServer:
    """A started RpcServer with the default interceptor chain and authentication off."""
    return await start_server()


@pytest.fixture
async def mesh_channel(rpc_server: RpcServer) -> AsyncIterator[grpc.aio.Channel]:
    """A libs.rpc client channel to `rpc_server`."""
    async with channel(f"127.0.0.1:{rpc_server.port}", initial_backoff_s=0.01) as ch:
        yield ch


@pytest.fixture
def stub(mesh_channel: grpc.aio.Channel) -> ProbeStub:
    """Probe client on `mesh_channel`."""
    return ProbeStub(mesh_channel)
