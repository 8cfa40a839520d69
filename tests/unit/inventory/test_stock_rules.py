"""The pure inventory rules under a Hypothesis state machine: reserve, release, commit, ship,
adjust, snapshot and redelivered messages, with the invariants of MISSION I2."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from services.inventory.config import DEFAULT_POLICY
from services.inventory.domain import position as stock
from services.inventory.domain import reservation as claims
from services.inventory.domain.policy import ChannelRule, Policy, load_policy
from services.inventory.domain.position import Position, StockError
from services.inventory.domain.reservation import Reservation, ReservationState
from services.inventory.domain.routing import Line, route

RULE = ChannelRule()
ORDERS = st.sampled_from(["o1", "o2", "o3", "o4"])
LINES = st.sampled_from(["1", "2"])


class Stock(RuleBasedStateMachine):
    """One position and its reservations, driven by keyed messages as the ledger applies them."""

    def __init__(self) -> None:
        super().__init__()
        self.position = Position("SKU-1", "EAST")
        self.reservations: dict[tuple[str, str], Reservation] = {}
        self.applied: dict[str, tuple] = {}  # message key -> state right after it (the inbox)
        self.oversold = 0

    def apply(self, key: str, step) -> None:
        """Apply a message once; a redelivery of the same key must change nothing."""
        if key in self.applied:
            return
        oversold_before = self.position.oversold
        step()
        self.applied[key] = self.snapshot()
        if not key.startswith(("adjust", "snapshot", "ship")):  # physical facts may take stock away
            assert self.position.oversold <= oversold_before, "a mesh step increased oversell"

    def snapshot(self) -> tuple:
        return (self.position, dict(self.reservations))

    @rule(order=ORDERS, line=LINES, quantity=st.integers(1, 6))
    def reserve(self, order, line, quantity):
        def step():
            if (order, line) in self.reservations and self.reservations[
                (order, line)
            ].state != ReservationState.RELEASED:
                return  # idempotent per order line
            try:
                self.position = stock.reserve(self.position, quantity, RULE.available(self.position))
            except StockError:
                return
            self.reservations[(order, line)] = Reservation(
                order, line, "SKU-1", "EAST", quantity, "online-store"
            )

        self.apply(f"reserve:{order}:{line}:{quantity}", step)

    @rule(order=ORDERS)
    def release(self, order):
        def step():
            for key, reservation in sorted(self.reservations.items()):
                if key[0] == order and (result := claims.release(reservation, self.position)):
                    self.reservations[key], self.position = result

        self.apply(f"release:{order}", step)

    @rule(order=ORDERS)
    def commit(self, order):
        def step():
            for key, reservation in sorted(self.reservations.items()):
                if key[0] == order and (result := claims.commit(reservation, self.position, f"{order}:EAST")):
                    self.reservations[key], self.position = result

        self.apply(f"commit:{order}", step)

    @rule(order=ORDERS, line=LINES, quantity=st.integers(1, 4), shipment=st.integers(1, 3))
    def ship(self, order, line, quantity, shipment):
        def step():
            reservation = self.reservations.get((order, line))
            left = quantity
            if reservation and (result := claims.ship(reservation, self.position, quantity)):
                self.reservations[(order, line)], self.position, left = result
            if left:
                self.position = stock.ship(self.position, unclaimed=left)

        self.apply(f"ship:{shipment}:{order}:{line}", step)

    @rule(
        request=st.integers(0, 5),
        bucket=st.sampled_from(stock.ADJUSTABLE),
        delta=st.integers(-5, 10).filter(bool),
    )
    def adjust(self, request, bucket, delta):
        def step():
            try:
                self.position = stock.adjust(self.position, {bucket: delta})
            except StockError as error:
                assert error.code == "NEGATIVE_BUCKET"

        self.apply(f"adjust:{request}:{bucket}:{delta}", step)

    @rule(snapshot=st.integers(0, 5), on_hand=st.integers(0, 30), damaged=st.integers(0, 3))
    def snapshot_counts(self, snapshot, on_hand, damaged):
        def step():
            claims_before = (self.position.reserved, self.position.committed)
            self.position = stock.apply_counts(
                self.position, on_hand=on_hand, damaged=min(damaged, on_hand), quality_control=0
            )
            assert (self.position.reserved, self.position.committed) == claims_before

        self.apply(f"snapshot:{snapshot}:{on_hand}:{damaged}", step)

    @rule(data=st.data())
    def redeliver(self, data):
        if not self.applied:
            return
        key = data.draw(st.sampled_from(sorted(self.applied)))
        before = self.snapshot()

        self.apply(key, lambda: pytest.fail("a redelivered message was applied again"))

        assert self.snapshot() == before

    @invariant()
    def available_is_never_negative(self):
        assert self.position.available_to_sell >= 0
        assert RULE.available(self.position) >= 0

    @invariant()
    def buckets_are_the_sum_of_reservations(self):
        active = sum(r.open for r in self.reservations.values() if r.state == ReservationState.ACTIVE)
        committed = sum(r.open for r in self.reservations.values() if r.state == ReservationState.COMMITTED)
        assert (self.position.reserved, self.position.committed) == (active, committed)

    @invariant()
    def claims_never_exceed_stock_unless_stock_was_taken_away(self):
        # reserve refuses what is not sellable; only counts/adjustments (physical facts) can
        # leave claims above sellable stock, and no mesh step makes that worse (see apply)
        if not any(k.startswith(("adjust", "snapshot", "ship")) for k in self.applied):
            assert self.position.reserved + self.position.committed <= max(0, self.position.sellable)


TestStock = Stock.TestCase
TestStock.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_a_channel_sees_availability_after_its_buffer_and_holdback():
    position = Position("SKU-1010", "EAST", on_hand=100, damaged=5, reserved=10)
    policy = load_policy(DEFAULT_POLICY)

    online = policy.rule("online-store", "SKU-1010").available(position)
    b2b = policy.rule("b2b", "SKU-1010").available(position)

    assert position.available_to_sell == 85
    assert online == 85 - 10  # 10% of 95 sellable held back
    assert b2b == 83


def test_a_policy_naming_an_unknown_channel_is_refused():
    with pytest.raises(ValueError, match="default_channel"):
        Policy.model_validate({"version": "1", "default_channel": "web", "channels": {"b2b": {}}})


def test_routing_prefers_one_location_over_a_nearer_split():
    lines = [Line("1", "A", 2), Line("2", "B", 1)]
    available = {("A", "EAST"): 5, ("A", "WEST"): 5, ("B", "WEST"): 1}

    decision = route(lines, available, ["EAST", "WEST"])

    assert {a.location_id for a in decision.assignments} == {"WEST"} and not decision.unroutable


def test_routing_splits_a_line_only_when_no_location_has_it_all():
    decision = route([Line("1", "A", 7)], {("A", "EAST"): 4, ("A", "WEST"): 5}, ["EAST", "WEST"])

    assert [(a.location_id, a.quantity) for a in decision.assignments] == [("EAST", 4), ("WEST", 3)]


def test_a_shipment_overtaking_the_release_consumes_the_reservation():
    position = Position("A", "EAST", on_hand=5, reserved=2)
    reservation = Reservation("o", "1", "A", "EAST", 2, "online-store")

    new, after, left = claims.ship(reservation, position, 2)

    assert (after.on_hand, after.reserved, left, new.state) == (3, 0, 0, ReservationState.CONSUMED)
    assert replace(after, version=0) == Position("A", "EAST", on_hand=3)
