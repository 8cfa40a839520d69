"""Fixtures serving the Business Central stand-in on a free loopback port for each test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.business_central.app import BusinessCentralApp, create_app
from sandbox.business_central.config import BusinessCentralSettings
from sandbox.common.server import serve_in_thread

FIXTURES = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "bc"
SCOPE = "https://api.businesscentral.dynamics.com/.default"
FIXED_NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class FakeClock:
    """A monotonic clock the test moves by hand (token expiry, request window)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class BC:
    """A served stand-in: its base URL, an authenticated client and handy ids."""

    base_url: str
    api: httpx.Client
    raw: httpx.Client
    app: BusinessCentralApp
    clock: FakeClock
    company_id: str

    def url(self, path: str) -> str:
        """An API v2.0 URL under the demo company."""
        return f"/api/v2.0/companies({self.company_id})/{path}"

    def create_order(
        self,
        external: str,
        lines: list[dict[str, Any]] | None = None,
        customer: str = "C10000",
        **fields: Any,
    ) -> httpx.Response:
        """POST salesOrders with deep-inserted lines (default: 2 x SKU-1002)."""
        body = {
            "customerNumber": customer,
            "externalDocumentNumber": external,
            "salesOrderLines": lines
            if lines is not None
            else [{"lineObjectNumber": "SKU-1002", "quantity": 2}],
            **fields,
        }
        return self.api.post(self.url("salesOrders"), json=body, params={"$expand": "salesOrderLines"})

    def token(self, **overrides: str) -> httpx.Response:
        """Ask the token endpoint for a client-credentials token."""
        return get_token(self.raw, **overrides)

    def stock(self, sku: str, location: str) -> float:
        """On hand of a SKU at a location, from the control API."""
        rows = self.raw.get("/_sandbox/state").json()["stock"]
        return next(r["inventory"] for r in rows if r["itemNumber"] == sku and r["locationCode"] == location)


def get_token(client: httpx.Client, **overrides: str) -> httpx.Response:
    """Ask the token endpoint for a client-credentials token."""
    form = {
        "grant_type": "client_credentials",
        "client_id": "retail-mesh",
        "client_secret": "sandbox-secret",
        "scope": SCOPE,
        **overrides,
    }
    return client.post("/contoso-tenant/oauth2/v2.0/token", data=form)


@pytest.fixture
def fixture_keys() -> Callable[[str], set[str]]:
    """Reads the key set of a real Business Central payload copied into tests/fixtures/bc."""
    return lambda name: set(json.loads((FIXTURES / name).read_text()))


@pytest.fixture
def make_bc() -> Iterator[Callable[..., BC]]:
    """A factory serving a stand-in with the given settings; every server stops at teardown."""
    stack: list[Any] = []

    def make(**settings: Any) -> BC:
        clock = FakeClock()
        app = create_app(BusinessCentralSettings(**settings), now=lambda: FIXED_NOW, clock=clock)
        server = serve_in_thread(app)
        base_url = server.__enter__()
        stack.append(server)
        raw = httpx.Client(base_url=base_url, timeout=10)
        stack.append(raw)
        token = get_token(raw).json()["access_token"]
        api = httpx.Client(base_url=base_url, timeout=10, headers={"Authorization": f"Bearer {token}"})
        stack.append(api)
        company_id = api.get("/api/v2.0/companies").json()["value"][0]["id"]
        return BC(base_url, api, raw, app.state.bc, clock, company_id)

    yield make
    for resource in reversed(stack):
        if isinstance(resource, httpx.Client):
            resource.close()
        else:
            resource.__exit__(None, None, None)


@pytest.fixture
def bc(make_bc: Callable[..., BC]) -> BC:
    """A stand-in with default settings (seed 0)."""
    return make_bc()
