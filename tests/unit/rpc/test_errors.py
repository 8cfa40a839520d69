"""Error mapping: a servicer's DomainError becomes the right status; a crash becomes a generic INTERNAL."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.protobuf import wrappers_pb2

from libs.rpc import InvalidArgument, NotFound, error_from_rpc
from libs.rpc.errors import REASON_KEY
from libs.telemetry import GRPC_CORRELATION_KEY

S = wrappers_pb2.StringValue


async def _fail(stub, kind: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.Fail(S(value=kind))
    return failed.value


@pytest.mark.parametrize(
    ("kind", "code", "details"),
    [
        ("not_found", grpc.StatusCode.NOT_FOUND, "order o-1 does not exist"),
        ("invalid", grpc.StatusCode.INVALID_ARGUMENT, "lines[0].sku: unknown SKU"),
        ("precondition", grpc.StatusCode.FAILED_PRECONDITION, "order is already shipped"),
        ("conflict", grpc.StatusCode.ABORTED, "order changed concurrently"),
        ("exhausted", grpc.StatusCode.RESOURCE_EXHAUSTED, "ERP request budget used up"),
        ("abort", grpc.StatusCode.OUT_OF_RANGE, "servicer chose this"),
    ],
)
async def test_domain_errors_become_their_status(stub, kind, code, details) -> None:
    error = await _fail(stub, kind)

    assert error.code() == code
    assert error.details() == details


async def test_reason_code_and_correlation_id_travel_in_trailing_metadata(stub) -> None:
    error = await _fail(stub, "not_found")

    keys = dict(error.trailing_metadata())
    assert keys[REASON_KEY] == "ORDER_UNKNOWN"
    assert keys[GRPC_CORRELATION_KEY]


async def test_unexpected_exception_is_internal_with_no_detail_and_is_logged(stub, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="libs.rpc.interceptors"):
        error = await _fail(stub, "crash")

    correlation = dict(error.trailing_metadata())[GRPC_CORRELATION_KEY]
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == f"internal error (correlation id {correlation})"
    assert "jane.doe" not in error.details()
    assert any(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in caplog.records)


async def test_error_in_a_response_stream_is_mapped_after_the_items_sent(stub) -> None:
    received = []

    with pytest.raises(grpc.aio.AioRpcError) as failed:
        async for item in stub.Count(S(value="fail")):
            received.append(item.value)

    assert received == ["1"]
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND


async def test_response_stream_passes_through(stub) -> None:
    items = [item.value async for item in stub.Count(S(value="3"))]

    assert items == ["1", "2", "3"]


async def test_caller_can_turn_the_status_back_into_the_domain_error(stub) -> None:
    not_found = error_from_rpc(await _fail(stub, "not_found"))
    invalid = error_from_rpc(await _fail(stub, "invalid"))

    assert isinstance(not_found, NotFound) and not_found.reason == "ORDER_UNKNOWN"
    assert isinstance(invalid, InvalidArgument) and invalid.field == "lines[0].sku"
    assert error_from_rpc(await _fail(stub, "crash")) is None
