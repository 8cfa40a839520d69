"""RpcServer: health SERVING then NOT_SERVING, reflection, limits, and interceptors on every service."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import wrappers_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from libs.telemetry import GRPC_CORRELATION_KEY

from .conftest import make_settings
from .probe import SERVICE, ProbeStub

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_port_zero_binds_a_real_port_and_every_service_is_serving(rpc_server, mesh_channel) -> None:
    health = health_pb2_grpc.HealthStub(mesh_channel)

    overall = await health.Check(health_pb2.HealthCheckRequest(service=""))
    probe = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))

    assert rpc_server.port and rpc_server.port > 0
    assert overall.status == SERVING
    assert probe.status == SERVING


async def test_unknown_service_is_not_found_by_health(mesh_channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await health_pb2_grpc.HealthStub(mesh_channel).Check(
            health_pb2.HealthCheckRequest(service="nope.v1.X")
        )

    assert failed.value.code() == grpc.StatusCode.NOT_FOUND


async def test_mark_not_serving_flips_every_service(rpc_server, mesh_channel) -> None:
    health = health_pb2_grpc.HealthStub(mesh_channel)

    await rpc_server.mark_not_serving()

    for service in ("", SERVICE):
        assert (await health.Check(health_pb2.HealthCheckRequest(service=service))).status == NOT_SERVING


async def test_stop_announces_not_serving_to_watchers_before_closing(start_server) -> None:
    server = await start_server(make_settings(shutdown_grace_s=5))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        first = await watch.read()

        stopping = asyncio.create_task(server.stop())
        second = await asyncio.wait_for(watch.read(), timeout=5)
        watch.cancel()  # the last in-flight call; stop() returns once it is gone, before the grace ends
        await asyncio.wait_for(stopping, timeout=10)

    assert first.status == SERVING
    assert second.status == NOT_SERVING


async def test_stopped_server_refuses_connections(start_server) -> None:
    server = await start_server()
    port = server.port

    await server.stop(0)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_reflection_lists_the_services(mesh_channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(mesh_channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")

    responses = [r async for r in reflection.ServerReflectionInfo(iter([request]))]

    names = {s.name for s in responses[0].list_services_response.service}
    assert names == {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}


async def test_reflection_describes_a_registered_message_file(mesh_channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(mesh_channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="retail.common.v1.Money")

    responses = [r async for r in reflection.ServerReflectionInfo(iter([request]))]

    assert responses[0].file_descriptor_response.file_descriptor_proto


async def test_messages_over_the_size_limit_are_refused(start_server) -> None:
    server = await start_server(make_settings(grpc_max_message_bytes=1024))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await ProbeStub(ch).Echo(wrappers_pb2.StringValue(value="x" * 4096))

    assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_interceptors_also_run_for_generated_registered_services(mesh_channel) -> None:
    # The health service registers through add_registered_method_handlers, unlike generic handlers.
    call = health_pb2_grpc.HealthStub(mesh_channel).Check(
        health_pb2.HealthCheckRequest(), metadata=((GRPC_CORRELATION_KEY, "health-probe-1"),)
    )
    await call

    assert (GRPC_CORRELATION_KEY, "health-probe-1") in tuple(await call.trailing_metadata())
