"""Correlation ids and traces cross a gRPC hop: the same id and the same trace on both sides."""

from __future__ import annotations

import grpc
from google.protobuf import wrappers_pb2
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from libs.telemetry import GRPC_CORRELATION_KEY, correlation_id

from .probe import ProbeStub

S = wrappers_pb2.StringValue


async def test_callers_correlation_id_reaches_the_servicer_and_comes_back(stub) -> None:
    token = correlation_id.set("order-4711-flow")
    try:
        call = stub.Echo(S())
        seen = await call
    finally:
        correlation_id.reset(token)

    assert seen.value == "order-4711-flow"
    assert dict(await call.trailing_metadata())[GRPC_CORRELATION_KEY] == "order-4711-flow"


async def test_call_without_an_id_gets_one_and_learns_it(rpc_server) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rpc_server.port}") as plain:
        call = ProbeStub(plain).Echo(S())
        seen = await call

    assert seen.value
    assert dict(await call.trailing_metadata())[GRPC_CORRELATION_KEY] == seen.value


async def test_malformed_incoming_id_is_replaced(rpc_server) -> None:
    # gRPC itself refuses control characters; what reaches us can still be oversized or odd.
    hostile = "id with spaces {json} " + "x" * 300
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rpc_server.port}") as plain:
        seen = await ProbeStub(plain).Echo(S(), metadata=((GRPC_CORRELATION_KEY, hostile),))

    assert seen.value and seen.value != hostile
    assert len(seen.value) <= 128 and " " not in seen.value


async def test_server_span_continues_the_callers_trace(spans, stub) -> None:
    with trace.get_tracer(__name__).start_as_current_span("caller") as caller:
        await stub.Echo(S())

    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind == SpanKind.SERVER]
    client = [s for s in finished if s.kind == SpanKind.CLIENT]
    assert len(server) == 1 and len(client) == 1
    assert server[0].name == "/retail.test.v1.ProbeService/Echo"
    assert server[0].context.trace_id == caller.get_span_context().trace_id
    assert server[0].parent.span_id == client[0].context.span_id


async def test_server_span_records_the_mapped_status(spans, stub) -> None:
    try:
        await stub.Fail(S(value="not_found"))
    except grpc.aio.AioRpcError:
        pass

    (server,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
