"""The systems under test, each on a fresh sandbox of its own: the mesh, the inline peer, the Celery peer.

Every system is started the same way: a data folder, the three stand-ins on free ports (Business
Central with the scenario's faults), then the system's own processes; `ready()` returns once its
webhook subscription exists at the Shopify stand-in (and, for the mesh, once stock is known);
`pids()` are the processes whose CPU is the system's (the stand-ins are reported apart).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil

from bench.peers.clients import Systems
from libs.bus.embedded import free_port
from retail.inventory.v1 import inventory_service_pb2, inventory_service_pb2_grpc
from tools.postgres import PostgresCluster
from tools.supervisor import Child, Mesh
from tools.topology import SANDBOX_CREDENTIALS, SERVICES, Topology

SYSTEMS = ("mesh", "inline", "celery")
#: Receiver floors: `null` (bench/peers/null.py) answers webhooks and does nothing else, so it is
#: measured in the burst scenario alone.
FLOORS = ("null",)
REDIS_SERVER = "/usr/bin/redis-server"


async def until(check: Any, what: str, timeout: float) -> None:
    """Poll `check()` every 0.25 s until it is true, or raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


def ensure_redis_server() -> str:
    """Debian's redis-server, installed with apt-get if missing (the bench runs as root)."""
    found = shutil.which("redis-server") or (REDIS_SERVER if Path(REDIS_SERVER).exists() else None)
    if found:
        return found
    cmd = ["apt-get", "install", "-y", "redis-server"]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, check=True)
        subprocess.run(cmd, capture_output=True, check=True)
    return REDIS_SERVER


class System:
    """One system under test on its own sandbox.

    Args:
        name: `mesh`, `inline`, `celery` or `null` (the receiver floor).
        data_dir: a fresh folder for the stand-ins' and the system's files and logs.
        bc_args: extra command-line arguments of the Business Central stand-in (scenario faults).
        shopify_args: extra command-line arguments of the Shopify stand-in (its plan's API budget).
        inventory_every_s: how often the peers copy 3PL stock to Shopify (the mesh verifies its
            stock against the 3PL as often, `INVENTORY_VERIFY_S`).
        mesh_settings: environment settings given to every service of the mesh (`--mesh-setting`).
    """

    def __init__(
        self,
        name: str,
        data_dir: Path,
        bc_args: tuple[str, ...],
        inventory_every_s: float,
        *,
        database: str = "sqlite",
        shopify_args: tuple[str, ...] = (),
        mesh_settings: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.data_dir = data_dir
        extra_args = {"business-central": bc_args, "shopify": shopify_args}
        sandbox = tuple(
            replace(s, args=s.args + extra_args.get(s.name, ()))
            for s in Topology.with_free_ports(data_dir, "nats://unused:0").sandbox
        )
        nats_url = f"nats://127.0.0.1:{free_port()}"
        # The mesh reads the 3PL's stock as often as the peers copy it, and verifies Shopify as often.
        extra = {
            "INVENTORY_VERIFY_S": f"{inventory_every_s:g}",
            "TPL_INVENTORY_INTERVAL_S": f"{inventory_every_s:g}",
            **(mesh_settings or {}),
        }
        self.postgres: PostgresCluster | None = None
        if name == "mesh":
            urls: dict[str, str] = {}
            if database == "postgresql":
                # As in production: one PostgreSQL (durable, fsync on) with a database per service.
                self.postgres = PostgresCluster.start(fsync=True)
                urls = {s.name: self.postgres.create_database(s.name.replace("-", "_")) for s in SERVICES}
            self.topology = replace(
                Topology.with_free_ports(data_dir / "mesh", nats_url, extra_env=extra, database_urls=urls),
                sandbox=sandbox,
            )
        else:
            # The peers need no service of the mesh; the supervisor still starts an idle NATS,
            # which is not counted as theirs.
            self.topology = Topology(data_dir / "mesh", nats_url, services=(), sandbox=sandbox)
        self.mesh = Mesh(self.topology)
        self.inventory_every_s = inventory_every_s
        self.peer: list[Child] = []
        self.port = free_port()

    def sandbox_url(self, name: str) -> str:
        spec = next(s for s in self.topology.sandbox if s.name == name)
        return f"http://127.0.0.1:{spec.port}"

    @property
    def webhook_url(self) -> str:
        """Where this system receives Shopify's orders/create webhooks."""
        if self.name == "mesh":
            return f"http://127.0.0.1:{self.topology.service('shopify-adapter').http_port}/webhooks/shopify"
        return f"http://127.0.0.1:{self.port}/webhooks/shopify"

    def _peer_env(self) -> dict[str, str]:
        return {
            **SANDBOX_CREDENTIALS,
            "SHOPIFY_WEBHOOK_SECRET": SANDBOX_CREDENTIALS["SHOPIFY_WEBHOOK_SECRETS"],
            "PEER_SHOPIFY_URL": self.sandbox_url("shopify"),
            "PEER_BC_URL": self.sandbox_url("business-central"),
            "PEER_TPL_URL": self.sandbox_url("tpl"),
            "PEER_CALLBACK_URL": f"http://127.0.0.1:{self.port}",
            "PEER_INVENTORY_EVERY_S": f"{self.inventory_every_s:g}",
        }

    async def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = Child(name, argv, self.mesh._base_env() | env, self.mesh.logs / f"{name}.log")
        await child.spawn()
        self.peer.append(child)
        return child

    async def start(self) -> None:
        await self.mesh.start(timeout=120)
        async with httpx.AsyncClient(timeout=5) as http:
            for spec in self.topology.sandbox:

                async def answers(url: str = self.sandbox_url(spec.name)) -> bool:
                    with contextlib.suppress(httpx.HTTPError):
                        return (await http.get(f"{url}/_sandbox/faults")).status_code == 200
                    return False

                await until(answers, f"the {spec.name} stand-in", 60)
        env = self._peer_env()
        python = sys.executable
        if self.name == "null":
            await self._spawn("peer-null", [python, "-m", "bench.peers.null", "--port", str(self.port)], env)
        elif self.name == "inline":
            await self._spawn(
                "peer-inline", [python, "-m", "bench.peers.inline", "--port", str(self.port)], env
            )
        elif self.name == "celery":
            redis_port = free_port()
            redis_dir = self.data_dir / "redis"
            redis_dir.mkdir(parents=True, exist_ok=True)
            argv = [ensure_redis_server(), "--port", str(redis_port), "--bind", "127.0.0.1"]
            argv += ["--dir", str(redis_dir), "--save", "", "--appendonly", "no"]
            await self._spawn("redis-server", argv, {})
            env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            worker = [python, "-m", "celery", "-A", "bench.peers.celery_peer.tasks", "worker", "-B"]
            worker += [
                "--concurrency",
                "8",
                "--loglevel",
                "WARNING",
                "-s",
                str(self.data_dir / "beat-schedule"),
            ]
            await self._spawn("peer-celery-worker", worker, env)
            receiver = [python, "-m", "bench.peers.celery_peer.webhooks", "--port", str(self.port)]
            await self._spawn("peer-celery-webhooks", receiver, env)

    async def copy_stock(self) -> None:
        """Copy the 3PL's stock to Shopify once, as the peers' sync does: a receiver floor moves
        no stock itself, and the burst's checkouts must meet the same stock as every system's."""

        def copy() -> None:
            with Systems(self.mesh._base_env() | self._peer_env()) as systems:
                systems.sync_inventory()

        await asyncio.to_thread(copy)

    async def ready(self, http: httpx.AsyncClient) -> None:
        """Stock known (mesh) and the system's orders/create subscription registered at Shopify."""
        if self.name == "mesh":
            address = f"127.0.0.1:{self.topology.service('inventory').grpc_port}"
            async with grpc.aio.insecure_channel(address) as channel:
                stub = inventory_service_pb2_grpc.InventoryServiceStub(channel)

                async def stock_known() -> bool:
                    try:
                        reply = await stub.ListPositions(
                            inventory_service_pb2.ListPositionsRequest(), timeout=5
                        )
                    except grpc.aio.AioRpcError:
                        return False
                    return len(reply.positions) > 0

                await until(stock_known, "3PL stock in the inventory service", 120)

        async def subscribed() -> bool:
            try:
                state = (await http.get(f"{self.sandbox_url('shopify')}/_sandbox/state")).json()
            except httpx.HTTPError:
                return False
            return any(
                s["topic"] == "orders/create" and s["uri"] == self.webhook_url
                for s in state["webhook_subscriptions"]
            )

        await until(subscribed, f"{self.name}'s webhook subscription at Shopify", 30)

    def pids(self) -> tuple[list[int], list[int]]:
        """(the system's pids, the stand-ins' pids)."""
        children = self.mesh.children
        sandbox = [c.pid for n, c in children.items() if n.startswith("sandbox-") and c.pid]
        if self.name == "mesh":
            own = [c.pid for n, c in children.items() if not n.startswith("sandbox-") and c.pid]
            if self.mesh.nats is not None and self.mesh.nats.process is not None:
                own.append(self.mesh.nats.process.pid)
            own += self.postgres_pids()
        else:
            own = [c.pid for c in self.peer if c.pid]
        return own, sandbox

    def postgres_pids(self) -> list[int]:
        """The PostgreSQL server's processes now (postmaster and backends), if the mesh uses one."""
        if self.postgres is None:
            return []
        postmaster = self.postgres.postmaster_pid()
        if postmaster is None:
            return []
        with contextlib.suppress(psutil.NoSuchProcess):
            return [postmaster, *(c.pid for c in psutil.Process(postmaster).children(recursive=True))]
        return []

    def named_pids(self) -> dict[str, int]:
        """The system's own processes by name (mesh: each service and `nats-server`)."""
        if self.name != "mesh":
            return {c.name: c.pid for c in self.peer if c.pid}
        named = {n: c.pid for n, c in self.mesh.children.items() if not n.startswith("sandbox-") and c.pid}
        if self.mesh.nats is not None and self.mesh.nats.process is not None:
            named["nats-server"] = self.mesh.nats.process.pid
        return named

    def restarts(self) -> int:
        return sum(c.restarts for c in self.mesh.children.values())

    async def stop(self) -> dict[str, int | None]:
        codes: dict[str, int | None] = {}
        for child in reversed(self.peer):
            child.signal(signal.SIGTERM)
        for child in reversed(self.peer):
            assert child.process is not None
            try:
                codes[child.name] = await asyncio.wait_for(child.process.wait(), 15)
            except TimeoutError:
                child.signal(signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    # Celery's prefork children share the worker's session: end them too.
                    os.killpg(child.process.pid, signal.SIGKILL)
                codes[child.name] = await child.process.wait()
        codes.update(await self.mesh.stop())
        if self.postgres is not None:
            self.postgres.stop()
        return codes
