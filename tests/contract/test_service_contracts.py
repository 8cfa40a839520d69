"""Services whose servicer is still the generated skeleton, on port 0 with the real interceptor
stack: health, reflection, and every RPC answering a definite status: INVALID_ARGUMENT naming the
field for an invalid request, UNIMPLEMENTED for what is not built yet, OK only for a read-only RPC
(NO_SIDE_EFFECTS) to which an empty request is a valid question, never INTERNAL or UNKNOWN.

A service whose servicer takes its collaborators (a database, a bus) has its own contract tests
under tests/contract/<service>/, which cover the same ground with the real collaborators.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from libs.rpc import RpcServer
from tools.topology import SERVICES


@dataclass
class Served:
    """A service's servicer served alone on a free port."""

    name: str
    descriptor: ServiceDescriptor
    channel: grpc.aio.Channel


def _servicer_class(module: str) -> type:
    servicers = importlib.import_module(f"{module}.api.servicer")
    return next(
        v
        for k, v in vars(servicers).items()
        if k.endswith("ServiceServicer") and v.__module__ == servicers.__name__
    )


def _is_skeleton(module: str) -> bool:
    params = list(inspect.signature(_servicer_class(module).__init__).parameters.values())[1:]
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


SKELETONS = [s.name for s in SERVICES if _is_skeleton(s.module)]


@pytest.fixture(params=SKELETONS)
async def served(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    """The named service's settings, servicer and interceptors, on port 0."""
    spec = next(s for s in SERVICES if s.name == request.param)
    app = importlib.import_module(f"{spec.module}.app")
    config = importlib.import_module(f"{spec.module}.config")
    settings_cls = next(
        v for k, v in vars(config).items() if k.endswith("Settings") and k != "ServiceSettings"
    )
    settings = settings_cls(grpc_port=0, metrics_port=0)
    descriptor = descriptor_pool.Default().FindServiceByName(app.SERVICE)
    grpc_module = importlib.import_module(
        descriptor.file.name.removesuffix(".proto").replace("/", ".") + "_pb2_grpc"
    )
    servicer = _servicer_class(spec.module)()
    server = RpcServer(
        settings,
        servicers=[(getattr(grpc_module, f"add_{descriptor.name}Servicer_to_server"), servicer)],
        service_names=[app.SERVICE],
    )
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Served(spec.name, descriptor, channel)
    finally:
        await channel.close()
        await server.stop(0)


async def test_health_reports_the_service_serving(served: Served):
    stub = health_pb2_grpc.HealthStub(served.channel)

    reply = await stub.Check(health_pb2.HealthCheckRequest(service=served.descriptor.full_name))

    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_service(served: Served):
    stub = reflection_pb2_grpc.ServerReflectionStub(served.channel)

    async def one_request():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = [
        s.name
        async for reply in stub.ServerReflectionInfo(one_request())
        for s in reply.list_services_response.service
    ]

    assert served.descriptor.full_name in names


async def test_every_rpc_answers_a_definite_status_for_an_empty_request(served: Served):
    outcomes = {}
    for method in served.descriptor.methods:
        call = served.channel.unary_unary(
            f"/{served.descriptor.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=GetMessageClass(method.output_type).FromString,
        )
        try:
            await call(GetMessageClass(method.input_type)(), timeout=5)
            outcomes[method.name] = ("OK", "")
        except grpc.aio.AioRpcError as error:
            outcomes[method.name] = (error.code().name, error.details() or "")

    reads = {m.name for m in served.descriptor.methods if m.GetOptions().idempotency_level == 1}
    codes = {name: code for name, (code, _) in outcomes.items()}
    assert {n: c for n, c in codes.items() if c == "OK" and n not in reads} == {}, "a write answered OK"
    assert set(codes.values()) <= {"UNIMPLEMENTED", "INVALID_ARGUMENT", "OK"}, codes
    for name, (code, details) in outcomes.items():
        if code == "INVALID_ARGUMENT":
            assert ":" in details, f"{served.name}.{name}: field not named in {details!r}"
        if code == "UNIMPLEMENTED":
            assert "not built yet" in details
