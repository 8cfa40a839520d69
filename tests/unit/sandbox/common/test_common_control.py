"""The /_sandbox control routes and serve_in_thread, over real HTTP."""

import threading

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.common.control import control_routes
from sandbox.common.counters import CreateCounter
from sandbox.common.faults import FaultInjector
from sandbox.common.server import serve_in_thread


class Toy:
    """A minimal stand-in: a list of things, a create that counts and honours faults."""

    def __init__(self) -> None:
        self.faults = FaultInjector(seed=1)
        self.counter = CreateCounter()
        self.things: list[str] = []
        self.seeds: list[int] = []

    def reset(self, seed: int) -> None:
        self.seeds.append(seed)
        self.things = [f"demo-{seed}"]

    async def create(self, request: Request):
        async def handle():
            key = (await request.json())["key"]
            self.things.append(key)
            self.counter.record("things", key)
            return JSONResponse({"key": key}, status_code=201)

        return await self.faults.guard("things.create", handle)

    def app(self) -> Starlette:
        routes = control_routes(
            state=lambda: {"things": list(self.things)},
            faults=self.faults,
            counter=self.counter,
            reset=self.reset,
        )
        return Starlette(routes=[*routes, Route("/things", self.create, methods=["POST"])])


@pytest.fixture
def toy():
    """A served toy stand-in and its base URL."""
    stand_in = Toy()
    with serve_in_thread(stand_in.app()) as base_url, httpx.Client(base_url=base_url, timeout=5) as client:
        yield stand_in, client


def test_serve_in_thread_serves_on_loopback_and_stops():
    with serve_in_thread(Toy().app()) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{base_url}/_sandbox/state").status_code == 200
        threads = {t.name for t in threading.enumerate()}
        assert any(name.startswith("sandbox:") for name in threads)

    assert not any(t.name.startswith("sandbox:") for t in threading.enumerate())
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/_sandbox/state")


def test_put_faults_in_both_shapes_and_delete(toy):
    _, client = toy

    client.put("/_sandbox/faults", json={"operation": "things.create", "fault": {"error_rate": 1}})
    client.put("/_sandbox/faults", json={"*": {"latency_ms": 1}})
    configured = client.get("/_sandbox/faults").json()["faults"]
    client.delete("/_sandbox/faults", params={"operation": "*"})
    after_one = client.get("/_sandbox/faults").json()["faults"]
    client.delete("/_sandbox/faults")

    assert set(configured) == {"things.create", "*"}
    assert set(after_one) == {"things.create"}
    assert client.get("/_sandbox/faults").json()["faults"] == {}


def test_invalid_fault_is_a_400_and_changes_nothing(toy):
    _, client = toy

    response = client.put("/_sandbox/faults", json={"things.create": {"error_rate": 5}})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert client.get("/_sandbox/faults").json()["faults"] == {}


def test_drop_after_commit_creates_and_counts_though_the_caller_sees_504(toy):
    _, client = toy
    client.put("/_sandbox/faults", json={"things.create": {"drop_response_rate": 1}})

    response = client.post("/things", json={"key": "K-1"})
    client.delete("/_sandbox/faults")
    client.post("/things", json={"key": "K-1"})
    counts = client.get("/_sandbox/counts").json()

    assert response.status_code == 504
    assert response.headers["x-sandbox-fault"] == "dropped-after-commit"
    assert "K-1" in client.get("/_sandbox/state").json()["things"]
    assert counts["attempts"] == {"things": {"K-1": 2}}
    assert counts["duplicates"] == {"things": {"K-1": 2}}
    assert len(counts["created_at"]["things"]["K-1"]) == 2


def test_reset_restores_seeded_state_and_clears_faults_and_counts(toy):
    stand_in, client = toy
    client.post("/things", json={"key": "K-1"})
    client.put("/_sandbox/faults", json={"*": {"error_rate": 1}})

    with_seed = client.post("/_sandbox/reset", json={"seed": 42})
    without_body = client.post("/_sandbox/reset")

    assert with_seed.json() == {"seed": 42}
    assert without_body.json() == {"seed": 42}
    assert stand_in.seeds == [42, 42]
    assert client.get("/_sandbox/state").json() == {"things": ["demo-42"]}
    assert client.get("/_sandbox/faults").json() == {"seed": 42, "faults": {}}
    assert client.get("/_sandbox/counts").json()["attempts"] == {}
