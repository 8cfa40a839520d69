"""The 3PL client keeps to its request budget (M5, libs.http.budget): order flow before bulk work,
bulk capped to its share, a 429 from the 3PL pausing every caller; a call without a slot fails as a
429 would, without reaching the 3PL."""

from __future__ import annotations

import httpx
import pytest

from libs.http.budget import Lane, RequestBudget
from services.tpl_adapter.clients.tpl_api import TplApi, TplError


def _api(handler, budget: RequestBudget) -> TplApi:
    return TplApi(
        "http://tpl.test",
        "token",
        channel_id="1001",
        transport=httpx.MockTransport(handler),
        budget=budget,
        max_budget_wait_s=0.01,
    )


async def test_bulk_work_keeps_to_its_share_and_order_flow_still_finds_room():
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json=[] if request.method == "GET" else {"id": 1})

    budget = RequestBudget(3, 60.0, bulk_share=0.34)  # bulk may use 1 of 3
    api = _api(handler, budget)

    await api.inventory_levels()
    with pytest.raises(TplError) as bulk_refused:
        await api.locations()
    await api.create_order({"reference_id": "A"})
    await api.cancel_order(1)
    with pytest.raises(TplError) as full:
        await api.create_order({"reference_id": "B"})
    await api.aclose()

    assert sent == ["GET /2026-07/inventory-level", "POST /2026-07/order", "POST /2026-07/order/1:cancel"]
    for refused in (bulk_refused.value, full.value):
        assert (refused.status, refused.code, refused.transient) == (429, "ClientBudgetExhausted", True)
        assert refused.retry_after is not None and 0 < refused.retry_after <= 60
    assert budget.granted_by_lane[Lane.ORDERS] == 2 and budget.granted_by_lane[Lane.BULK] == 1


async def test_a_429_from_the_3pl_pauses_every_caller_for_its_retry_after():
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(
            429, json={"title": "TooManyRequests"}, headers={"Retry-After": "30", "x-remaining-calls": "0"}
        )

    api = _api(handler, RequestBudget(140, 60.0))

    with pytest.raises(TplError) as told:
        await api.create_order({"reference_id": "A"})
    with pytest.raises(TplError) as paused:
        await api.get_order(1)
    await api.aclose()

    assert (told.value.status, told.value.retry_after) == (429, 30.0)
    assert paused.value.code == "ClientBudgetExhausted" and 29 < (paused.value.retry_after or 0) <= 30
    assert sent == ["/2026-07/order"]  # the paused call never reached the 3PL


async def test_the_free_share_reported_is_the_lower_of_the_budget_s_and_the_3pl_s_count():
    remaining = "140"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": 1}, headers={"x-remaining-calls": remaining})

    budget = RequestBudget(4, 60.0)
    api = _api(handler, budget)
    assert api.budget_available() == 1.0  # nothing spent, nothing heard

    await api.create_order({"reference_id": "A"})
    assert api.budget_available() == 0.75  # our own budget: 1 of 4 spent; the 3PL says 140 free

    remaining = "15"  # another user of the token spent the 3PL's window
    await api.create_order({"reference_id": "B"})
    await api.aclose()
    assert api.budget_available() == 0.1  # 15 of the 3PL's 150
