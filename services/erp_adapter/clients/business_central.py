"""Business Central API v2.0 over HTTP: OAuth2 client credentials, company resolution, ETags,
and one classification of every answer (ok, business refusal, not found, conflict, transient).

Every request first takes a slot of the `RequestBudget` in its lane (M5). The client itself retries
only what is free of side effects to retry at once: a 401 (token refreshed once). Everything
transient (timeouts, connection errors, 429, 5xx) is raised as `BcTransientError` with the ERP's
Retry-After, and the caller gives the message back to the bus with that delay (M3): a retry never
holds a database transaction open while it sleeps.

The requests go out on aiohttp directly (`libs.http.answer`), not through httpx: an order costs
about seven Business Central calls, with long OData URLs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from libs.http.answer import Answer, exchange, session
from libs.http.budget import BudgetExhausted, Lane, RequestBudget

API_ROOT = "/api/v2.0"
#: Refresh a token this long before Entra ID says it expires.
TOKEN_MARGIN_S = 120.0


class BcError(Exception):
    """An answer of Business Central that is not a success.

    Attributes:
        status: HTTP status (0 when no answer arrived).
        code: the OData error code (`Application_CustomerBlocked`), or a short description.
        message: the ERP's message, verbatim.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class BcBusinessError(BcError):
    """400: the ERP refused for a business rule (customer blocked, tax area missing, ...)."""


class BcNotFound(BcError):
    """404: the record does not exist (any more)."""


class BcConflict(BcError):
    """412: the record changed since it was read (ETag mismatch); re-read and retry."""


class BcTransientError(BcError):
    """Timeout, connection error, 401 after a refresh, 429 or 5xx: retry later.

    Attributes:
        retry_after: the ERP's Retry-After in seconds, when it sent one.
    """

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after


@dataclass
class ConnectionHealth:
    """What GetConnection reports: last success and last failure (no payloads, no credentials)."""

    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_failure: str = ""


#: A test's look at every answer, before the client classifies it.
ResponseHook = Callable[[Answer], Awaitable[None]]


def _retry_after(response: Answer) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare for BC; the caller's default delay applies


def _error_of(response: Answer) -> tuple[str, str]:
    try:
        error = response.json().get("error") or {}
        return str(error.get("code") or response.reason_phrase), str(error.get("message") or "")
    except (ValueError, AttributeError):
        return response.reason_phrase or str(response.status_code), response.text[:500]


def odata_string(value: str) -> str:
    """An OData string literal: quoted, with single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


class BusinessCentralClient:
    """An async Business Central API v2.0 client for one company.

    Args:
        base_url: API root without `/api/v2.0` (`https://api.businesscentral.dynamics.com/v2.0/
            <tenant>/<environment>`, or the sandbox's `http://127.0.0.1:8002`).
        tenant_id: Entra ID tenant of the client-credentials grant.
        client_id: OAuth2 client id.
        client_secret: returns the current secret (re-read on every token request, for rotation).
        budget: the request budget shared by every caller of this ERP.
        company_id: the company; the first one the API lists when None.
        token_url: token endpoint; defaults to `<scheme://host of base_url>/<tenant>/oauth2/v2.0/token`.
        scope: OAuth2 scope.
        timeout_s: timeout of one HTTP call.
        max_budget_wait_s: longest wait for a budget slot before raising a transient error.
        on_response: coroutines given every answer before it is classified (tests record
            and interfere with them).
    """

    def __init__(
        self,
        *,
        base_url: str,
        tenant_id: str,
        client_id: str,
        client_secret: Callable[[], str | None],
        budget: RequestBudget,
        company_id: str | None = None,
        token_url: str | None = None,
        scope: str = "https://api.businesscentral.dynamics.com/.default",
        timeout_s: float = 10.0,
        max_budget_wait_s: float | None = 5.0,
        on_response: list[ResponseHook] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self.token_url = token_url or f"{parts.scheme}://{parts.netloc}/{tenant_id}/oauth2/v2.0/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self.budget = budget
        self._company_id = company_id
        self._max_budget_wait_s = max_budget_wait_s
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None  # made on the running loop, on first use
        self.on_response: list[ResponseHook] = list(on_response or [])
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self._locations: dict[str, str] = {}
        self.health = ConnectionHealth()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _exchange(self, method: str, url: str, **options: Any) -> Answer:
        """One HTTP request, its answer read whole.

        Raises:
            BcTransientError: a timeout or a connection failure (no answer).
        """
        if self._session is None:
            self._session = session(self._timeout_s, limit=100)  # BC allows 100 at once per user
        try:
            answer = await exchange(self._session, method, url, **options)
        except TimeoutError as error:
            raise self._failed(BcTransientError(0, "Timeout", f"{method} timed out")) from error
        except aiohttp.ClientError as error:
            raise self._failed(BcTransientError(0, "ConnectionError", type(error).__name__)) from error
        for hook in self.on_response:
            await hook(answer)
        return answer

    async def __aenter__(self) -> BusinessCentralClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ token and company

    async def _access_token(self, *, refresh: bool = False) -> str:
        async with self._token_lock:
            if not refresh and self._token and time.monotonic() < self._token_expires:
                return self._token
            form = {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret() or "",
                "scope": self._scope,
            }
            try:
                response = await self._exchange("POST", self.token_url, data=form)
            except BcTransientError as error:
                raise self._failed(BcTransientError(0, "TokenUnreachable", error.code)) from error
            if response.status_code != 200:
                body: dict[str, Any] = {}
                try:
                    body = response.json()
                except ValueError:
                    pass
                # Bad credentials need a fix, then the message replays: transient, loudly.
                raise self._failed(
                    BcTransientError(
                        response.status_code,
                        str(body.get("error") or "TokenRefused"),
                        str(body.get("error_description") or "")[:300],
                        _retry_after(response),
                    )
                )
            token = response.json()
            self._token = str(token["access_token"])
            lifetime = float(token.get("expires_in", 3599))
            self._token_expires = time.monotonic() + max(lifetime - TOKEN_MARGIN_S, lifetime / 2)
            return self._token

    async def company_id(self) -> str:
        """The configured company, or the first one the API lists."""
        if self._company_id is None:
            body = await self._send("GET", f"{self.base_url}{API_ROOT}/companies", lane=Lane.ORDERS)
            companies = body.get("value") or []
            if not companies:
                raise BcError(404, "NoCompany", "the tenant has no company")
            self._company_id = str(companies[0]["id"])
        return self._company_id

    # ------------------------------------------------------------------ requests

    def _failed(self, error: BcError) -> BcError:
        if not isinstance(error, (BcBusinessError, BcNotFound, BcConflict)):
            self.health.last_failure_at = datetime.now(UTC)
            self.health.last_failure = f"{error.status} {error.code}"[:200]
        return error

    async def request(
        self,
        method: str,
        path: str,
        *,
        lane: Lane,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        """Send one request under the company (`salesOrders`, `salesOrders(<id>)/salesOrderLines`).

        Returns:
            The JSON body, `{}` for 204.

        Raises:
            BcBusinessError, BcNotFound, BcConflict, BcTransientError, BcError (other 4xx).
        """
        company = await self.company_id()
        url = f"{self.base_url}{API_ROOT}/companies({company})/{path}"
        return await self._send(method, url, lane=lane, params=params, json=json, if_match=if_match)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        lane: Lane,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        for attempt in (1, 2):
            try:
                await self.budget.acquire(lane, self._max_budget_wait_s)
            except BudgetExhausted as exhausted:
                raise BcTransientError(
                    429, "ClientBudgetExhausted", str(exhausted), exhausted.retry_after
                ) from None
            headers = {"Authorization": f"Bearer {await self._access_token()}"}
            if if_match is not None:
                headers["If-Match"] = if_match
            response = await self._exchange(method, url, params=params, json=json, headers=headers)
            if response.status_code == 401 and attempt == 1:
                await self._access_token(refresh=True)
                continue
            return self._classify(response)
        raise AssertionError("unreachable")

    def _classify(self, response: Answer) -> dict[str, Any]:
        status = response.status_code
        if status < 300:
            self.health.last_success_at = datetime.now(UTC)
            if status == 204 or not response.content:
                return {}
            body = response.json()
            if "@odata.etag" not in body and response.headers.get("ETag"):
                body["@odata.etag"] = response.headers["ETag"]
            return body
        code, message = _error_of(response)
        if status == 429:
            retry_after = _retry_after(response)
            self.budget.pause(retry_after if retry_after is not None else 1.0)
            raise self._failed(BcTransientError(status, code, message, retry_after))
        if status >= 500 or status in (401, 408):
            raise self._failed(BcTransientError(status, code, message, _retry_after(response)))
        if status == 404:
            raise BcNotFound(status, code, message)
        if status == 412:
            raise BcConflict(status, code, message)
        if status == 400 and code.startswith("Application_"):
            raise BcBusinessError(status, code, message)
        raise self._failed(BcError(status, code, message))

    # ------------------------------------------------------------------ helpers

    async def find(
        self, entity_set: str, filter_: str, *, lane: Lane, expand: str | None = None
    ) -> list[dict]:
        """`GET <entity_set>?$filter=...` → the `value` list."""
        params = {"$filter": filter_}
        if expand:
            params["$expand"] = expand
        return list((await self.request("GET", entity_set, lane=lane, params=params)).get("value") or [])

    async def location_id(self, code: str, *, lane: Lane) -> str | None:
        """The systemId of a location code (`EAST`), cached; None when BC has no such location."""
        if code not in self._locations:
            found = await self.find("locations", f"code eq {odata_string(code)}", lane=lane)
            if not found:
                return None
            self._locations[code] = str(found[0]["id"])
        return self._locations[code]
