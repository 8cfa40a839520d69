"""`python -m bench [--quick]`: one flash-sale run of the mesh, plus the transport ceiling.

Steps, in one process on this machine:
1. start NATS, the sandbox and every service as processes on free ports (tools.supervisor.Mesh);
2. wait until stock is known and the shopify-adapter's webhook subscription exists;
3. place `--orders` orders at `--rate` per second through the Shopify stand-in's checkout, with a
   seeded SKU mix, while the 3PL stand-in is advanced so orders ship;
4. wait until every order is INVOICED (or the deadline), then read the figures from the systems'
   own records: the orders service's status history and the stand-ins' create counts;
5. measure the transport ceiling in the same run: a raw grpc.aio unary echo and a JetStream
   publish-and-consume loop on the run's NATS server;
6. print a table and, as the last line, one JSON object; write that JSON to bench/results/.

`python -m bench --echo-server PORT` is internal: the gRPC echo server runs as its own process so
its CPU is measured apart from the client's, as the mesh's services are.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import random
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
import nats
import psutil

from libs.bus.embedded import free_port
from libs.bus.streams import StreamSpec
from retail.inventory.v1 import inventory_service_pb2, inventory_service_pb2_grpc
from retail.orders.v1 import orders_pb2, orders_service_pb2, orders_service_pb2_grpc
from tools.supervisor import Mesh
from tools.topology import Topology

Status = orders_pb2.OrderStatus
RESULTS = Path(__file__).parent / "results"
#: The SKUs every stand-in is seeded with (sandbox/tpl/state.py SKUS), less SKU-1008: Business
#: Central's seed has none of it at the east location on purpose (an out-of-stock scenario), so its
#: invoice posting is refused and the order stops at SHIPPED; that is a scenario, not a flash sale.
ALL_SKUS = [f"SKU-{n}" for n in range(1001, 1011) if n != 1008]
ECHO_METHOD = "/bench.Echo/Echo"

log = logging.getLogger("bench")


# --------------------------------------------------------------------------------------------
# CPU accounting: psutil over the mesh's child processes, read before and after the load.


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (and their children) so far."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def _mesh_pids(mesh: Mesh) -> tuple[list[int], list[int]]:
    """(mesh pids: services + nats-server, sandbox pids). The sandbox is reported apart."""
    services = [c.pid for n, c in mesh.children.items() if not n.startswith("sandbox-") and c.pid]
    sandbox = [c.pid for n, c in mesh.children.items() if n.startswith("sandbox-") and c.pid]
    if mesh.nats is not None and mesh.nats.process is not None:
        services.append(mesh.nats.process.pid)
    return services, sandbox


def _restarts(mesh: Mesh) -> int:
    # A restarted child has a new pid, so its CPU before the restart is lost: report restarts.
    return sum(c.restarts for c in mesh.children.values())


# --------------------------------------------------------------------------------------------
# The flow: checkout at an offered rate, keep the 3PL moving, wait for INVOICED.


@dataclass
class Flow:
    """Clients for the running mesh and what the load placed."""

    mesh: Mesh
    http: httpx.AsyncClient
    orders: orders_service_pb2_grpc.OrdersServiceStub
    inventory: inventory_service_pb2_grpc.InventoryServiceStub
    #: order id -> wall-clock time the Shopify stand-in answered 201 (the order exists at Shopify).
    placed: dict[str, float] = field(default_factory=dict)
    refused: int = 0

    def sandbox(self, name: str) -> str:
        spec = next(s for s in self.mesh.topology.sandbox if s.name == name)
        return f"http://127.0.0.1:{spec.port}"

    @property
    def webhook_url(self) -> str:
        port = self.mesh.topology.service("shopify-adapter").http_port
        return f"http://127.0.0.1:{port}/webhooks/shopify"


async def _until(check: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


async def _ready(flow: Flow) -> None:
    """Orders placed before stock is known would be backordered, and before the subscription
    exists their webhooks would go nowhere: wait for both, as tests/support/mesh.py does."""

    async def stock_known() -> bool:
        try:
            reply = await flow.inventory.ListPositions(
                inventory_service_pb2.ListPositionsRequest(), timeout=5
            )
        except grpc.aio.AioRpcError:
            return False
        return len(reply.positions) > 0

    async def subscribed() -> bool:
        state = (await flow.http.get(f"{flow.sandbox('shopify')}/_sandbox/state")).json()
        return any(
            s["topic"] == "orders/create" and s["uri"] == flow.webhook_url
            for s in state["webhook_subscriptions"]
        )

    await _until(stock_known, "3PL stock in the inventory service", 120)
    await _until(subscribed, "the adapter's webhook subscription at Shopify", 120)


def _basket(rng: random.Random, skus: list[str]) -> list[dict[str, Any]]:
    """One or two lines of one or two units: small baskets, so the seeded stock never runs out."""
    chosen = rng.sample(skus, k=min(len(skus), rng.choice((1, 1, 2))))
    return [{"sku": sku, "quantity": rng.choice((1, 1, 2))} for sku in chosen]


async def _place(flow: Flow, lines: list[dict[str, Any]]) -> None:
    reply = await flow.http.post(f"{flow.sandbox('shopify')}/_sandbox/checkout", json={"lines": lines})
    if reply.status_code != 201:
        flow.refused += 1
        log.warning("checkout refused: %s %s", reply.status_code, reply.text[:200])
        return
    flow.placed[f"shp-{reply.json()['order']['id']}"] = time.time()


async def _drive(flow: Flow, n: int, rate: float, rng: random.Random, skus: list[str]) -> float:
    """Open-loop load: order i is sent at start + i/rate whether or not earlier ones finished
    (a flash sale does not wait for the mesh). Returns the wall-clock time of the first send."""
    baskets = [_basket(rng, skus) for _ in range(n)]
    start_mono, start_wall = time.monotonic(), time.time()
    tasks = []
    for i, lines in enumerate(baskets):
        delay = start_mono + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_place(flow, lines)))
    await asyncio.gather(*tasks)
    return start_wall


async def _keep_shipping(flow: Flow, every: float) -> None:
    """The 3PL stand-in ships on its own slow clock; advance it so orders reach SHIPPED."""
    while True:
        with contextlib.suppress(httpx.HTTPError):
            await flow.http.post(f"{flow.sandbox('tpl')}/_sandbox/advance", json={"steps": 5, "force": True})
        await asyncio.sleep(every)


async def _settle(flow: Flow, deadline_s: float) -> dict[str, orders_pb2.SalesOrder]:
    """Poll the orders service until every placed order is INVOICED or the deadline passes.
    Returns the last view of each order (absent: the mesh never knew it)."""
    seen: dict[str, orders_pb2.SalesOrder] = {}
    limit = asyncio.Semaphore(16)

    async def get(order_id: str) -> None:
        async with limit:
            try:
                reply = await flow.orders.GetOrder(
                    orders_service_pb2.GetOrderRequest(order_id=order_id), timeout=5
                )
            except grpc.aio.AioRpcError:
                return
            seen[order_id] = reply.order

    deadline = time.monotonic() + deadline_s
    while True:
        pending = [o for o in flow.placed if o not in seen or seen[o].status != Status.ORDER_STATUS_INVOICED]
        if not pending or time.monotonic() > deadline:
            return seen
        await asyncio.gather(*(get(o) for o in pending))
        await asyncio.sleep(0.5)


def _changed_at(order: orders_pb2.SalesOrder, status: int) -> float | None:
    """When the owning system says the order reached `status` (its status history)."""
    for change in order.status_history:
        if change.to_status == status:
            return change.occurred_at.ToDatetime(tzinfo=UTC).timestamp()
    return None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _duplicates(flow: Flow) -> dict[str, Any]:
    """Created-more-than-once counts from each stand-in's own /_sandbox/counts."""
    found: dict[str, Any] = {}
    for system, kind, label in (
        ("business-central", "salesOrders", "erp_sales_orders"),
        ("tpl", "orders", "tpl_orders"),
        ("shopify", "fulfillments", "shopify_fulfillments"),
    ):
        counts = (await flow.http.get(f"{flow.sandbox(system)}/_sandbox/counts")).json()
        created = counts.get("created", {}).get(kind, {})
        found[f"created_{label}"] = sum(created.values())
        found[f"duplicate_{label}"] = sum(n - 1 for n in created.values() if n > 1)
    return found


# --------------------------------------------------------------------------------------------
# Transport ceiling: what one gRPC call and one JetStream message cost on this machine, now.


async def _serve_echo(port: int) -> None:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    # No serializers: the handler sees raw bytes, so no protobuf cost is added to the baseline.
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def _grpc_ceiling(seconds: float, in_flight: int = 16) -> dict[str, float]:
    """Raw grpc.aio unary echo, `in_flight` concurrent callers; CPU counted on both sides."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench", "--echo-server", str(port))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(ECHO_METHOD)
            await channel.channel_ready()
            await call(b"warm-up", timeout=5)
            calls = 0
            stop = time.monotonic() + seconds

            async def caller() -> None:
                nonlocal calls
                while time.monotonic() < stop:
                    await call(b"x" * 64, timeout=5)
                    calls += 1

            cpu0 = time.process_time() + _cpu_seconds([server.pid])
            t0 = time.monotonic()
            await asyncio.gather(*(caller() for _ in range(in_flight)))
            elapsed = time.monotonic() - t0
            cpu = time.process_time() + _cpu_seconds([server.pid]) - cpu0
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 10)
    return {"calls_per_s": calls / elapsed, "cpu_ms_per_call": 1000 * cpu / calls, "in_flight": in_flight}


async def _jetstream_ceiling(
    nats_url: str, nats_pid: int, messages: int, batch: int = 100
) -> dict[str, float]:
    """Publish `messages` to a stream with the mesh's own settings (file storage; the embedded
    server syncs every write), `batch` publishes awaited together, then consume them with a pull
    consumer fetching `batch` at a time and acking each. CPU: this process + nats-server."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    spec = StreamSpec(name="BENCH_CEILING", subjects=("bench.ceiling.>",))
    await js.add_stream(spec.config())
    try:
        payload = b"x" * 256
        cpu0 = time.process_time() + _cpu_seconds([nats_pid])
        t0 = time.monotonic()
        for start in range(0, messages, batch):
            size = min(batch, messages - start)
            await asyncio.gather(*(js.publish("bench.ceiling.msg", payload) for _ in range(size)))
        publish_s = time.monotonic() - t0
        sub = await js.pull_subscribe("bench.ceiling.>", durable="bench-ceiling")
        t1 = time.monotonic()
        consumed = 0
        while consumed < messages:
            for msg in await sub.fetch(batch, timeout=5):
                await msg.ack()
                consumed += 1
        consume_s = time.monotonic() - t1
        cpu = time.process_time() + _cpu_seconds([nats_pid]) - cpu0
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(spec.name)
        await nc.close()
    return {
        "publish_msgs_per_s": messages / publish_s,
        "consume_msgs_per_s": messages / consume_s,
        "cpu_ms_per_msg": 1000 * cpu / messages,
        "messages": messages,
        "batch": batch,
    }


# --------------------------------------------------------------------------------------------
# The run.


def _machine() -> dict[str, Any]:
    model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "host": socket.gethostname(),
        "cores": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="retail-mesh-bench-"))
    topology = Topology.with_free_ports(
        data_dir / "mesh",
        f"nats://127.0.0.1:{free_port()}",
        # Verify inventory against the 3PL often so stock is known soon after start.
        extra_env={"INVENTORY_VERIFY_S": "2"},
    )
    mesh = Mesh(topology)
    result: dict[str, Any] = {"params": vars(args) | {"echo_server": None}}
    try:
        log.info("starting the mesh under %s", data_dir)
        await mesh.start(timeout=120)
        orders_channel = grpc.aio.insecure_channel(f"127.0.0.1:{topology.service('orders').grpc_port}")
        inventory_channel = grpc.aio.insecure_channel(f"127.0.0.1:{topology.service('inventory').grpc_port}")
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http, orders_channel, inventory_channel:
            flow = Flow(
                mesh,
                http,
                orders_service_pb2_grpc.OrdersServiceStub(orders_channel),
                inventory_service_pb2_grpc.InventoryServiceStub(inventory_channel),
            )
            await _ready(flow)
            log.info("mesh ready; placing %d orders at %.0f/s", args.orders, args.rate)

            mesh_pids, sandbox_pids = _mesh_pids(mesh)
            restarts0 = _restarts(mesh)
            mesh_cpu0, sandbox_cpu0 = _cpu_seconds(mesh_pids), _cpu_seconds(sandbox_pids)
            shipping = asyncio.create_task(_keep_shipping(flow, args.advance_every))
            try:
                rng = random.Random(args.seed)
                first_send = await _drive(flow, args.orders, args.rate, rng, ALL_SKUS[: args.skus])
                seen = await _settle(flow, args.deadline)
            finally:
                shipping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await shipping
            mesh_cpu = _cpu_seconds(mesh_pids) - mesh_cpu0
            sandbox_cpu = _cpu_seconds(sandbox_pids) - sandbox_cpu0
            restarts = _restarts(mesh) - restarts0
            duplicates = await _duplicates(flow)

        invoiced = {o: s for o, s in seen.items() if s.status == Status.ORDER_STATUS_INVOICED}
        acceptance = []
        for order_id, order in seen.items():
            erp_created = _changed_at(order, Status.ORDER_STATUS_ERP_CREATED)
            if erp_created is not None:
                acceptance.append(erp_created - flow.placed[order_id])
        last_invoice = max(
            (_changed_at(o, Status.ORDER_STATUS_INVOICED) or 0.0 for o in invoiced.values()), default=0.0
        )
        window = last_invoice - first_send if invoiced else None
        result["flow"] = {
            "orders_offered": args.orders,
            "orders_placed": len(flow.placed),
            "checkouts_refused": flow.refused,
            "orders_invoiced": len(invoiced),
            "lost_orders": len(flow.placed) - len(invoiced),
            "unfinished_by_status": _by_status(flow, seen),
            "order_to_cash_window_s": window,
            "order_to_cash_orders_per_s": len(invoiced) / window if window else None,
            "acceptance_p50_s": _percentile(acceptance, 0.50),
            "acceptance_p99_s": _percentile(acceptance, 0.99),
            "acceptance_max_s": max(acceptance, default=None),
            **duplicates,
            "mesh_cpu_s": mesh_cpu,
            "mesh_cpu_s_per_order": mesh_cpu / len(flow.placed) if flow.placed else None,
            "sandbox_cpu_s": sandbox_cpu,
            "sandbox_cpu_s_per_order": sandbox_cpu / len(flow.placed) if flow.placed else None,
            "process_restarts": restarts,
        }

        # The ceiling is measured after the flow, with the mesh up but idle, on the run's NATS.
        log.info("measuring the transport ceiling")
        grpc_figures = await _grpc_ceiling(args.ceiling_seconds)
        assert mesh.nats is not None and mesh.nats.process is not None
        js_figures = await _jetstream_ceiling(mesh.nats.url, mesh.nats.process.pid, args.jetstream_messages)
        result["ceiling"] = {"grpc_unary_echo": grpc_figures, "jetstream": js_figures}
        per_order = result["flow"]["mesh_cpu_s_per_order"]
        result["mesh_cpu_per_order_in_grpc_calls"] = (
            1000 * per_order / grpc_figures["cpu_ms_per_call"] if per_order else None
        )
    finally:
        log.info("stopping the mesh")
        result["exit_codes"] = await mesh.stop()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            result["data_dir"] = str(data_dir)
    return result


def _by_status(flow: Flow, seen: dict[str, orders_pb2.SalesOrder]) -> dict[str, int]:
    """Orders not INVOICED, counted by their last status (UNKNOWN_TO_MESH: never ingested)."""
    counts: dict[str, int] = {}
    for order_id in flow.placed:
        order = seen.get(order_id)
        name = Status.Name(order.status) if order is not None else "UNKNOWN_TO_MESH"
        if name != "ORDER_STATUS_INVOICED":
            counts[name] = counts.get(name, 0) + 1
    return counts


def _fmt(value: Any, unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value * scale:.{digits}f}{unit}"
    return f"{value}{unit}"


def table(result: dict[str, Any]) -> str:
    flow, ceiling = result["flow"], result["ceiling"]
    g, j = ceiling["grpc_unary_echo"], ceiling["jetstream"]
    rows = [
        ("orders placed / invoiced", f"{flow['orders_placed']} / {flow['orders_invoiced']}"),
        ("order-to-cash throughput", _fmt(flow["order_to_cash_orders_per_s"], " orders/s")),
        ("order-to-cash window", _fmt(flow["order_to_cash_window_s"], " s")),
        ("acceptance latency p50", _fmt(flow["acceptance_p50_s"], " ms", 1000, 0)),
        ("acceptance latency p99", _fmt(flow["acceptance_p99_s"], " ms", 1000, 0)),
        ("lost orders (not INVOICED)", _fmt(flow["lost_orders"])),
        ("duplicate ERP sales orders", _fmt(flow["duplicate_erp_sales_orders"])),
        ("duplicate 3PL orders", _fmt(flow["duplicate_tpl_orders"])),
        ("duplicate Shopify fulfillments", _fmt(flow["duplicate_shopify_fulfillments"])),
        ("mesh CPU per order", _fmt(flow["mesh_cpu_s_per_order"], " ms", 1000, 1)),
        ("sandbox CPU per order (apart)", _fmt(flow["sandbox_cpu_s_per_order"], " ms", 1000, 1)),
        ("process restarts during load", _fmt(flow["process_restarts"])),
        (
            "raw gRPC echo (16 in flight)",
            f"{g['calls_per_s']:.0f} calls/s, {g['cpu_ms_per_call']:.3f} ms CPU/call",
        ),
        (
            "JetStream publish / consume",
            f"{j['publish_msgs_per_s']:.0f} / {j['consume_msgs_per_s']:.0f} msg/s",
        ),
        ("JetStream CPU per message", _fmt(j["cpu_ms_per_msg"], " ms", 1, 3)),
        ("mesh CPU per order, in gRPC calls", _fmt(result["mesh_cpu_per_order_in_grpc_calls"], "x", 1, 0)),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run, well under two minutes")
    parser.add_argument("--orders", type=int, help="orders to place (quick: 30, full: 300)")
    parser.add_argument("--rate", type=float, default=20.0, help="offered checkouts per second")
    parser.add_argument("--skus", type=int, default=10, help="distinct SKUs in the mix (1-9)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the SKU mix")
    parser.add_argument("--deadline", type=float, help="seconds to wait for INVOICED after the load")
    parser.add_argument("--advance-every", type=float, default=0.5, help="seconds between 3PL advances")
    parser.add_argument("--keep", action="store_true", help="keep the run's data folder and logs")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results/")
    parser.add_argument("--echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.skus = max(1, min(args.skus, len(ALL_SKUS)))
    args.orders = args.orders or (30 if args.quick else 300)
    args.deadline = args.deadline or (60.0 if args.quick else 300.0)
    args.ceiling_seconds = 3.0 if args.quick else 10.0
    args.jetstream_messages = 2000 if args.quick else 20000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.echo_server:
        asyncio.run(_serve_echo(args.echo_server))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the progress
    started = datetime.now(UTC)
    result = asyncio.run(run(args))
    result = {"started_at": started.isoformat(timespec="seconds"), "machine": _machine(), **result}
    print(table(result))
    line = json.dumps(result, default=str)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        name = f"{started:%Y-%m-%d}-{result['machine']['host']}{'-quick' if args.quick else ''}.json"
        (RESULTS / name).write_text(json.dumps(result, indent=2, default=str) + "\n")
        log.info("wrote %s", RESULTS / name)
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
