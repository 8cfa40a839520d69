"""The durable-hop floor: what one hop of the mesh's own bus costs, with no business logic.

A hop is what every service does for every fact it reacts to: fetch the event from JetStream,
claim it in the inbox, write the hop-log row, run the handler (here: emit one follow-up event into
the outbox), commit (SQLite, WAL, `synchronous=FULL`: one fsync), ack, then the relay publishes the
follow-up with `Nats-Msg-Id` and records its PubAck (one more commit). Nothing in the mesh moves a
fact between two systems more cheaply than this, so `mesh CPU per order ÷ CPU per hop` says how
many such hops an order costs, and `20 raw gRPC calls ÷ CPU per hop` how many the target allows.

Telemetry is configured as in a service (SDK tracer provider, JSON logs; no exporter unless
`OTEL_EXPORTER_OTLP_ENDPOINT` is set). It runs on its own nats-server (file storage,
`sync_interval: always`, as the mesh's) in a temporary folder, with the mesh's stream settings
(`libs.bus.streams.context_streams`):

1. unmeasured: a producer bus commits N `OrderStatusChanged` events and its relay publishes them;
2. measured: a consumer bus on its own database handles all N (one `ExceptionRaised` emitted per
   event) until its relay has published all N follow-ups. CPU = this process + nats-server.

`python -m bench.hop [--events N]` prints one JSON object.

`--declined` measures instead what a delivery costs that its subscription's relevance check
declines (the ops service and about six status changes per order): the consumer acks it with no
span, transaction or hop row (decision 0047). CPU = this process + nats-server, per delivery.

`--chain` measures a hop's latency instead: two buses on databases of their own pass `--tokens`
facts back and forth, each one `--hops` times (one consumes `OrderStatusChanged` and emits
`ExceptionRaised`, the other the reverse), and each hop is timed from the event's `occurred_at`
(stamped when it was added to the outbox, before its commit) to the start of its handling: the
commit, the relay's publish, the server and the delivery. With one token that is the hop of an idle
mesh; with more, the hop while commits and relay passes overlap, as during a sale.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import func, select

from libs import bus
from libs.bus import EventBus, MessageContext, Subscription
from libs.bus.embedded import EmbeddedNats
from libs.bus.streams import context_streams
from libs.bus.tables import PUBLISHED, OutboxRow
from libs.store import Database, migrated
from libs.telemetry import configure_telemetry
from retail.common.v1 import common_pb2
from retail.ops.v1 import events_pb2 as ops_events
from retail.ops.v1 import ops_pb2
from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2


def _status_changed(i: int) -> order_events.OrderStatusChanged:
    return order_events.OrderStatusChanged(
        order_id=f"hop-{i}",
        change=orders_pb2.StatusChange(
            from_status=orders_pb2.ORDER_STATUS_RECEIVED,
            to_status=orders_pb2.ORDER_STATUS_ACCEPTED,
            source_system=common_pb2.SOURCE_SYSTEM_MESH,
        ),
        version=1,
    )


async def _published(db: Database) -> int:
    async with db.read() as session:
        query = select(func.count()).select_from(OutboxRow).where(OutboxRow.status == PUBLISHED)
        return int((await session.execute(query)).scalar_one())


async def _until(check: Any, count: int, deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while await check() < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done in {deadline_s:.0f}s")
        await asyncio.sleep(0.05)


def _cpu(nats: psutil.Process | None) -> float:
    """CPU seconds of this process and of nats-server (when given) so far."""
    return time.process_time() + (sum(nats.cpu_times()[:2]) if nats else 0.0)


async def _publish_inputs(nats_url: str, data_dir: Path, events: int) -> None:
    """A producer bus commits `events` OrderStatusChanged and its relay publishes them (unmeasured)."""
    async with migrated(f"sqlite:///{data_dir / 'producer.db'}", [bus.MIGRATIONS]) as db:
        async with EventBus(
            db, nats_url, name="hop-producer", streams=context_streams(1), retention=None
        ) as producer:
            for start in range(0, events, 100):
                async with db.transaction() as session:
                    for i in range(start, min(start + 100, events)):
                        await producer.outbox.add(session, _status_changed(i), key=f"hop-{i}")
            await _until(lambda: _published(db), events, 120, "inputs published")


async def measure(
    nats_url: str, data_dir: Path, events: int, nats_pid: int | None, *, group_commit: bool = True
) -> dict[str, Any]:
    """Run the two phases against `nats_url`; returns the hop figures."""
    streams = context_streams(1)
    consumer_url = f"sqlite:///{data_dir / 'consumer.db'}"
    await _publish_inputs(nats_url, data_dir, events)

    handled = 0

    async def handler(event: order_events.OrderStatusChanged, ctx: MessageContext) -> None:
        nonlocal handled
        await ctx.emit(
            ops_events.ExceptionRaised(
                exception=ops_pb2.BusinessException(exception_id=f"x-{event.order_id}")
            ),
            key=event.order_id,
        )
        handled += 1

    nats = psutil.Process(nats_pid) if nats_pid else None
    async with migrated(consumer_url, [bus.MIGRATIONS]) as db:
        subscription = Subscription(
            "hop-bench", [order_events.OrderStatusChanged], handler, group_commit=group_commit
        )
        cpu0 = _cpu(nats)
        wall0 = time.perf_counter()
        async with EventBus(
            db, nats_url, name="hop-consumer", streams=streams, subscriptions=[subscription], retention=None
        ):
            await _until(lambda: _published(db), events, 300, "follow-ups published")
            wall = time.perf_counter() - wall0
            cpu = _cpu(nats) - cpu0
    return {
        "events": events,
        "handled": handled,
        "hops_per_s": events / wall,
        "cpu_ms_per_hop": 1000 * cpu / events,
        "includes_nats_server": nats is not None,
        "group_commit": group_commit,
        "transactions": db.group.stats.transactions if group_commit else events,
    }


async def declined(nats_url: str, data_dir: Path, events: int, nats_pid: int | None) -> dict[str, Any]:
    """N events published, then consumed by a subscription whose `relevant` declines every one."""
    streams = context_streams(1)
    await _publish_inputs(nats_url, data_dir, events)

    asked = 0
    all_asked = asyncio.Event()

    async def relevant(event: order_events.OrderStatusChanged) -> bool:
        nonlocal asked
        asked += 1
        if asked >= events:
            all_asked.set()
        return False

    async def handler(event: order_events.OrderStatusChanged, ctx: MessageContext) -> None:
        raise AssertionError("a declined event reached its handler")

    nats = psutil.Process(nats_pid) if nats_pid else None
    subscription = Subscription(
        "hop-declined", [order_events.OrderStatusChanged], handler, concurrency=1, relevant=relevant
    )
    async with migrated(f"sqlite:///{data_dir / 'consumer.db'}", [bus.MIGRATIONS]) as db:
        cpu0 = _cpu(nats)
        wall0 = time.perf_counter()
        async with EventBus(
            db, nats_url, name="hop-consumer", streams=streams, subscriptions=[subscription], retention=None
        ):
            await asyncio.wait_for(all_asked.wait(), 300)
            wall = time.perf_counter() - wall0
            cpu = _cpu(nats) - cpu0
    return {
        "events": events,
        "declined": asked,
        "deliveries_per_s": events / wall,
        "cpu_ms_per_delivery": 1000 * cpu / events,
        "includes_nats_server": nats is not None,
    }


def _since_occurred(meta: Any) -> float:
    return time.time() - meta.occurred_at.ToDatetime(tzinfo=UTC).timestamp()


async def chain(nats_url: str, data_dir: Path, tokens: int, hops: int) -> dict[str, Any]:
    """Pass `tokens` facts between two buses `hops` times each; returns the hop latencies."""
    streams = context_streams(1)
    latencies: list[float] = []
    finished = asyncio.Event()
    ended = 0

    def arrived(meta: Any, hop: int) -> bool:
        """Record the hop; True when the token has made its last one."""
        nonlocal ended
        latencies.append(_since_occurred(meta))
        if hop < hops:
            return False
        ended += 1
        if ended == tokens:
            finished.set()
        return True

    async def to_exception(event: order_events.OrderStatusChanged, ctx: MessageContext) -> None:
        if not arrived(event.meta, event.version):
            exception = ops_pb2.BusinessException(exception_id=f"{event.order_id}:{event.version + 1}")
            await ctx.emit(ops_events.ExceptionRaised(exception=exception), key=event.order_id)

    async def to_status(event: ops_events.ExceptionRaised, ctx: MessageContext) -> None:
        token, hop = event.exception.exception_id.rsplit(":", 1)
        if not arrived(event.meta, int(hop)):
            follow_up = _status_changed(0)
            follow_up.order_id, follow_up.version = token, int(hop) + 1
            await ctx.emit(follow_up, key=token)

    def side(db: Database, name: str, event: type, handler: Any) -> EventBus:
        subscriptions = [Subscription(name, [event], handler)]
        return EventBus(db, nats_url, name=name, streams=streams, subscriptions=subscriptions, retention=None)

    a_url, b_url = f"sqlite:///{data_dir / 'chain-a.db'}", f"sqlite:///{data_dir / 'chain-b.db'}"
    async with migrated(a_url, [bus.MIGRATIONS]) as a_db, migrated(b_url, [bus.MIGRATIONS]) as b_db:
        a = side(a_db, "chain-a", order_events.OrderStatusChanged, to_exception)
        b = side(b_db, "chain-b", ops_events.ExceptionRaised, to_status)
        async with a, b:
            wall0 = time.perf_counter()
            async with b_db.transaction() as session:
                for i in range(tokens):
                    first = _status_changed(i)
                    first.version = 1
                    await b.outbox.add(session, first, key=first.order_id)
            await asyncio.wait_for(finished.wait(), 60 + hops * tokens * 0.05)
            wall = time.perf_counter() - wall0
    ordered = sorted(latencies)
    return {
        "tokens": tokens,
        "hops_per_token": hops,
        "hops": len(latencies),
        "hop_latency_p50_ms": 1000 * ordered[len(ordered) // 2],
        "hop_latency_p99_ms": 1000 * ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        "hop_latency_mean_ms": 1000 * sum(ordered) / len(ordered),
        "hops_per_s": len(latencies) / wall,
    }


async def standalone(
    events: int,
    *,
    group_commit: bool = True,
    chain_of: tuple[int, int] | None = None,
    declined_only: bool = False,
) -> dict[str, Any]:
    """Measure on a nats-server of our own in a temporary folder (`chain_of`: tokens, hops)."""
    with tempfile.TemporaryDirectory(prefix="retail-mesh-hop-") as folder:
        server = EmbeddedNats(Path(folder) / "nats").start()
        try:
            assert server.process is not None
            if chain_of is not None:
                return await chain(server.url, Path(folder), *chain_of)
            if declined_only:
                return await declined(server.url, Path(folder), events, server.process.pid)
            return await measure(
                server.url, Path(folder), events, server.process.pid, group_commit=group_commit
            )
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="hops to measure")
    parser.add_argument(
        "--no-group-commit", action="store_true", help="a transaction per hop (Subscription.group_commit off)"
    )
    parser.add_argument("--chain", action="store_true", help="hop latency between two buses (module doc)")
    parser.add_argument("--tokens", type=int, default=1, help="--chain: facts in flight at once")
    parser.add_argument("--hops", type=int, default=200, help="--chain: hops each fact makes")
    parser.add_argument(
        "--declined", action="store_true", help="the cost of a delivery the relevance check declines"
    )
    args = parser.parse_args()
    configure_telemetry("hop-bench")  # as every service does: SDK tracer, JSON logs
    chain_of = (args.tokens, args.hops) if args.chain else None
    result = standalone(
        args.events, group_commit=not args.no_group_commit, chain_of=chain_of, declined_only=args.declined
    )
    print(json.dumps(asyncio.run(result)))


if __name__ == "__main__":
    main()
