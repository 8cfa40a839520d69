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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
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


async def measure(
    nats_url: str, data_dir: Path, events: int, nats_pid: int | None, *, group_commit: bool = True
) -> dict[str, Any]:
    """Run the two phases against `nats_url`; returns the hop figures."""
    streams = context_streams(1)
    producer_url = f"sqlite:///{data_dir / 'producer.db'}"
    consumer_url = f"sqlite:///{data_dir / 'consumer.db'}"
    async with migrated(producer_url, [bus.MIGRATIONS]) as db:
        async with EventBus(db, nats_url, name="hop-producer", streams=streams, retention=None) as producer:
            for start in range(0, events, 100):
                async with db.transaction() as session:
                    for i in range(start, min(start + 100, events)):
                        await producer.outbox.add(session, _status_changed(i), key=f"hop-{i}")
            await _until(lambda: _published(db), events, 120, "inputs published")

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
        cpu0 = time.process_time() + (sum(nats.cpu_times()[:2]) if nats else 0.0)
        wall0 = time.perf_counter()
        async with EventBus(
            db, nats_url, name="hop-consumer", streams=streams, subscriptions=[subscription], retention=None
        ):
            await _until(lambda: _published(db), events, 300, "follow-ups published")
            wall = time.perf_counter() - wall0
            cpu = time.process_time() + (sum(nats.cpu_times()[:2]) if nats else 0.0) - cpu0
    return {
        "events": events,
        "handled": handled,
        "hops_per_s": events / wall,
        "cpu_ms_per_hop": 1000 * cpu / events,
        "includes_nats_server": nats is not None,
        "group_commit": group_commit,
        "transactions": db.group.stats.transactions if group_commit else events,
    }


async def standalone(events: int, *, group_commit: bool = True) -> dict[str, Any]:
    """Measure on a nats-server of our own in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="retail-mesh-hop-") as folder:
        server = EmbeddedNats(Path(folder) / "nats").start()
        try:
            assert server.process is not None
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
    args = parser.parse_args()
    configure_telemetry("hop-bench")  # as every service does: SDK tracer, JSON logs
    print(json.dumps(asyncio.run(standalone(args.events, group_commit=not args.no_group_commit))))


if __name__ == "__main__":
    main()
