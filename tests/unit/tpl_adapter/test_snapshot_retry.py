"""The inventory puller honours the 3PL's Retry-After (M3) and backs off only when it was not told."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.tpl_adapter import snapshots
from services.tpl_adapter.clients.tpl_api import TplError


class _Api:
    """Fails with the given errors, then answers with no stock."""

    def __init__(self, *errors: TplError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def inventory_levels(self) -> list[dict[str, Any]]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return []


async def _pull_until_done(api: _Api, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(snapshots.asyncio, "sleep", sleep)
    puller = snapshots.InventoryPuller(api, inventory=None, interval_s=0)  # type: ignore[arg-type]
    await asyncio.wait_for(puller._run(), 5)
    return slept


async def test_a_429_is_retried_when_the_3pl_says_not_after_a_growing_back_off(monkeypatch):
    limited = TplError(429, "TooManyRequests", "150 requests per 60 s exceeded", retry_after=7.0)
    api = _Api(limited, limited, limited, limited)

    slept = await _pull_until_done(api, monkeypatch)

    assert slept == [7.0, 7.0, 7.0, 7.0]
    assert api.calls == 5


async def test_without_retry_after_the_back_off_grows_and_a_zero_retry_after_is_no_busy_loop(monkeypatch):
    unavailable = TplError(503, "Unavailable", "down")
    api = _Api(unavailable, unavailable, TplError(429, "TooManyRequests", "slow down", retry_after=0.0))

    slept = await _pull_until_done(api, monkeypatch)

    assert slept == [1.0, 2.0, snapshots._MIN_RETRY_S]
