"""`python -m bench [--quick]`: the flash-sale benchmark of the mesh and its peers, on one machine.

For each scenario (`--scenario sustained|slow-erp|burst|all`) and each system (`--systems
mesh,inline,celery,null`; null, the receiver floor, in the burst only), on a fresh sandbox of its
own (bench/systems.py):
1. start the stand-ins (Business Central with the scenario's faults) and the system;
2. wait until it is subscribed at Shopify (and, for the mesh, knows its stock); set the hot SKUs'
   stock at the 3PL and wait (bounded) until Shopify shows it;
3. place orders through the Shopify stand-in: open-loop checkouts at `--rate` (sustained,
   slow-erp) or `--burst-orders` in one bulk checkout (burst), while the 3PL is advanced so
   orders ship and a SKU nobody buys is recounted at the 3PL now and then (inventory lag);
4. wait until every order is done (fulfilled with tracking at Shopify, invoiced in Business
   Central) or the deadline passes; read every figure from the stand-ins' own records
   (bench/figures.py), for the mesh also its own position changes from JetStream against them
   (bench/positions.py), and the system's CPU from /proc (bench/cpuload.py);
5. stop everything. The transport ceiling (raw gRPC echo, JetStream) is measured once, in the first
   mesh run, with the mesh idle.
Then print a table per scenario and, as the last line, one JSON object; write it to bench/results/.

`python -m bench --echo-server PORT` is internal: the gRPC echo server runs as its own process so
its CPU is measured apart from the client's, as the mesh's services are.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import platform
import random
import shutil
import signal
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
import nats

from bench import delivery, hop
from bench.cpuload import LOAD, CpuTimeline, busy_cores, cpu_seconds
from bench.figures import collect, compute
from bench.positions import availability_changes, position_lag
from bench.profile import Profiler
from bench.systems import FLOORS, SYSTEMS, System, until
from libs.bus.embedded import free_port
from libs.bus.streams import StreamSpec

RESULTS = Path(__file__).parent / "results"
#: The SKUs every stand-in is seeded with (sandbox/tpl/state.py SKUS), less SKU-1008: Business
#: Central's seed has none of it at the east location on purpose (an out-of-stock scenario), so its
#: invoice posting is refused; that is a scenario, not a flash sale. Nobody buys it here, so the
#: bench recounts it at the 3PL to time inventory updates.
ALL_SKUS = [f"SKU-{n}" for n in range(1001, 1011) if n != 1008]
RESTOCK_SKU = "SKU-1008"
#: Units per center the restock SKU is set to before the load (every seeded count is 40 or more).
RESTOCK_BASE = 30
SCENARIOS = ("sustained", "slow-erp", "burst")
ECHO_METHOD = "/bench.Echo/Echo"
#: The figures a receiver floor reports; the rest would only say it did nothing.
FLOOR_FIGURES = {
    "orders_placed",
    "webhook_ack_p50_s",
    "webhook_ack_p99_s",
    "webhook_ack_max_s",
    "webhook_attempts",
    "webhook_failed_attempts",
}

log = logging.getLogger("bench")


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

            cpu0 = time.process_time() + cpu_seconds([server.pid])
            t0 = time.monotonic()
            await asyncio.gather(*(caller() for _ in range(in_flight)))
            elapsed = time.monotonic() - t0
            cpu = time.process_time() + cpu_seconds([server.pid]) - cpu0
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
        cpu0 = time.process_time() + cpu_seconds([nats_pid])
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
        cpu = time.process_time() + cpu_seconds([nats_pid]) - cpu0
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
# The load: baskets, checkouts, the 3PL kept moving, recounts of the restock SKU.


def _basket(rng: random.Random, skus: list[str], hot: list[str], hot_share: float) -> list[dict[str, Any]]:
    """One or two lines of one or two units; with `hot_share` one line is a hot SKU."""
    cold = [s for s in skus if s not in hot] or skus
    chosen = rng.sample(cold, k=min(len(cold), rng.choice((1, 1, 2))))
    if hot and rng.random() < hot_share:
        chosen[0] = rng.choice(hot)
    return [{"sku": sku, "quantity": rng.choice((1, 1, 2))} for sku in dict.fromkeys(chosen)]


async def _checkouts(http: httpx.AsyncClient, shopify: str, baskets: list[Any], rate: float) -> int:
    """Open-loop: order i is sent at start + i/rate whatever happened to earlier ones. Returns the
    number refused (a hot SKU sold out at Shopify is refused, as a real checkout would be)."""
    refused = 0

    async def place(lines: list[dict[str, Any]]) -> None:
        nonlocal refused
        reply = await http.post(f"{shopify}/_sandbox/checkout", json={"lines": lines})
        if reply.status_code != 201:
            refused += 1

    start = time.monotonic()
    tasks = []
    for i, lines in enumerate(baskets):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(place(lines)))
    await asyncio.gather(*tasks)
    return refused


async def _burst(http: httpx.AsyncClient, shopify: str, baskets: list[Any]) -> int:
    """Every order in one bulk checkout: their webhooks leave the stand-in at once."""
    reply = await http.post(
        f"{shopify}/_sandbox/checkout/bulk", json={"orders": [{"lines": b} for b in baskets]}, timeout=120
    )
    reply.raise_for_status()
    return len(reply.json()["refused"])


def next_tick(start: float, every: float, now: float) -> float:
    """The first tick of a clock started at `start` with period `every` that is later than `now`."""
    return start + (math.floor((now - start) / every) + 1) * every


async def _keep_shipping(http: httpx.AsyncClient, tpl: str, every: float) -> None:
    """The 3PL stand-in ships on its own slow clock; advance it so orders reach shipped.

    The advances fall at fixed times (start + k * every), however long each request takes: a
    warehouse's waves do not wait for the integration. Sleeping `every` after each answer made the
    waves drift later by each request's latency, so a system that loaded the box more got later
    waves (0.1 s by the end of a six-second sale in a kept run; decision 0046)."""
    start = time.monotonic()
    while True:
        with contextlib.suppress(httpx.HTTPError):
            await http.post(f"{tpl}/_sandbox/advance", json={"steps": 5, "force": True})
        now = time.monotonic()
        await asyncio.sleep(next_tick(start, every, now) - now)


async def _recount(http: httpx.AsyncClient, tpl: str, every: float, restocks: list[dict[str, Any]]) -> None:
    """A cycle count of the restock SKU at the 3PL every `every` seconds, alternating centers.

    Counts alternate between RESTOCK_BASE - 1 and RESTOCK_BASE per center (see `_set_stock`), so
    each one changes the figure by one unit: within any system's reconciliation bounds, so it is
    a change every system should pass on to Shopify, never one held for a person to confirm."""
    n = 0
    while True:
        location = ("EAST", "WEST")[n % 2]
        on_hand = RESTOCK_BASE - 1 + (n // 2) % 2
        sent = time.time()
        with contextlib.suppress(httpx.HTTPError):
            reply = await http.post(
                f"{tpl}/_sandbox/inventory",
                json={"sku": RESTOCK_SKU, "location": location, "on_hand": on_hand},
            )
            if reply.status_code < 300:
                # The count is applied before the answer: its time is between these two.
                restocks.append({"sku": RESTOCK_SKU, "location": location, "on_hand": on_hand, "at": sent})
        n += 1
        await asyncio.sleep(every)


async def _set_stock(http: httpx.AsyncClient, system: System, hot: list[str], units: int) -> dict[str, int]:
    """Give each hot SKU `units` at the 3PL (split over both centers) and the restock SKU
    RESTOCK_BASE per center (below every seeded count, so a lower count every system applies);
    wait up to 60 s until Shopify shows both. Returns hot SKU → units held."""
    tpl = system.sandbox_url("tpl")
    counts = [(sku, "EAST", units - units // 2) for sku in hot] + [(sku, "WEST", units // 2) for sku in hot]
    counts += [(RESTOCK_SKU, location, RESTOCK_BASE) for location in ("EAST", "WEST")]
    for sku, location, on_hand in counts:
        reply = await http.post(
            f"{tpl}/_sandbox/inventory", json={"sku": sku, "location": location, "on_hand": on_hand}
        )
        reply.raise_for_status()
    if system.name in FLOORS:
        await system.copy_stock()

    async def shopify_shows_it() -> bool:
        inventory = (await http.get(f"{system.sandbox_url('shopify')}/_sandbox/state")).json()["inventory"]

        def available(sku: str) -> int:
            return sum(level["available"] for level in inventory[sku]["levels"].values())

        return available(RESTOCK_SKU) == 2 * RESTOCK_BASE and all(available(sku) <= units for sku in hot)

    try:
        await until(shopify_shows_it, "Shopify to show the hot and restock SKUs' stock", 60)
    except TimeoutError:
        log.warning("%s: Shopify does not show the 3PL's hot or restock stock after 60 s", system.name)
    return {sku: units for sku in hot}


async def run_one(
    args: argparse.Namespace, scenario: str, name: str, ceiling: dict[str, Any]
) -> dict[str, Any]:
    """One system in one scenario on its own fresh sandbox; returns its figures."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"retail-mesh-bench-{scenario}-{name}-"))
    bc_args: tuple[str, ...] = ()
    if scenario == "slow-erp":
        fault = json.dumps({"latency_ms": args.slow_erp_latency_ms})
        # The supervisor formats stand-in arguments with str.format: double the JSON's braces.
        fault = fault.replace("{", "{{").replace("}", "}}")
        bc_args = ("--fault", f"*={fault}", "--rate-limit", str(args.slow_erp_rate_limit))
        bc_args += ("--rate-window-s", str(args.slow_erp_window_s))
    # Shopify's GraphQL budget is the plan's: Standard by default (2,000 points, 100 a second).
    shopify_args = ("--throttle-capacity", f"{args.shopify_bucket:g}")
    shopify_args += ("--throttle-restore-rate", f"{args.shopify_restore_rate:g}")
    system = System(
        name,
        data_dir,
        bc_args,
        args.inventory_every,
        database=args.mesh_db,
        shopify_args=shopify_args,
        mesh_settings=dict(setting.split("=", 1) for setting in args.mesh_setting),
    )
    result: dict[str, Any] = {"system": name, "scenario": scenario}
    try:
        log.info("%s/%s: starting under %s", scenario, name, data_dir)
        await system.start()
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            await system.ready(http)
            hot = ALL_SKUS[: args.hot_skus]
            hot_stock = await _set_stock(http, system, hot, args.hot_stock)
            rng = random.Random(args.seed)
            skus = ALL_SKUS[: args.skus]
            n = args.burst_orders if scenario == "burst" else args.orders
            baskets = [_basket(rng, skus, hot, args.hot_share) for _ in range(n)]

            own, sandbox = system.pids()
            restarts0 = system.restarts()
            cpu0, sandbox_cpu0 = cpu_seconds(own), cpu_seconds(sandbox)
            named = system.named_pids()
            per_process0 = {n: cpu_seconds([pid]) for n, pid in named.items()}
            profiler = None
            if args.profile and name == "mesh":
                services = {n: pid for n, pid in named.items() if n in system.mesh.children}
                profiler = Profiler(services, data_dir / "profiles")
                profiler.start()  # first: if py-spy is missing, nothing is left running
            # The groups the figure sums, and each of the system's own processes for a closer look.
            each = {n: [pid] for n, pid in named.items()}
            timeline = CpuTimeline({"system": own, "sandbox": sandbox, **each})
            timeline.start()
            restocks: list[dict[str, Any]] = []
            background = [
                asyncio.create_task(_keep_shipping(http, system.sandbox_url("tpl"), args.advance_every)),
                asyncio.create_task(_recount(http, system.sandbox_url("tpl"), args.recount_every, restocks)),
            ]
            since = time.time()
            try:
                log.info("%s/%s: placing %d orders", scenario, name, n)
                shopify = system.sandbox_url("shopify")
                if scenario == "burst":
                    refused = await _burst(http, shopify, baskets)
                else:
                    refused = await _checkouts(http, shopify, baskets, args.rate)
                await _settle(http, system, since, n - refused, args.deadline, accepted=scenario == "burst")
                # Let at least three recounts reach Shopify, however fast the orders were done
                # (a receiver floor moves no stock: nothing to wait for).
                rest = since + 3 * args.recount_every + 5 - time.time() if name not in FLOORS else 0
                if rest > 0:
                    await asyncio.sleep(rest)
            finally:
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
                await timeline.stop()
                if profiler is not None:
                    result["profile"] = await asyncio.to_thread(profiler.stop)
            if system.postgres is not None:
                # PostgreSQL backends opened during the load count in full (they started from
                # zero); ended ones are in the postmaster's children times.
                own = list(dict.fromkeys([*own, *system.pids()[0]]))
            cpu = cpu_seconds(own) - cpu0
            per_process = {n: cpu_seconds([pid]) - per_process0[n] for n, pid in named.items()}
            sandbox_cpu = cpu_seconds(sandbox) - sandbox_cpu0
            changes: list[dict[str, Any]] | None = None
            if name == "mesh":
                # The mesh's own position changes, read before the stand-ins' records so every
                # change read had until the records were read to reach Shopify.
                assert system.mesh.nats is not None
                try:
                    changes = await availability_changes(system.mesh.nats.url)
                except Exception:  # a figure missing must not lose the run's other figures
                    log.exception("%s/%s: could not read AvailabilityChanged from JetStream", scenario, name)
            records = await collect(
                http, {s.name: system.sandbox_url(s.name) for s in system.topology.sandbox}
            )
        figures = compute(
            records,
            since=since,
            webhook_url=system.webhook_url,
            hot_stock=hot_stock,
            restocks=restocks,
            lost_unless="accepted" if scenario == "burst" else "done",
        )
        if name in FLOORS:
            # It receives and forgets: only what the stand-in timed of its answers means anything.
            figures = {k: (v if k in FLOOR_FIGURES else None) for k, v in figures.items()}
        if changes is not None:
            figures.update(position_lag(changes, records["shopify"], since=since))
            if args.keep:
                (data_dir / "position_changes.json").write_text(json.dumps(changes, indent=1) + "\n")
        if figures["acceptance_window_s"]:
            # How busy the box was while orders were being accepted: saturated, and by whom.
            end = since + figures["acceptance_window_s"]
            busy = busy_cores(timeline.samples, since, end)
            groups = ("system", "sandbox", LOAD)
            figures["cores_busy_while_accepting"] = {g: v for g, v in busy.items() if g in groups}
            figures["cores_busy_while_accepting_by_process"] = dict(
                sorted(((g, v) for g, v in busy.items() if g not in groups), key=lambda x: -x[1])
            )
        if args.keep:
            # What every figure was computed from, for a look after the run.
            (data_dir / "records.json").write_text(json.dumps({"since": since, **records}) + "\n")
            (data_dir / "cpu_timeline.json").write_text(json.dumps(timeline.as_json(since), indent=1) + "\n")
        placed = figures["orders_placed"]
        result.update(
            figures,
            checkouts_refused=refused,
            cpu_s=cpu,
            cpu_s_per_order=cpu / placed if placed else None,
            cpu_ms_per_order_by_process=(
                {n: round(1000 * v / placed, 1) for n, v in sorted(per_process.items(), key=lambda x: -x[1])}
                if placed
                else {}
            ),
            sandbox_cpu_s_per_order=sandbox_cpu / placed if placed else None,
            process_restarts=system.restarts() - restarts0,
        )
        if name == "mesh" and not ceiling and not args.no_ceiling:
            log.info("measuring the transport ceiling (mesh idle)")
            grpc_figures = await _grpc_ceiling(args.ceiling_seconds)
            nats_server = system.mesh.nats
            assert nats_server is not None and nats_server.process is not None
            js = await _jetstream_ceiling(nats_server.url, nats_server.process.pid, args.jetstream_messages)
            log.info("measuring the durable-hop floor (bench.hop, its own nats-server)")
            floor = await hop.standalone(args.hop_events)
            ceiling.update(grpc_unary_echo=grpc_figures, jetstream=js, durable_hop=floor)
        if name == "mesh" and ceiling and result["cpu_s_per_order"]:
            result["cpu_per_order_in_grpc_calls"] = (
                1000 * result["cpu_s_per_order"] / ceiling["grpc_unary_echo"]["cpu_ms_per_call"]
            )
            result["cpu_per_order_in_durable_hops"] = (
                1000 * result["cpu_s_per_order"] / ceiling["durable_hop"]["cpu_ms_per_hop"]
            )
    finally:
        log.info("%s/%s: stopping", scenario, name)
        result["exit_codes"] = await system.stop()
        if name == "mesh" and args.mesh_db == "sqlite":
            try:  # the services have stopped: their SQLite files are complete
                result.update(delivery.summary(data_dir / "mesh"))
            except Exception:  # a figure missing must not lose the run's other figures
                log.exception("%s/%s: could not read the delivery delays", scenario, name)
        if args.keep:
            result["data_dir"] = str(data_dir)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    return result


async def _settle(
    http: httpx.AsyncClient,
    system: System,
    since: float,
    expected: int,
    deadline_s: float,
    *,
    accepted: bool = False,
) -> None:
    """Wait until `expected` orders are done (or, with `accepted`, have their ERP sales order;
    a receiver floor: have their webhook answered; read from the stand-ins) or the deadline passes."""
    from bench.figures import accepted_orders, answered_orders, done_orders

    urls = {s.name: system.sandbox_url(s.name) for s in system.topology.sandbox}
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        await asyncio.sleep(2.0)
        with contextlib.suppress(httpx.HTTPError):
            records = await collect(http, urls)
            if system.name in FLOORS:
                done, what = answered_orders(records, since, system.webhook_url), "answered"
            elif accepted:
                done, what = accepted_orders(records, since), "accepted"
            else:
                done, what = done_orders(records, since), "done"
            log.info("%s: %d/%d %s", system.name, len(done), expected, what)
            if len(done) >= expected:
                return


async def run(args: argparse.Namespace) -> dict[str, Any]:
    # SIGTERM (a CI timeout, `kill`) stops the bench like Ctrl-C does: the run is cancelled and
    # every system's `finally` stops the processes it started, instead of leaving them orphaned.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    ceiling: dict[str, Any] = {}
    runs: dict[str, dict[str, Any]] = {}
    for scenario in args.scenarios:
        for name in args.systems:
            if name in FLOORS and scenario != "burst":
                continue  # a receiver floor says something about bursts of webhooks only
            runs.setdefault(scenario, {})[name] = await run_one(args, scenario, name, ceiling)
    return {
        "params": {k: v for k, v in vars(args).items() if k != "echo_server"},
        "runs": runs,
        "ceiling": ceiling,
    }


ROWS = (
    ("orders placed / done", lambda r: f"{r['orders_placed']} / {r['orders_done']}"),
    ("order-to-cash (orders/s)", lambda r: _fmt(r["order_to_cash_orders_per_s"])),
    ("webhook ack p50 / p99 / max (ms)", lambda r: _triple(r, "webhook_ack", ("p50", "p99", "max"))),
    ("webhook attempts / failed", lambda r: f"{r['webhook_attempts']} / {r['webhook_failed_attempts']}"),
    ("orders placed per second (first to last)", lambda r: _fmt(r.get("orders_placed_per_s"), 1, 1)),
    ("acceptance p50 / p99 (ms)", lambda r: _triple(r, "acceptance", ("p50", "p99"))),
    ("cores busy while accepting: system / stand-ins / load", lambda r: _cores(r)),
    ("inventory lag p50 / p99 (ms)", lambda r: _triple(r, "inventory_lag", ("p50", "p99"))),
    ("position → Shopify lag p50 / p99 (ms)", lambda r: _triple(r, "position_lag", ("p50", "p99"))),
    ("position changes measured (coalesced) / already shown / unshown", lambda r: _position_counts(r)),
    ("event delivery p50 / p99 / max (ms)", lambda r: _triple(r, "event_delivery", ("p50", "p99", "max"))),
    ("lost orders (not done)", lambda r: _fmt(r["lost_orders"])),
    ("duplicate ERP sales orders", lambda r: _fmt(r["duplicate_erp_sales_orders"])),
    ("duplicate 3PL orders", lambda r: _fmt(r["duplicate_tpl_orders"])),
    ("duplicate fulfillments", lambda r: _fmt(r["duplicate_shopify_fulfillments"])),
    ("oversold units", lambda r: _fmt(r["oversold_units"])),
    ("CPU per order (ms)", lambda r: _fmt(r["cpu_s_per_order"], 1000, 1)),
    ("CPU per order in gRPC calls", lambda r: _fmt(r.get("cpu_per_order_in_grpc_calls"), 1, 0)),
    ("CPU per order in durable hops", lambda r: _fmt(r.get("cpu_per_order_in_durable_hops"), 1, 1)),
    ("process restarts", lambda r: _fmt(r["process_restarts"])),
)


def _fmt(value: Any, scale: float = 1.0, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value * scale:.{digits}f}"
    return str(value)


def _triple(r: dict[str, Any], prefix: str, which: tuple[str, ...]) -> str:
    return " / ".join(_fmt(r.get(f"{prefix}_{w}_s"), 1000, 0) for w in which)


def _cores(r: dict[str, Any]) -> str:
    busy = r.get("cores_busy_while_accepting") or {}
    if not busy:
        return "n/a"
    return " / ".join(f"{busy.get(group, 0):.2f}" for group in ("system", "sandbox", "load"))


def _position_counts(r: dict[str, Any]) -> str:
    if "position_changes_measured" not in r:
        return "n/a"
    return (
        f"{r['position_changes_measured']} ({r['position_changes_coalesced']}) / "
        f"{r['position_changes_already_shown']} / {r['position_changes_unshown']}"
    )


def table(result: dict[str, Any]) -> str:
    lines = []
    for scenario, by_system in result["runs"].items():
        names = list(by_system)
        rows = [(f"[{scenario}]", *names)]
        rows += [(label, *(get(by_system[n]) for n in names)) for label, get in ROWS]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        lines.append("")
    ceiling = result.get("ceiling") or {}
    if ceiling:
        g, j = ceiling["grpc_unary_echo"], ceiling["jetstream"]
        lines.append(
            f"raw gRPC echo (16 in flight): {g['calls_per_s']:.0f} calls/s, "
            f"{g['cpu_ms_per_call']:.3f} ms CPU/call"
        )
        lines.append(
            f"JetStream publish / consume: {j['publish_msgs_per_s']:.0f} / "
            f"{j['consume_msgs_per_s']:.0f} msg/s, "
            f"{j['cpu_ms_per_msg']:.3f} ms CPU/msg"
        )
        h = ceiling.get("durable_hop")
        if h:
            in_calls = h["cpu_ms_per_hop"] / g["cpu_ms_per_call"]
            lines.append(
                f"durable hop (inbox + handler + outbox + relay, libs/bus): {h['hops_per_s']:.0f} hops/s, "
                f"{h['cpu_ms_per_hop']:.2f} ms CPU/hop = {in_calls:.1f} gRPC calls"
            )
    return "\n".join(lines)


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


def _setting(value: str) -> str:
    """`--mesh-setting`: NAME=VALUE with an upper-case environment name."""
    name, sep, _ = value.partition("=")
    if not sep or not name or not name.replace("_", "").isalnum() or name != name.upper():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with an upper-case NAME, got {value!r}")
    return value


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small runs: 30 orders, burst 200, short deadlines"
    )
    parser.add_argument(
        "--scenario", default=None, help="sustained|slow-erp|burst|all, comma-separated (quick: sustained)"
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS + FLOORS),
        help="comma-separated: mesh,inline,celery,null (null, the receiver floor that answers and "
        "forgets, runs in the burst scenario only)",
    )
    parser.add_argument("--orders", type=int, help="orders per sustained/slow-erp run (quick: 30, full: 300)")
    parser.add_argument("--rate", type=float, default=20.0, help="offered checkouts per second")
    parser.add_argument(
        "--duration", type=float, help="seconds of offered load: sets --orders = rate x duration"
    )
    parser.add_argument(
        "--burst-orders", type=int, help="orders in the one-second burst (quick: 200, full: 2000)"
    )
    parser.add_argument("--skus", type=int, default=9, help="distinct SKUs in the mix (1-9)")
    parser.add_argument("--hot-skus", type=int, default=1, help="how many of them are hot (scarce)")
    parser.add_argument("--hot-stock", type=int, default=5, help="units of each hot SKU at the 3PL")
    parser.add_argument("--hot-share", type=float, default=0.4, help="share of baskets with a hot SKU")
    parser.add_argument("--seed", type=int, default=1, help="seed of the baskets")
    parser.add_argument(
        "--deadline", type=float, help="seconds to wait for orders to be done (quick 60, full 300)"
    )
    parser.add_argument("--advance-every", type=float, default=0.5, help="seconds between 3PL advances")
    parser.add_argument("--recount-every", type=float, default=3.0, help="seconds between 3PL recounts")
    parser.add_argument("--inventory-every", type=float, default=2.0, help="stock sync period, every system")
    parser.add_argument("--slow-erp-latency-ms", type=int, default=2000)
    parser.add_argument("--slow-erp-rate-limit", type=int, default=300, help="BC requests per window")
    parser.add_argument("--slow-erp-window-s", type=float, default=60.0)
    parser.add_argument(
        "--shopify-restore-rate",
        type=float,
        default=100.0,
        help="Shopify GraphQL points restored per second (Standard 100, Advanced 200, Plus 1000)",
    )
    parser.add_argument(
        "--shopify-bucket", type=float, default=2000.0, help="Shopify GraphQL bucket size (points)"
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the transport ceiling")
    parser.add_argument("--keep", action="store_true", help="keep each run's data folder and logs")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy on every mesh service during each scenario's load (bench/profile.py)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results/")
    parser.add_argument("--label", default="", help="appended to the result file's name")
    parser.add_argument(
        "--mesh-db",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the mesh's store: SQLite per service (embedded default) or one PostgreSQL (production)",
    )
    parser.add_argument(
        "--mesh-setting",
        action="append",
        default=[],
        type=_setting,
        metavar="NAME=VALUE",
        help="an environment setting for every mesh service (repeatable), e.g. MOVE_FULFILLMENT_ORDERS=true",
    )
    parser.add_argument("--echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.skus = max(1, min(args.skus, len(ALL_SKUS)))
    args.hot_skus = max(0, min(args.hot_skus, args.skus))
    scenario = args.scenario or ("sustained" if args.quick else "all")
    args.scenarios = list(SCENARIOS) if scenario == "all" else scenario.split(",")
    args.systems = args.systems.split(",")
    for value, allowed in ((args.scenarios, SCENARIOS), (args.systems, SYSTEMS + FLOORS)):
        unknown = set(value) - set(allowed)
        if unknown:
            parser.error(f"unknown {sorted(unknown)}; choose from {', '.join(allowed)}")
    if "burst" not in args.scenarios and not set(args.systems) - set(FLOORS):
        parser.error("the receiver floor (null) runs in the burst scenario only")
    if args.duration:
        args.orders = round(args.rate * args.duration)
    args.orders = args.orders or (30 if args.quick else 300)
    args.burst_orders = args.burst_orders or (200 if args.quick else 2000)
    args.deadline = args.deadline or (60.0 if args.quick else 300.0)
    args.ceiling_seconds = 3.0 if args.quick else 10.0
    args.jetstream_messages = 2000 if args.quick else 20000
    args.hop_events = 500 if args.quick else 2000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.echo_server:
        asyncio.run(_serve_echo(args.echo_server))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the progress
    started = datetime.now(UTC)
    try:
        result = asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.warning("interrupted: the processes the bench started are stopped; no result written")
        return 130
    result = {"started_at": started.isoformat(timespec="seconds"), "machine": _machine(), **result}
    print(table(result))
    line = json.dumps(result, default=str)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        label = f"-{args.label}" if args.label else ""
        name = f"{started:%Y-%m-%d}-{result['machine']['host']}{'-quick' if args.quick else ''}{label}.json"
        (RESULTS / name).write_text(json.dumps(result, indent=2, default=str) + "\n")
        log.info("wrote %s", RESULTS / name)
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
