"""Fixtures for the Shopify stand-in tests: the stand-in and a webhook receiver, both real HTTP servers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.common.server import serve_in_thread
from sandbox.shopify.app import create_app
from sandbox.shopify.config import ShopifySettings

FIXTURES = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "shopify"
TOKEN = "shpat_test_token"
SECRET = "hush_webhook_secret"
FAST = {"webhook_time_scale": 1e-5, "webhook_timeout_s": 2.0}


def wait_for(condition: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


@dataclass
class Received:
    """One webhook POST as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver: records every POST; answers with scripted statuses (default 200)."""

    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    always: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"{self.base_url}/hooks/{name}"

    def on(self, name: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == f"/hooks/{name}"]

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        name = request.path_params["name"]
        with self.lock:
            self.received.append(Received(request.url.path, dict(request.headers), body))
            queued = self.script.get(name)
            status = queued.pop(0) if queued else self.always.get(name, 200)
        return Response(status_code=status)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver served on a free loopback port."""
    rec = Receiver()
    app = Starlette(routes=[Route("/hooks/{name}", rec.handle, methods=["POST"])])
    with serve_in_thread(app) as base_url:
        rec.base_url = base_url
        yield rec


class Shopify:
    """A running stand-in and a client for it."""

    def __init__(self, base_url: str, app: Starlette, settings: ShopifySettings) -> None:
        self.base_url = base_url
        self.app = app
        self.settings = settings
        self.http = httpx.Client(base_url=base_url, timeout=10.0, trust_env=False)

    def graphql(
        self, query: str, variables: dict | None = None, token: str | None = TOKEN, version: str = "2026-04"
    ) -> httpx.Response:
        headers = {"X-Shopify-Access-Token": token} if token else {}
        return self.http.post(
            f"/admin/api/{version}/graphql.json",
            json={"query": query, "variables": variables or {}},
            headers=headers,
        )

    def gql(self, query: str, variables: dict | None = None) -> dict[str, Any]:
        """Run a query that must succeed; return ``data``."""
        response = self.graphql(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def checkout(self, *lines: tuple[str, int], **extra: Any) -> dict[str, Any]:
        response = self.http.post(
            "/_sandbox/checkout", json={"lines": [{"sku": s, "quantity": q} for s, q in lines], **extra}
        )
        assert response.status_code == 201, response.text
        return response.json()["order"]

    def subscribe(self, topic: str, uri: str) -> str:
        data = self.gql(
            """mutation($topic: WebhookSubscriptionTopic!, $uri: String!) {
                 webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
                   webhookSubscription { id topic uri } userErrors { field message } } }""",
            {"topic": topic, "uri": uri},
        )
        created = data["webhookSubscriptionCreate"]
        assert created["userErrors"] == [], created
        return created["webhookSubscription"]["id"]

    def deliveries(self, topic: str | None = None) -> list[dict[str, Any]]:
        params = {"topic": topic} if topic else {}
        return self.http.get("/_sandbox/deliveries", params=params).json()["deliveries"]


@pytest.fixture
def shopify_factory() -> Iterator[Callable[..., Shopify]]:
    """Start stand-ins with chosen settings (fast webhook back-off); all stopped at teardown."""
    with_stack: list[Any] = []

    def start(**overrides: Any) -> Shopify:
        settings = ShopifySettings(**{"access_token": TOKEN, "webhook_secret": SECRET, **FAST, **overrides})
        app = create_app(settings)
        context = serve_in_thread(app)
        base_url = context.__enter__()
        shop = Shopify(base_url, app, settings)
        with_stack.append((context, shop))
        return shop

    yield start
    for context, shop in reversed(with_stack):
        shop.http.close()
        context.__exit__(None, None, None)


@pytest.fixture
def shopify(shopify_factory: Callable[..., Shopify]) -> Shopify:
    """A stand-in with default settings (seed 0) and a fast webhook schedule."""
    return shopify_factory()


def fixture_body(name: str) -> dict[str, Any]:
    """The webhook body of a copied fixture (the ``response`` key of Gadget's metadata file)."""
    return json.loads((FIXTURES / "webhooks" / f"{name}.json").read_text())["response"]


@pytest.fixture
def wait() -> Callable[..., Any]:
    """``wait(condition, timeout_s, what)``: poll against a deadline instead of sleeping."""
    return wait_for


@pytest.fixture
def documented_body() -> Callable[[str], dict[str, Any]]:
    """``documented_body("orders_create")``: Shopify's documented example body for a topic."""
    return fixture_body
