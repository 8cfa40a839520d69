"""A tiny servicer for testing libs.rpc without the project's protos: `retail.test.v1.ProbeService`.

It is registered through a generic handler with protobuf well-known types and
`retail.common.v1` messages, the way generated code registers a real service.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import grpc
from google.protobuf import empty_pb2, wrappers_pb2

from libs.rpc import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    current_principal,
    remaining,
)
from libs.telemetry import correlation_id
from retail.common.v1 import common_pb2

SERVICE = "retail.test.v1.ProbeService"

_S = wrappers_pb2.StringValue


class ProbeServicer:
    """Behaviours the interceptor tests need, each selected by the RPC name."""

    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.never = asyncio.Event()

    async def Echo(self, request: _S, context: grpc.aio.ServicerContext) -> _S:
        """Return the correlation id the server saw."""
        return _S(value=correlation_id.get() or "")

    async def Remaining(self, request: _S, context: grpc.aio.ServicerContext) -> _S:
        """Return the seconds left before this call's deadline ("none" without one)."""
        left = remaining()
        return _S(value="none" if left is None else f"{left:.3f}")

    async def Whoami(self, request: _S, context: grpc.aio.ServicerContext) -> _S:
        """Return the authenticated caller's subject."""
        principal = current_principal.get()
        return _S(value=principal.subject if principal else "anonymous")

    async def Fail(self, request: _S, context: grpc.aio.ServicerContext) -> _S:
        """Raise the error named by the request."""
        match request.value:
            case "not_found":
                raise NotFound("order o-1 does not exist", reason="ORDER_UNKNOWN")
            case "invalid":
                raise InvalidArgument("lines[0].sku", "unknown SKU", reason="INVALID_SKU")
            case "precondition":
                raise FailedPrecondition("order is already shipped")
            case "conflict":
                raise Conflict("order changed concurrently")
            case "exhausted":
                raise ResourceExhausted("ERP request budget used up")
            case "abort":
                await context.abort(grpc.StatusCode.OUT_OF_RANGE, "servicer chose this")
            case _:
                raise RuntimeError("crashed while mapping customer jane.doe@example.com")
        return _S()

    async def Flaky(self, request: _S, context: grpc.aio.ServicerContext) -> _S:
        """Fail UNAVAILABLE (or RESOURCE_EXHAUSTED) the first N times per key, then succeed.

        Request value: `<key>:<failures>[:exhausted]`.
        """
        key, failures, *kind = request.value.split(":")
        self.attempts[key] += 1
        if self.attempts[key] <= int(failures):
            if kind:
                raise ResourceExhausted("busy")
            raise Unavailable("ERP is down")
        return _S(value=f"attempt {self.attempts[key]}")

    async def Slow(self, request: _S, context: grpc.aio.ServicerContext) -> _S:
        """Wait forever, until the deadline cancels the call."""
        await self.never.wait()
        return _S()

    async def Price(self, request: common_pb2.Money, context: grpc.aio.ServicerContext) -> common_pb2.Money:
        """Echo a Money; its `currency` rule is checked by the validation interceptor."""
        return request

    async def Record(self, request: common_pb2.EventMeta, context) -> empty_pb2.Empty:
        """Accept an EventMeta; two rules (event_id, occurred_at) are checked by validation."""
        return empty_pb2.Empty()

    async def Count(self, request: _S, context: grpc.aio.ServicerContext) -> AsyncIterator[_S]:
        """Stream `1..N`; a request of `fail` streams one item then raises NotFound."""
        if request.value == "fail":
            yield _S(value="1")
            raise NotFound("stream source vanished")
        for i in range(1, int(request.value) + 1):
            yield _S(value=str(i))


def _unary(fn, request_type, response_type):
    return grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=request_type.FromString, response_serializer=response_type.SerializeToString
    )


def add_probe_servicer(servicer: ProbeServicer, server: grpc.aio.Server) -> None:
    """Register the probe servicer, as generated `add_XServicer_to_server` functions do."""
    handlers = {
        name: _unary(getattr(servicer, name), _S, _S)
        for name in ("Echo", "Remaining", "Whoami", "Fail", "Flaky", "Slow")
    }
    handlers["Price"] = _unary(servicer.Price, common_pb2.Money, common_pb2.Money)
    handlers["Record"] = _unary(servicer.Record, common_pb2.EventMeta, empty_pb2.Empty)
    handlers["Count"] = grpc.unary_stream_rpc_method_handler(
        servicer.Count, request_deserializer=_S.FromString, response_serializer=_S.SerializeToString
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


class ProbeStub:
    """Client for the probe service on any channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        def unary(name, request_type=_S, response_type=_S):
            return channel.unary_unary(
                f"/{SERVICE}/{name}",
                request_serializer=request_type.SerializeToString,
                response_deserializer=response_type.FromString,
            )

        self.Echo = unary("Echo")
        self.Remaining = unary("Remaining")
        self.Whoami = unary("Whoami")
        self.Fail = unary("Fail")
        self.Flaky = unary("Flaky")
        self.Slow = unary("Slow")
        self.Price = unary("Price", common_pb2.Money, common_pb2.Money)
        self.Record = unary("Record", common_pb2.EventMeta, empty_pb2.Empty)
        self.Count = channel.unary_stream(
            f"/{SERVICE}/Count", request_serializer=_S.SerializeToString, response_deserializer=_S.FromString
        )
