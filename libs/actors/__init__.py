"""Keyed virtual actors: one message at a time per key, state saved in the turn's transaction."""

from pathlib import Path

from libs.actors.actor import (
    Actor,
    ActorError,
    ConflictError,
    Reminder,
    RuntimeStoppedError,
    Turn,
)
from libs.actors.metrics import ActorMetrics
from libs.actors.runtime import ActorRef, ActorRuntime, Clock, utc_now
from libs.actors.table import ActorReminderRow, ActorStateRow

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
"""The Alembic version folder (branch label "actors") to pass to `libs.store.upgrade`."""

__all__ = [
    "MIGRATIONS",
    "Actor",
    "ActorError",
    "ActorMetrics",
    "ActorRef",
    "ActorReminderRow",
    "ActorRuntime",
    "ActorStateRow",
    "Clock",
    "ConflictError",
    "Reminder",
    "RuntimeStoppedError",
    "Turn",
    "utc_now",
]
