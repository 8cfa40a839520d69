"""The pieces of the actor runtime that need no database: turns, reminders, codecs, registration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from libs.actors import Actor, ActorRuntime, RuntimeStoppedError, Turn
from libs.actors.actor import StateCodec
from libs.store import Database

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


class Position(BaseModel):
    on_hand: int = 0
    reserved: dict[str, int] = {}


@dataclass
class Tally:
    count: int = 0


class PositionActor(Actor[Position]):
    kind = "position"
    state_type = Position

    async def receive(self, message: Any, ctx: Turn[Position]) -> None:
        return None


def _turn() -> Turn[Position]:
    return Turn("position", "sku-1@loc-1", Position(), session=None, now=NOW)  # type: ignore[arg-type]


def test_set_reminder_takes_a_delay_from_the_turn_time():
    turn = _turn()

    turn.set_reminder("a", due_in=90, payload={"line": 2})
    turn.set_reminder("b", due_in=timedelta(minutes=5))
    turn.set_reminder("c", due_at=NOW + timedelta(days=1))

    assert turn._reminders == [
        ("a", NOW + timedelta(seconds=90), '{"line":2}'),
        ("b", NOW + timedelta(minutes=5), None),
        ("c", NOW + timedelta(days=1), None),
    ]


@pytest.mark.parametrize("kwargs", [{}, {"due_in": 1, "due_at": NOW}])
def test_set_reminder_needs_exactly_one_due_time(kwargs: dict[str, Any]):
    with pytest.raises(ValueError, match="exactly one"):
        _turn().set_reminder("a", **kwargs)


@pytest.mark.parametrize("name", ["", "x" * 201])
def test_set_reminder_rejects_bad_names(name: str):
    with pytest.raises(ValueError, match="reminder name"):
        _turn().set_reminder(name, due_in=1)


def test_cancel_and_stop_are_recorded_for_the_end_of_the_turn():
    turn = _turn()

    turn.cancel_reminder("a")
    turn.stop()

    assert turn._reminders == [("a", None, None)]
    assert turn._stop
    assert turn.now() == NOW


def test_pydantic_state_round_trips_through_json():
    codec = StateCodec(Position)
    state = Position(on_hand=5, reserved={"order-1:line-1": 2})

    assert codec.load(codec.dump(state)) == state


def test_other_state_types_round_trip_through_pydantic():
    dataclass_codec, dict_codec = StateCodec(Tally), StateCodec(dict[str, int])

    assert dataclass_codec.load(dataclass_codec.dump(Tally(3))) == Tally(3)
    assert dict_codec.load(dict_codec.dump({"a": 1})) == {"a": 1}


def test_a_reference_is_cheap_and_activates_nothing():
    runtime = ActorRuntime(Database("sqlite:///:memory:"), [PositionActor])

    ref = runtime.ref("position", "sku-1@loc-1")

    assert (ref.kind, ref.key) == ("position", "sku-1@loc-1")
    assert runtime.active_count == 0


def test_an_unknown_kind_has_no_reference():
    runtime = ActorRuntime(Database("sqlite:///:memory:"), [PositionActor])

    with pytest.raises(KeyError, match="order"):
        runtime.ref("order", "o-1")


def test_kinds_must_be_declared_and_unique():
    class Nameless(Actor[Position]):
        state_type = Position

    db = Database("sqlite:///:memory:")

    with pytest.raises(TypeError, match="kind"):
        ActorRuntime(db, [Nameless])
    with pytest.raises(ValueError, match="twice"):
        ActorRuntime(db, [PositionActor, PositionActor()])


async def test_messages_are_refused_before_start():
    runtime = ActorRuntime(Database("sqlite:///:memory:"), [PositionActor])

    with pytest.raises(RuntimeStoppedError):
        await runtime.ref("position", "sku-1@loc-1").tell("hello")
