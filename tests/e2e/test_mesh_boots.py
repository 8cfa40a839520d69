"""The whole mesh as processes: every service reaches SERVING and stops cleanly, under the test's
own supervisor and under `retail-mesh up` (what `make run` runs)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.bus.embedded import free_port
from tools.supervisor import CLEAN_EXITS, Mesh
from tools.topology import SANDBOX, SERVICES, Topology

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


# `retail-mesh up`, the console script `make run` runs, as a user starts it.

ROOT = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = Path(sys.executable).with_name("retail-mesh")
SERVING_WITHIN_S = 60.0


@dataclass
class Up:
    """`retail-mesh up` running as a child process, its output files and the processes seen under it."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    out: Path
    err: Path
    started: float = field(default_factory=time.monotonic)
    seen: dict[int, psutil.Process] = field(default_factory=dict)

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def record_children(self) -> None:
        """Remember every process now under the command (its children sit in sessions of their own)."""
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self.seen.setdefault(child.pid, child)

    def leftovers(self) -> list[psutil.Process]:
        """Processes of this mesh still running: those seen under the command, and any process whose
        command line or environment points at its data folder (one started after the last look)."""
        alive = {p.pid: p for p in self.seen.values() if _running(p)}
        for process in psutil.process_iter():
            if process.pid not in alive and process.pid != os.getpid() and _uses(process, self.data_dir):
                alive[process.pid] = process
        return list(alive.values())


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _uses(process: psutil.Process, data_dir: Path) -> bool:
    try:
        if str(data_dir) in " ".join(process.cmdline()):
            return _running(process)
        return process.environ().get("DATA_DIR") == str(data_dir) and _running(process)
    except psutil.Error:  # gone, or another user's process
        return False


def _stop(up: Up) -> None:
    """Stop the command as Ctrl-C would, then kill whatever of the mesh is still running."""
    if up.process.poll() is None:
        up.record_children()
        up.process.send_signal(signal.SIGTERM)
        try:
            up.process.wait(30)
        except subprocess.TimeoutExpired:
            up.process.kill()
            up.process.wait(10)
    leftovers = up.leftovers()
    for process in leftovers:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(leftovers, timeout=10)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    """`retail-mesh up` on free ports with its data in tmp_path; all it started is stopped at teardown."""
    data_dir = (tmp_path / "mesh").resolve()
    out, err = tmp_path / "up.out", tmp_path / "up.err"
    argv = [str(CONSOLE_SCRIPT), "--data-dir", str(data_dir), "up", "--free-ports"]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=stdout, stderr=stderr, start_new_session=True)
    running = Up(process, data_dir, out, err)
    try:
        yield running
    finally:
        _stop(running)


def _table(text: str) -> dict[str, dict[str, str]]:
    """The printed table of what runs where, by process name; empty until it is printed."""
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if re.match(r"process\s+pid\s+grpc\s", line)), None)
    if header is None:
        return {}
    columns = [(m.group(), m.start()) for m in re.finditer(r"\S+", lines[header])]
    rows = {}
    for line in lines[header + 1 :]:
        if not line.strip():
            break
        ends = [start for _, start in columns[1:]] + [None]
        cells = {name: line[start:end].strip() for (name, start), end in zip(columns, ends, strict=True)}
        rows[cells["process"]] = cells
    return rows


async def _health(address: str) -> str:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.aio.AioRpcError as error:
            return error.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def _serving(up: Up, deadline: float) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Wait for the table and for every service in it to answer SERVING; fail at `deadline`."""
    statuses: dict[str, str] = {}
    while True:
        if up.process.poll() is not None:
            pytest.fail(f"retail-mesh up exited with {up.process.returncode}:\n{up.stdout()}\n{up.stderr()}")
        up.record_children()
        table = _table(up.stdout())
        services = {name: row for name, row in table.items() if name in {s.name for s in SERVICES}}
        if services:
            names = list(services)
            found = await asyncio.gather(*(_health(services[n]["grpc"]) for n in names))
            statuses = dict(zip(names, found, strict=True))
            if len(statuses) == len(SERVICES) and set(statuses.values()) == {"SERVING"}:
                return table, statuses
        if time.monotonic() > deadline:
            pytest.fail(
                f"not every service SERVING within {SERVING_WITHIN_S:.0f}s: {statuses or 'no table yet'}\n"
                f"{up.stdout()}\n{up.stderr()[-3000:]}\n(logs in {up.data_dir / 'logs'})"
            )
        await asyncio.sleep(0.2)


async def _exit_code(up: Up, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (code := up.process.poll()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"retail-mesh up still running {timeout:.0f}s after Ctrl-C:\n{up.stdout()}")
        await asyncio.sleep(0.1)
    return code


async def test_retail_mesh_up_serves_every_service_then_stops_cleanly_on_ctrl_c(up: Up):
    table, statuses = await _serving(up, deadline=up.started + SERVING_WITHIN_S)
    up.record_children()

    up.process.send_signal(signal.SIGINT)
    code = await _exit_code(up, timeout=60)

    assert set(table) == {"nats-server", *(f"sandbox-{s.name}" for s in SANDBOX), *(s.name for s in SERVICES)}
    assert all(row["pid"].isdigit() for row in table.values()), table
    assert statuses == {s.name: "SERVING" for s in SERVICES}
    assert code == 0, up.stderr()
    assert "stopped cleanly" in up.stdout(), up.stdout()
    assert "restart #" not in up.stderr(), up.stderr()
    assert {p.pid for p in up.seen.values()} >= {int(row["pid"]) for row in table.values()}
    assert up.leftovers() == []
