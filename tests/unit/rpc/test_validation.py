"""Request validation: protovalidate rules refuse bad requests with INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import grpc
import pytest

from retail.common.v1 import common_pb2


async def test_valid_request_reaches_the_servicer(stub) -> None:
    money = common_pb2.Money(minor_units=1999, currency="USD")

    assert await stub.Price(money) == money


async def test_rule_violation_names_the_field_and_the_rule(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.Price(common_pb2.Money(minor_units=1999, currency="usd"))

    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.value.details().startswith("currency: ")
    assert "^[A-Z]{3}$" in failed.value.details()


async def test_every_violated_field_is_reported(stub) -> None:
    # EventMeta is still growing (protos/ is written in parallel); an empty one breaks several rules.
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.Record(common_pb2.EventMeta())

    violations = failed.value.details().split("; ")
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(violations) >= 2
    assert any(v.startswith("event_id: ") for v in violations)
    assert all(": " in v for v in violations)
