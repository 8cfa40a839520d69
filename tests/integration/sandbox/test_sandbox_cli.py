"""Each stand-in as `make run` starts it: `python -m sandbox.<system> --host --port --seed`, faults too."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
TPL_HEADERS = {"Authorization": "Bearer sandbox-tpl-token", "shipbob_channel_id": "1001"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Started:
    """A stand-in running as a child process, and a client for it."""

    process: subprocess.Popen
    http: httpx.Client


@pytest.fixture
def start_cli(tmp_path: Path) -> Iterator[Callable[..., Started]]:
    """``start_cli(module, *args, env={...})``: run a stand-in on a free port; SIGTERM it at teardown."""
    started: list[Started] = []

    def start(module: str, *args: str, env: dict[str, str] | None = None) -> Started:
        port = _free_port()
        environ = {k: v for k, v in os.environ.items() if "_SANDBOX_" not in k} | (env or {})
        process = subprocess.Popen(
            [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"{module}.err").open("wb"),
        )
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0, trust_env=False)
        started.append(Started(process, http))

        def up() -> bool:
            assert process.poll() is None, (tmp_path / f"{module}.err").read_text()
            try:
                return http.get("/_sandbox/state").status_code == 200
            except httpx.TransportError:
                return False

        _wait_until(up, 30.0, f"{module} to listen")
        return started[-1]

    yield start
    for running in reversed(started):
        running.http.close()
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGTERM)
        running.process.wait(timeout=15)


def test_shopify_cli_applies_the_seed_and_the_faults_given_by_flag_and_environment(start_cli) -> None:
    shop = start_cli(
        "sandbox.shopify",
        "--seed",
        "7",
        "--fault",
        'checkout={"error_rate": 1, "error_status": 429, "retry_after_s": 3}',
        "--webhook-faults",
        '{"duplicate_rate": 1}',
        env={"SHOPIFY_SANDBOX_FAULTS": json.dumps({"graphql": {"latency_ms": 1}})},
    )

    checkout = shop.http.post("/_sandbox/checkout", json={"lines": [{"sku": "SKU-1001", "quantity": 1}]})
    configured = shop.http.get("/_sandbox/faults").json()

    assert checkout.status_code == 429
    assert checkout.headers["Retry-After"] == "3" and checkout.headers["X-Sandbox-Fault"] == "error"
    assert configured["seed"] == 7 and set(configured["faults"]) == {"checkout", "graphql"}
    assert configured["faults"]["graphql"]["latency_ms"] == 1
    assert shop.http.get("/_sandbox/state").json()["shop"]["seed"] == 7
    assert shop.http.get("/_sandbox/webhook-faults").json()["duplicate_rate"] == 1.0


def test_business_central_cli_applies_the_seed_and_the_faults_given_by_flag_and_environment(
    start_cli,
) -> None:
    bc = start_cli(
        "sandbox.business_central",
        "--seed",
        "7",
        "--fault",
        'token={"error_rate": 1, "error_status": 503}',
        env={"BC_SANDBOX_FAULTS": json.dumps({"customers.list": {"latency_ms": 2}})},
    )

    token = bc.http.post(
        "/tenant/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "retail-mesh",
            "client_secret": "sandbox-secret",
        },
    )
    configured = bc.http.get("/_sandbox/faults").json()

    assert token.status_code == 503 and token.headers["X-Sandbox-Fault"] == "error"
    assert configured["seed"] == 7 and set(configured["faults"]) == {"token", "customers.list"}


def test_tpl_cli_applies_the_seed_and_the_faults_given_by_flag_and_environment(start_cli, tmp_path) -> None:
    tpl = start_cli(
        "sandbox.tpl",
        "--seed",
        "7",
        "--edi-dir",
        str(tmp_path / "edi"),
        "--fault",
        'location.list={"error_rate": 1, "error_status": 500}',
        env={"TPL_SANDBOX_FAULTS": json.dumps({"order.create": {"drop_response_rate": 1}})},
    )

    locations = tpl.http.get("/2026-07/location", headers=TPL_HEADERS)
    configured = tpl.http.get("/_sandbox/faults").json()

    assert locations.status_code == 500 and locations.headers["X-Sandbox-Fault"] == "error"
    assert configured["seed"] == 7 and set(configured["faults"]) == {"location.list", "order.create"}
    assert (tmp_path / "edi" / "inbound").is_dir()


@pytest.mark.parametrize("module", ["sandbox.shopify", "sandbox.business_central", "sandbox.tpl"])
def test_a_malformed_fault_stops_the_stand_in_with_a_usage_error(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--port", "0", "--fault", 'orders.create={"error_rate": 5}'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "--fault" in result.stderr and "error_rate" in result.stderr
