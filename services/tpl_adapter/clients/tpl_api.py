"""HTTP client of the 3PL's ShipBob-like JSON API (date-versioned paths, bearer token, channel
header on writes), telling transient failures (timeouts, 429 with Retry-After, 5xx) from business
refusals (422 and other 4xx).

Every call takes a slot of the adapter's request budget first (M5, `libs.http.budget`): the 3PL
allows 150 requests a minute, order flow (creates, look-ups, cancellations, address changes, and
the webhook subscriptions shipment notices ride on) goes before bulk work (stock snapshots,
receiving polls, location look-ups), and bulk may use only part of the window. A call that finds
no slot within `max_budget_wait_s` fails as a 429 would, with the time until one frees as its
Retry-After; a 429 from the 3PL pauses the budget for the 3PL's Retry-After.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from libs.http.budget import BudgetExhausted, Lane, RequestBudget
from libs.http.client import async_client

RATE_LIMIT_PER_MINUTE = 150


class TplError(Exception):
    """A 3PL call that failed.

    Attributes:
        status: HTTP status, or None when no answer came (timeout, refused connection).
        code: The 3PL's error code (`DuplicateReferenceId`, `OrderAlreadyShipped`) when given.
        message: The 3PL's message, or the transport error.
        retry_after: Seconds the 3PL asked us to wait (429), if it said.
    """

    def __init__(self, status: int | None, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status or 'no answer'} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """True when trying again later can succeed: no answer, 408, 429 or 5xx."""
        return self.status is None or self.status in (408, 429) or self.status >= 500


@dataclass
class ConnectionHealth:
    """What the last calls said about the connection (for IntegrationService.GetConnection)."""

    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_failure: str = ""
    remaining_calls: int | None = None

    @property
    def reported_share(self) -> float:
        """Share of the 3PL's per-minute limit still free by its own count (`x-remaining-calls`)."""
        if self.remaining_calls is None:
            return 1.0
        return max(0.0, min(1.0, self.remaining_calls / RATE_LIMIT_PER_MINUTE))


class TplApi:
    """The 3PL API.

    Args:
        base_url: API root (`https://api.shipbob.com` or the sandbox).
        token: Bearer token.
        channel_id: Channel sent as `shipbob_channel_id` with writes.
        version: Date version in the paths (`2026-07`).
        timeout_s: Per-call timeout.
        transport: An httpx transport (tests).
        budget: the request budget shared by every caller of this 3PL; None: no client-side budget.
        max_budget_wait_s: longest wait for a budget slot before failing as a 429.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        channel_id: str,
        version: str = "2026-07",
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        budget: RequestBudget | None = None,
        max_budget_wait_s: float | None = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.health = ConnectionHealth()
        self._prefix = f"/{version}"
        self._channel_id = channel_id
        self.budget = budget
        self._max_budget_wait_s = max_budget_wait_s
        self._http = async_client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            transport=transport,
        )

    def budget_available(self) -> float:
        """Share of the 3PL's window free now (GetConnection's `budget_available`): the lower of
        the client-side budget's and the 3PL's own count (`x-remaining-calls`), which also sees
        what other users of the same API token spent."""
        share = self.health.reported_share
        if self.budget is not None:
            share = min(share, self.budget.available())
        return share

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(
        self, method: str, path: str, *, write: bool = False, lane: Lane = Lane.ORDERS, **kwargs: Any
    ) -> Any:
        headers = {"shipbob_channel_id": self._channel_id} if write else {}
        if self.budget is not None:
            try:
                await self.budget.acquire(lane, self._max_budget_wait_s)
            except BudgetExhausted as exhausted:
                raise TplError(429, "ClientBudgetExhausted", str(exhausted), exhausted.retry_after) from None
        try:
            response = await self._http.request(method, self._prefix + path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            self._failed(f"{type(exc).__name__} on {method} {path}")
            raise TplError(None, type(exc).__name__, str(exc) or type(exc).__name__) from exc
        remaining = response.headers.get("x-remaining-calls")
        if remaining is not None and remaining.isdigit():
            self.health.remaining_calls = int(remaining)
        if response.is_success:
            self.health.last_success_at = datetime.now(UTC)
            return response.json() if response.content else None
        code, message = _error_of(response)
        self._failed(f"{response.status_code} {code} on {method} {path}")
        retry_after = response.headers.get("Retry-After") or response.headers.get("x-retry-after")
        after = float(retry_after) if retry_after else None
        if response.status_code == 429 and self.budget is not None:
            self.budget.pause(after if after is not None else 1.0)
        raise TplError(response.status_code, code, message, after)

    def _failed(self, reason: str) -> None:
        self.health.last_failure_at = datetime.now(UTC)
        self.health.last_failure = reason

    async def create_order(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /order; a reference id used before answers 422 `DuplicateReferenceId`."""
        return await self._call("POST", "/order", write=True, json=body)

    async def orders_by_reference(self, reference_id: str) -> list[dict[str, Any]]:
        """GET /order?ReferenceIds=...: the look-up after a lost or duplicate create."""
        return await self._call("GET", "/order", params={"ReferenceIds": reference_id})

    async def get_order(self, order_id: int | str) -> dict[str, Any]:
        """GET /order/{id} with its shipments."""
        return await self._call("GET", f"/order/{order_id}")

    async def cancel_order(self, order_id: int | str) -> dict[str, Any]:
        """POST /order/{id}:cancel; 422 `OrderAlreadyShipped` once anything shipped."""
        return await self._call("POST", f"/order/{order_id}:cancel", write=True)

    async def update_shipment_address(self, shipment_id: int | str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT /shipment/{id}:updateAddress; 422 `ShipmentAlreadyPicked` / `...Shipped` once started."""
        return await self._call("PUT", f"/shipment/{shipment_id}:updateAddress", write=True, json=body)

    async def locations(self) -> list[dict[str, Any]]:
        """GET /location: the fulfillment centers."""
        return await self._call("GET", "/location", lane=Lane.BULK)

    async def inventory_levels(self) -> list[dict[str, Any]]:
        """GET /inventory-level: every item with per-center quantities."""
        return await self._call("GET", "/inventory-level", lane=Lane.BULK)

    async def webhooks(self) -> list[dict[str, Any]]:
        """GET /webhook: the registered subscriptions."""
        return await self._call("GET", "/webhook")

    async def create_webhook(self, topic: str, url: str, description: str) -> dict[str, Any]:
        """POST /webhook: a subscription; the answer shows its signing secret once."""
        return await self._call(
            "POST", "/webhook", json={"topic": topic, "subscription_url": url, "description": description}
        )

    async def delete_webhook(self, subscription_id: int | str) -> None:
        """DELETE /webhook/{id}."""
        await self._call("DELETE", f"/webhook/{subscription_id}")

    async def receiving_orders(
        self, *, statuses: str = "Completed", synced: bool | None = None
    ) -> list[dict[str, Any]]:
        """GET /receiving?Statuses=...&ExternalSync=...: warehouse receiving orders (WROs)."""
        params = {"Statuses": statuses}
        if synced is not None:
            params["ExternalSync"] = "true" if synced else "false"
        return await self._call("GET", "/receiving", params=params, lane=Lane.BULK)

    async def mark_receiving_synced(self, ids: list[int]) -> None:
        """POST /receiving:setExternalSync: the WROs were applied, leave them out of the next poll."""
        await self._call(
            "POST", "/receiving:setExternalSync", json={"ids": ids, "is_external_sync": True}, lane=Lane.BULK
        )


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return str(response.status_code), response.text[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or response.status_code), str(error.get("message") or "")
    return str(response.status_code), str(body)[:500]
