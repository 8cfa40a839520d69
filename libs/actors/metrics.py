"""Optional Prometheus metrics of the actor runtime: turns by outcome, latency, activations, conflicts."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

# Turns are one transaction each: sub-millisecond on a warm PostgreSQL, up to seconds when SQLite
# writers queue, so the buckets span both.
TURN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ActorMetrics:
    """The runtime's metric families; pass one to `ActorRuntime(metrics=...)`.

    Args:
        registry: where to register; tests pass their own `CollectorRegistry` because a family
            can be registered once per registry.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.turns = Counter(
            "actor_turns",
            "Actor turns by kind and outcome (ok, error, conflict, skipped).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.turn_seconds = Histogram(
            "actor_turn_seconds",
            "Duration of an actor turn, transaction included.",
            ["kind"],
            buckets=TURN_BUCKETS,
            registry=registry,
        )
        self.conflicts = Counter(
            "actor_conflicts",
            "Turns retried because another replica changed the actor's state.",
            ["kind"],
            registry=registry,
        )
        self.activations = Counter(
            "actor_activations",
            "Actor activations (first message after start or passivation).",
            ["kind"],
            registry=registry,
        )
        self.active = Gauge("actor_active", "Actors active in memory.", ["kind"], registry=registry)
        self.reminders_fired = Counter(
            "actor_reminders_fired",
            "Reminders claimed and delivered by this replica.",
            ["kind"],
            registry=registry,
        )
