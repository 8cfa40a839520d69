"""How long each consumer took to receive the events of a kept run (`--keep`, SQLite services).

    python -m bench.delivery /tmp/retail-mesh-bench-sustained-mesh-XXXX

For every event a consumer handled, the delay from its PubAck (the producer's outbox
`published_at`) to the start of its handling (the consumer's hop-log row, written at the end,
less the latency it records). It is the part of a hop that is neither the producer's nor the
handler's work: NATS, the pull request and the consumer's queue. Decision 0039 is why it exists.
A mesh run on SQLite also records these figures in its result (`event_delivery_*`).
Clocks are the same machine's, so a delay can come out a fraction of a millisecond negative.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.figures import percentile

SLOW_S = 0.2


def seconds(text: str) -> float:
    """Unix time of a timestamp as the services write it (naive UTC, `2026-11-30 02:34:24.5`) or
    the stand-ins do (ISO 8601 with `Z`)."""
    at = datetime.fromisoformat(text.replace(" ", "T"))
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def rows(db: Path, query: str, params: Sequence[Any] = ()) -> list[tuple]:
    """The rows of a read-only query on a kept run's SQLite file; none where the file or the
    tables it asks for are missing (a service without the bus tables)."""
    connection = None
    try:
        connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        return connection.execute(query, params).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        if connection is not None:
            connection.close()


_PUBLISHED = "SELECT id, published_at FROM outbox WHERE published_at IS NOT NULL"
_HANDLED = "SELECT hop, event_id, created_at, latency_ms FROM hop_log WHERE outcome = 'ok'"


def delays(mesh_dir: Path) -> dict[str, list[float]]:
    """`service/hop` → the delivery delays (seconds) of the events it handled, sorted."""
    published: dict[str, float] = {}
    handled: list[tuple[str, tuple]] = []
    for db in sorted(mesh_dir.glob("*.db")):
        sent, hops = rows(db, _PUBLISHED), rows(db, _HANDLED)
        published.update((event_id, seconds(at)) for event_id, at in sent)
        handled.extend((db.stem, row) for row in hops)
    found: dict[str, list[float]] = {}
    for service, (hop, event_id, at, latency_ms) in handled:
        if event_id in published:
            started = seconds(at) - latency_ms / 1000
            found.setdefault(f"{service}/{hop}", []).append(started - published[event_id])
    return {name: sorted(values) for name, values in found.items()}


def _figures(ordered: list[float]) -> tuple[float, float, float, int]:
    """p50, p99 (the bench's nearest-rank rule, `bench.figures.percentile`), max and the count over
    0.2 s of sorted delays."""
    p50, p99 = percentile(ordered, 0.50), percentile(ordered, 0.99)
    assert p50 is not None and p99 is not None
    return p50, p99, ordered[-1], sum(v > SLOW_S for v in ordered)


def summary(mesh_dir: Path) -> dict[str, Any]:
    """The run's figures over every consumer's deliveries (empty when none could be read)."""
    every = sorted(v for values in delays(mesh_dir).values() for v in values)
    if not every:
        return {}
    p50, p99, most, slow = _figures(every)
    return {
        "event_deliveries": len(every),
        "event_delivery_p50_s": p50,
        "event_delivery_p99_s": p99,
        "event_delivery_max_s": most,
        "event_deliveries_over_200ms": slow,
    }


def _line(name: str, values: list[float]) -> str:
    p50, p99, most, slow = _figures(values)
    return f"{name:45} {len(values):5} {p50 * 1000:8.1f} {p99 * 1000:8.1f} {most * 1000:8.1f} {slow:6}"


def main() -> None:
    mesh_dir = Path(sys.argv[1]) / "mesh"
    found = delays(mesh_dir)
    if not found:
        raise SystemExit(f"no handled events with a known publish time under {mesh_dir}")
    print(f"{'consumer':45} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'>0.2 s':>6}")
    for name, values in found.items():
        print(_line(name, values))
    print(_line("all", sorted(v for values in found.values() for v in values)))


if __name__ == "__main__":
    main()
