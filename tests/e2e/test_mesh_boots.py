"""The whole mesh as processes: every service reaches SERVING and stops cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from libs.bus.embedded import free_port
from tools.supervisor import CLEAN_EXITS, Mesh
from tools.topology import SERVICES, Topology

pytestmark = pytest.mark.e2e


@pytest.fixture
async def mesh(tmp_path: Path):
    """The mesh with its sandbox, every port free, torn down even when the test fails."""
    mesh = Mesh(Topology.with_free_ports(tmp_path / "mesh", f"nats://127.0.0.1:{free_port()}"))
    try:
        await mesh.start(timeout=90)
        yield mesh
    finally:
        await mesh.stop()


async def test_every_service_reports_serving_and_stops_cleanly(mesh: Mesh):
    statuses = {spec.name: await mesh.health(spec) for spec in mesh.topology.services}

    codes = await mesh.stop()

    assert statuses == {spec.name: "SERVING" for spec in SERVICES}
    assert {name: code for name, code in codes.items() if code not in CLEAN_EXITS} == {}
    assert {name: code for name, code in codes.items() if not name.startswith("sandbox-")} == {
        spec.name: 0 for spec in SERVICES
    }
    assert all(c.restarts == 0 for c in mesh.children.values())


async def test_a_killed_service_is_restarted_and_serves_again(mesh: Mesh, caplog: pytest.LogCaptureFixture):
    child = mesh.children["inventory"]
    old_pid = child.pid

    os.kill(old_pid, signal.SIGKILL)
    await _until(lambda: child.restarts == 1 and child.pid != old_pid, timeout=30)
    await mesh.wait_serving(timeout=60)

    assert await mesh.health(mesh.topology.service("inventory")) == "SERVING"
    assert any("inventory exited with code -9; restart #1" in r.getMessage() for r in caplog.records)


async def _until(condition, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)
