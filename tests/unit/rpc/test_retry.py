"""Client retries: UNAVAILABLE is retried transparently, back-pressure (RESOURCE_EXHAUSTED) is not."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import wrappers_pb2

from libs.rpc import channel
from libs.telemetry import GRPC_CORRELATION_KEY, RPC_CLIENT_HANDLING_SECONDS

from .probe import ProbeStub

S = wrappers_pb2.StringValue


async def test_unavailable_is_retried_until_it_succeeds(stub, probe) -> None:
    reply = await stub.Flaky(S(value="a:2"))

    assert reply.value == "attempt 3"
    assert probe.attempts["a"] == 3


async def test_retries_stop_at_max_attempts(rpc_server, probe) -> None:
    async with channel(f"127.0.0.1:{rpc_server.port}", max_attempts=2, initial_backoff_s=0.01) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await ProbeStub(ch).Flaky(S(value="b:5"))

    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert probe.attempts["b"] == 2


async def test_resource_exhausted_is_not_retried(stub, probe) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.Flaky(S(value="c:1:exhausted"))

    assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert probe.attempts["c"] == 1


async def test_retried_call_keeps_one_correlation_id(stub) -> None:
    call = stub.Flaky(S(value="d:1"))
    await call

    assert dict(await call.trailing_metadata())[GRPC_CORRELATION_KEY]


async def test_client_latency_is_recorded_by_method_and_code(stub) -> None:
    histogram = RPC_CLIENT_HANDLING_SECONDS.labels("retail.test.v1.ProbeService", "Echo", "OK")
    before = _count(histogram)

    await stub.Echo(S())

    assert _count(histogram) == before + 1


def _count(histogram) -> float:
    return next(s.value for m in histogram.collect() for s in m.samples if s.name.endswith("_count"))
