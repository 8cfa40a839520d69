"""The event bus on NATS JetStream: streams, transactional outbox and relay, idempotent consumers,
dead letters and the per-hop log. See libs/bus/README.md."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

#: Alembic version folder of the bus tables (branch label "bus"), for `libs.store.upgrade`.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Imported on first use, so `libs.bus.embedded` (used by tools and test fixtures) stays light.
_EXPORTS = {
    "EventBus": "libs.bus.bus",
    "Retention": "libs.bus.bus",
    "Consumer": "libs.bus.consumer",
    "MessageContext": "libs.bus.consumer",
    "KeyedLocks": "libs.bus.consumer",
    "PrepareContext": "libs.bus.consumer",
    "Subscription": "libs.bus.consumer",
    "Unit": "libs.bus.consumer",
    "DeadLetters": "libs.bus.deadletter",
    "ReplayResult": "libs.bus.deadletter",
    "InvalidEvent": "libs.bus.envelope",
    "PoisonMessage": "libs.bus.envelope",
    "new_event_id": "libs.bus.envelope",
    "Permanent": "libs.bus.errors",
    "Retryable": "libs.bus.errors",
    "HopLog": "libs.bus.hoplog",
    "record_hop": "libs.bus.hoplog",
    "Inbox": "libs.bus.inbox",
    "Outbox": "libs.bus.outbox",
    "OutboxRelay": "libs.bus.outbox",
    "STREAMS": "libs.bus.streams",
    "ConsumerSpec": "libs.bus.streams",
    "StreamSpec": "libs.bus.streams",
    "context_streams": "libs.bus.streams",
    "provision": "libs.bus.streams",
    "subject_for": "libs.bus.streams",
}

__all__ = ["MIGRATIONS", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'libs.bus' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
