"""Run the mesh locally: nats-server, the sandbox and every service as supervised child processes.

A child that exits while the mesh is up is restarted with back-off and the restart is logged, as a
Kubernetes Deployment would; stopping sends SIGTERM in reverse start order and SIGKILLs whatever
outlives the grace period. Used by `retail-mesh up` and by the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.bus.embedded import EmbeddedNats
from tools.topology import SandboxSpec, ServiceSpec, Topology

log = logging.getLogger("retail_mesh.supervisor")

RESTART_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
#: Exit codes of a clean stop: 0, or death by the SIGTERM we sent after a graceful shutdown
#: (uvicorn, which serves the sandbox, re-raises the signal once it has drained).
CLEAN_EXITS = frozenset({0, -signal.SIGTERM})
STABLE_AFTER_S = 30.0


@dataclass
class Child:
    """One supervised process and its restart history."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    stopping: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    async def spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:  # noqa: ASYNC230 - an append-open, once per spawn
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                env=self.env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()

    async def supervise(self) -> None:
        """Keep the child running until `stopping` is set; restart it when it dies."""
        attempt = 0
        while not self.stopping:
            assert self.process is not None
            code = await self.process.wait()
            if self.stopping:
                return
            if time.monotonic() - self.started_at > STABLE_AFTER_S:
                attempt = 0
            delay = RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)]
            attempt += 1
            self.restarts += 1
            log.warning(
                "%s exited with code %s; restart #%d in %.1fs (log: %s)",
                self.name,
                code,
                self.restarts,
                delay,
                self.log_path,
            )
            await asyncio.sleep(delay)
            if not self.stopping:
                await self.spawn()

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)

    async def stop(self, grace: float) -> int | None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL. Returns the exit code."""
        self.stopping = True
        if self.task is not None:
            self.task.cancel()
        if self.process is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            log.warning("%s did not stop within %.0fs; killing it", self.name, grace)
            self.signal(signal.SIGKILL)
            return await self.process.wait()


class Mesh:
    """The whole mesh as processes on this machine.

    Args:
        topology: names, ports and data folder.
        with_sandbox: also start the Shopify, Business Central and 3PL stand-ins.
        nats: an already running NATS server to use instead of starting one.
    """

    def __init__(
        self,
        topology: Topology,
        *,
        with_sandbox: bool = True,
        nats: EmbeddedNats | None = None,
        python: str = sys.executable,
    ) -> None:
        self.topology = topology
        self.with_sandbox = with_sandbox
        self.nats = nats
        self._own_nats = nats is None
        self.python = python
        self.children: dict[str, Child] = {}

    @property
    def logs(self) -> Path:
        return self.topology.data_dir / "logs"

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _service_child(self, spec: ServiceSpec) -> Child:
        env = self._base_env() | self.topology.env_for(spec)
        return Child(spec.name, [self.python, "-m", spec.module], env, self.logs / f"{spec.name}.log")

    def _sandbox_child(self, spec: SandboxSpec) -> Child:
        argv = [self.python, "-m", spec.module, "--host", self.topology.host, "--port", str(spec.port)]
        argv += [arg.format(data_dir=self.topology.data_dir) for arg in spec.args]
        env = self._base_env() | {"DATA_DIR": str(self.topology.data_dir)}
        return Child(f"sandbox-{spec.name}", argv, env, self.logs / f"sandbox-{spec.name}.log")

    async def start(self, timeout: float = 60.0) -> None:
        """Start NATS, the sandbox and every service; return when all services are SERVING."""
        self.topology.data_dir.mkdir(parents=True, exist_ok=True)
        if self.nats is None:
            host_port = self.topology.nats_url.rsplit(":", 1)
            self.nats = EmbeddedNats(
                self.topology.data_dir / "nats", port=int(host_port[1]), monitor_port=None
            )
            await asyncio.to_thread(self.nats.start)
        children = []
        if self.with_sandbox:
            children += [self._sandbox_child(s) for s in self.topology.sandbox]
        children += [self._service_child(s) for s in self.topology.services]
        for child in children:
            self.children[child.name] = child
            await child.spawn()
            child.task = asyncio.create_task(child.supervise(), name=f"supervise-{child.name}")
        await self.wait_serving(timeout)

    async def health(self, spec: ServiceSpec, timeout: float = 1.0) -> str:
        """The overall gRPC health status of a service (`SERVING`, `NOT_SERVING`, or `DOWN`)."""
        async with grpc.aio.insecure_channel(f"{self.topology.host}:{spec.grpc_port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
            except grpc.aio.AioRpcError:
                return "DOWN"
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    async def wait_serving(self, timeout: float) -> None:
        """Wait until every service reports SERVING, or raise TimeoutError naming the laggards."""
        deadline = time.monotonic() + timeout
        pending = list(self.topology.services)
        while pending:
            statuses = await asyncio.gather(*(self.health(s) for s in pending))
            pending = [s for s, status in zip(pending, statuses, strict=True) if status != "SERVING"]
            if not pending:
                return
            if time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                raise TimeoutError(f"not SERVING after {timeout:.0f}s: {names} (logs in {self.logs})")
            await asyncio.sleep(0.2)

    def table(self) -> str:
        """A table of what runs where."""
        rows = [("process", "pid", "grpc", "metrics", "http", "log")]
        if self.nats is not None:
            rows.append(
                (
                    "nats-server",
                    str(self.nats.process.pid if self.nats.process else "-"),
                    self.nats.url,
                    "",
                    "",
                    str(self.nats.data_dir / "nats-server.log"),
                )
            )
        for spec in self.topology.sandbox if self.with_sandbox else ():
            child = self.children.get(f"sandbox-{spec.name}")
            rows.append(
                (
                    f"sandbox-{spec.name}",
                    str(child.pid if child else "-"),
                    "",
                    "",
                    f"http://{self.topology.host}:{spec.port}",
                    str(child.log_path if child else ""),
                )
            )
        for spec in self.topology.services:
            child = self.children.get(spec.name)
            http = f"http://{self.topology.host}:{spec.http_port}" if spec.http_port else ""
            rows.append(
                (
                    spec.name,
                    str(child.pid if child else "-"),
                    f"{self.topology.host}:{spec.grpc_port}",
                    str(spec.metrics_port),
                    http,
                    str(child.log_path if child else ""),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)

    async def stop(self, grace: float = 15.0) -> dict[str, int | None]:
        """Stop services (reverse order), then the sandbox, then NATS. Returns exit codes."""
        codes: dict[str, int | None] = {}
        services = [c for c in self.children.values() if not c.name.startswith("sandbox-")]
        sandbox = [c for c in self.children.values() if c.name.startswith("sandbox-")]
        for group in (list(reversed(services)), sandbox):
            results = await asyncio.gather(*(c.stop(grace) for c in group))
            codes.update({c.name: code for c, code in zip(group, results, strict=True)})
        if self.nats is not None and self._own_nats:
            await asyncio.to_thread(self.nats.stop)
        return codes
