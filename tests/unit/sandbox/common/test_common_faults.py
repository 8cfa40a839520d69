"""Unit tests of sandbox.common.faults: which requests a fault setting hits, and how."""

import asyncio
import json
import time

import pydantic
import pytest
from starlette.responses import Response

from sandbox.common.faults import Fault, FaultInjector, dropped_response


async def _outcomes(injector: FaultInjector, operation: str, n: int) -> list[int | None]:
    results = []
    for _ in range(n):
        response = await injector.before(operation)
        results.append(None if response is None else response.status_code)
    return results


async def test_no_fault_lets_every_request_through():
    injector = FaultInjector()

    outcomes = await _outcomes(injector, "orders.create", 20)

    assert outcomes == [None] * 20


async def test_error_rate_one_answers_the_configured_status_with_error_body():
    injector = FaultInjector()
    injector.configure("orders.create", {"error_rate": 1.0, "error_status": 500})

    response = await injector.before("orders.create")

    assert response.status_code == 500
    body = json.loads(response.body)
    assert set(body["error"]) == {"code", "message"}
    assert "retry-after" not in response.headers


async def test_429_carries_retry_after_in_whole_seconds():
    injector = FaultInjector()
    injector.configure("*", Fault(error_rate=1.0, error_status=429, retry_after_s=2.5))

    response = await injector.before("anything")

    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"


async def test_specific_operation_beats_the_wildcard():
    injector = FaultInjector()
    injector.configure("*", {"error_rate": 1.0})
    injector.configure("orders.get", {})

    assert await injector.before("orders.get") is None
    assert (await injector.before("orders.create")).status_code == 503


async def test_same_seed_injects_the_same_errors():
    first, second, other = FaultInjector(seed=7), FaultInjector(seed=7), FaultInjector(seed=8)
    for injector in (first, second, other):
        injector.configure("*", {"error_rate": 0.5})

    a = await _outcomes(first, "x", 64)
    b = await _outcomes(second, "x", 64)
    c = await _outcomes(other, "x", 64)

    assert a == b
    assert a != c
    assert 10 < a.count(503) < 54


async def test_reseed_restarts_the_sequence():
    injector = FaultInjector(seed=3)
    injector.configure("*", {"error_rate": 0.5})
    first = await _outcomes(injector, "x", 32)

    injector.reseed(3)

    assert await _outcomes(injector, "x", 32) == first


async def test_latency_delays_the_request():
    injector = FaultInjector()
    injector.configure("slow", {"latency_ms": 50})
    started = time.monotonic()

    response = await injector.before("slow")

    assert response is None
    assert time.monotonic() - started >= 0.05


async def test_timeout_hangs_until_cleared_then_answers_504():
    injector = FaultInjector()
    injector.configure("hang", {"timeout_rate": 1.0, "timeout_s": 60})
    pending = asyncio.create_task(injector.before("hang"))
    await asyncio.sleep(0)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(pending), timeout=0.05)
    injector.clear()
    response = await asyncio.wait_for(pending, timeout=5)

    assert response.status_code == 504
    assert response.headers["x-sandbox-fault"] == "timeout"


async def test_drop_response_is_decided_after_commit():
    injector = FaultInjector()
    injector.configure("write", {"drop_response_rate": 1.0})

    assert await injector.before("write") is None
    assert injector.should_drop_response("write") is True
    assert injector.should_drop_response("other") is False
    dropped = dropped_response()
    assert dropped.status_code == 504
    assert dropped.headers["x-sandbox-fault"] == "dropped-after-commit"


async def test_guard_does_not_drop_a_failed_write():
    injector = FaultInjector()
    injector.configure("write", {"drop_response_rate": 1.0})

    async def refuse():
        return Response(b"{}", status_code=400)

    response = await injector.guard("write", refuse)

    assert response.status_code == 400


def test_invalid_fault_settings_are_rejected():
    injector = FaultInjector()

    with pytest.raises(pydantic.ValidationError):
        injector.configure("x", {"error_rate": 2})
    with pytest.raises(pydantic.ValidationError):
        injector.configure("x", {"eror_rate": 0.5})
    assert injector.snapshot() == {"seed": 0, "faults": {}}


def test_snapshot_lists_configured_faults():
    injector = FaultInjector(seed=5)
    injector.configure("a", {"latency_ms": 10})

    snapshot = injector.snapshot()

    assert snapshot["seed"] == 5
    assert snapshot["faults"]["a"]["latency_ms"] == 10
    assert snapshot["faults"]["a"]["error_status"] == 503
