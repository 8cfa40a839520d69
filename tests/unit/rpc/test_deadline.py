"""Deadlines: every call carries one, servers see what is left, and expired calls never run."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import wrappers_pb2

from libs.rpc import channel, deadline
from libs.rpc.interceptors import DeadlineInterceptor

from .probe import ProbeStub

S = wrappers_pb2.StringValue
# gRPC sends the timeout rounded up to coarse units, so a server may see a few ms more than was asked.
SLACK_S = 0.05


async def test_slow_call_fails_with_deadline_exceeded(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.Slow(S(), timeout=0.2)

    assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_server_sees_the_time_left(stub) -> None:
    left = float((await stub.Remaining(S(), timeout=2.0)).value)

    assert 0 < left <= 2.0 + SLACK_S


async def test_calls_without_a_timeout_get_the_channels_default(rpc_server) -> None:
    async with channel(f"127.0.0.1:{rpc_server.port}", default_timeout_s=3.0) as ch:
        left = float((await ProbeStub(ch).Remaining(S())).value)

    assert 2.0 < left <= 3.0 + SLACK_S


async def test_plain_calls_without_a_deadline_report_none(rpc_server) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rpc_server.port}") as plain:
        reply = await ProbeStub(plain).Remaining(S())

    assert reply.value == "none"


async def test_outgoing_calls_inherit_what_is_left_of_the_incoming_deadline(rpc_server) -> None:
    token = deadline.set_remaining(0.5)  # as if serving an RPC with half a second left
    try:
        async with channel(f"127.0.0.1:{rpc_server.port}", default_timeout_s=30.0) as ch:
            left = float((await ProbeStub(ch).Remaining(S())).value)
    finally:
        deadline.reset(token)

    assert 0 < left <= 0.5 + SLACK_S


class _ExpiredContext:
    """The two ServicerContext methods DeadlineInterceptor uses, for a call whose deadline has passed.

    A real server cannot deliver such a call deterministically: gRPC cancels it at the deadline,
    usually before any interceptor runs. This checks our guard for the remaining race.
    """

    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def time_remaining(self) -> float:
        return -0.01

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()


async def test_call_whose_deadline_already_passed_never_reaches_the_servicer() -> None:
    ran = asyncio.Event()

    async def behavior(request, context):
        ran.set()

    async def continuation(details):
        return grpc.unary_unary_rpc_method_handler(behavior)

    handler = await DeadlineInterceptor().intercept_service(continuation, None)
    context = _ExpiredContext()

    with pytest.raises(grpc.aio.AbortError):
        await handler.unary_unary(S(), context)

    assert context.aborted is not None and context.aborted[0] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert not ran.is_set()
