"""The peers' shared clients: which answers are worth a retry."""

from __future__ import annotations

import httpx
import pytest

from bench.peers.clients import Refused, TryLater, _check


def _answer(status: int, body: str = "{}") -> httpx.Response:
    return httpx.Response(status, text=body, request=httpx.Request("PATCH", "http://bc/salesOrderLines"))


@pytest.mark.parametrize("status", [412, 429, 500, 503])
def test_a_lost_if_match_race_throttling_and_server_errors_are_retried(status):
    # 412 is Business Central's "Another user has already changed the record. Read the record
    # again and retry": two parcels of one order posted at once. Refusing it lost the order.
    with pytest.raises(TryLater):
        _check(_answer(status))


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_other_client_errors_are_refusals(status):
    with pytest.raises(Refused):
        _check(_answer(status))


def test_a_success_passes():
    answer = _answer(201)
    assert _check(answer) is answer
