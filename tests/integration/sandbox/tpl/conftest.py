"""Fixtures for the 3PL stand-in: the server on a free port, a webhook receiver, waiting, a hand-set clock."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common.server import serve_in_thread
from sandbox.tpl.app import create_app
from sandbox.tpl.config import API_VERSION, DEFAULT_CHANNEL_ID, DEFAULT_TOKEN, TplSettings
from sandbox.tpl.warehouse import Warehouse

HEADERS = {"Authorization": f"Bearer {DEFAULT_TOKEN}", "shipbob_channel_id": str(DEFAULT_CHANNEL_ID)}


def wait_until(predicate: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@dataclass
class Clock:
    """A stand-in for the ``time`` module the warehouse reads: its clock moves only when told."""

    now: float

    def monotonic(self) -> float:
        return self.now

    def move(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Tpl:
    """A running 3PL stand-in and an authenticated client for it."""

    base_url: str
    client: httpx.Client
    warehouse: Warehouse
    edi_dir: Path

    def api(self, path: str) -> str:
        return f"/{API_VERSION}{path}"

    def create_order(
        self, reference_id: str, products: list[tuple[str, int]], **extra: Any
    ) -> httpx.Response:
        body = {
            "reference_id": reference_id,
            "shipping_method": "Standard",
            "recipient": {
                "name": "Ada Lovelace",
                "address": {
                    "address1": "1 Main St",
                    "city": "Springfield",
                    "state": "IL",
                    "country": "US",
                    "zip_code": "62701",
                },
            },
            "products": [{"reference_id": sku, "quantity": qty} for sku, qty in products],
            **extra,
        }
        return self.client.post(self.api("/order"), json=body)

    def inventory(self, sku: str) -> dict[str, Any]:
        (item,) = self.client.get(self.api("/inventory-level"), params={"SKUs": sku}).json()
        return {loc["location_name"]: loc for loc in item["locations"]}

    def outbound(self, prefix: str) -> list[Path]:
        return sorted(p for p in (self.edi_dir / "outbound").glob(f"{prefix}_*.x12"))


def base_settings(edi_dir: Path, **overrides: Any) -> TplSettings:
    """Deterministic test settings: no background loops, millisecond delays, no random splits."""
    settings = TplSettings(
        seed=7,
        simulate=False,
        time_scale=0.001,
        partial_shipment_rate=0.0,
        damaged_return_rate=0.0,
        webhook_backoff_s=20.0,  # 20 ms after scaling
        webhook_timeout_s=2.0,
        edi_dir=edi_dir,
    )
    return replace(settings, **overrides)


@contextlib.contextmanager
def running_tpl(edi_dir: Path, **overrides: Any) -> Iterator[Tpl]:
    """Serve a 3PL stand-in with ``overrides`` on a free port."""
    app = create_app(base_settings(edi_dir, **overrides))
    with (
        serve_in_thread(app) as base_url,
        httpx.Client(base_url=base_url, headers=HEADERS, timeout=10) as client,
    ):
        yield Tpl(base_url=base_url, client=client, warehouse=app.state.warehouse, edi_dir=edi_dir)


@pytest.fixture
def tpl_factory(tmp_path: Path) -> Iterator[Callable[..., contextlib.AbstractContextManager[Tpl]]]:
    """Start 3PL stand-ins with custom settings; each is stopped at the end of its ``with``."""
    yield lambda **overrides: running_tpl(tmp_path / "edi", **overrides)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Stop the warehouse's clock so a test decides when each delay has passed, without sleeping."""
    clock = Clock(time.monotonic())
    monkeypatch.setattr("sandbox.tpl.warehouse.time", clock)
    return clock


@pytest.fixture
def tpl(tmp_path: Path) -> Iterator[Tpl]:
    """A 3PL stand-in with test settings and EDI folders under tmp_path."""
    with running_tpl(tmp_path / "edi") as running:
        yield running


@dataclass
class Receiver:
    """A webhook receiver: records each request, fails the first ``fail_first`` with 500."""

    url: str = ""
    fail_first: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, topic: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r["body"]
                for r in self.requests
                if r["status"] < 300 and (topic is None or r["topic"] == topic)
            ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A small Starlette app on a free port that records webhook deliveries."""
    state = Receiver()

    async def hook(request: Request) -> Response:
        raw = await request.body()
        with state.lock:
            status = 500 if len(state.requests) < state.fail_first else 200
            state.requests.append(
                {
                    "status": status,
                    "topic": request.headers.get("shipbob-topic"),
                    "headers": dict(request.headers),
                    "raw": raw,
                    "body": httpx.Response(200, content=raw).json(),
                }
            )
        return JSONResponse({"ok": status == 200}, status_code=status)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with serve_in_thread(app) as base_url:
        state.url = f"{base_url}/hook"
        yield state
