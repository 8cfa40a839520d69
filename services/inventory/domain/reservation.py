"""Reservations per order line and location, and how each step moves stock in its position (I2).

A reservation's open quantity (`quantity - shipped`) counts in `reserved` while ACTIVE and in
`committed` while COMMITTED; RELEASED and CONSUMED count nowhere. Each function returns the new
reservation and position together, so a caller stores both in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from services.inventory.domain import position as stock
from services.inventory.domain.position import Position


class ReservationState(StrEnum):
    """Where a reservation is."""

    ACTIVE = "ACTIVE"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"
    CONSUMED = "CONSUMED"


@dataclass(frozen=True)
class Reservation:
    """Stock held for one order line at one location; unique per (order_id, line_id, location_id)."""

    order_id: str
    line_id: str
    sku: str
    location_id: str
    quantity: int
    channel: str
    state: ReservationState = ReservationState.ACTIVE
    shipped: int = 0
    release_id: str = ""

    @property
    def reservation_id(self) -> str:
        """`order_id/line_id@location_id`."""
        return reservation_id(self.order_id, self.line_id, self.location_id)

    @property
    def open(self) -> int:
        """Units still claimed: quantity - shipped while ACTIVE or COMMITTED, else 0."""
        if self.state in (ReservationState.ACTIVE, ReservationState.COMMITTED):
            return self.quantity - self.shipped
        return 0


def reservation_id(order_id: str, line_id: str, location_id: str) -> str:
    """The id of the reservation of a line at a location."""
    return f"{order_id}/{line_id}@{location_id}"


def release(
    reservation: Reservation, position: Position, quantity: int = 0
) -> tuple[Reservation, Position] | None:
    """Give back `quantity` open units (0 = all of them); None when nothing is open."""
    take = reservation.open if quantity <= 0 else min(quantity, reservation.open)
    if take <= 0:
        return None
    if reservation.state is ReservationState.ACTIVE:
        position = stock.unreserve(position, take)
    else:
        position = stock.uncommit(position, take)
    remaining = reservation.quantity - take
    state = reservation.state
    if remaining - reservation.shipped == 0:
        state = ReservationState.CONSUMED if reservation.shipped else ReservationState.RELEASED
    return replace(reservation, quantity=remaining, state=state), position


def commit(
    reservation: Reservation, position: Position, release_id: str
) -> tuple[Reservation, Position] | None:
    """Move an active reservation to committed under a warehouse release; None when not active."""
    if reservation.state is not ReservationState.ACTIVE or reservation.open <= 0:
        return None
    position = stock.commit(position, reservation.open)
    return replace(reservation, state=ReservationState.COMMITTED, release_id=release_id), position


def ship(
    reservation: Reservation, position: Position, quantity: int
) -> tuple[Reservation, Position, int] | None:
    """Consume up to `quantity` shipped units from the reservation.

    Returns the new reservation, the new position and how many of `quantity` it did not cover;
    None when nothing is open.
    """
    take = min(quantity, reservation.open)
    if take <= 0:
        return None
    if reservation.state is ReservationState.COMMITTED:
        position = stock.ship(position, from_committed=take)
    else:
        position = stock.ship(position, from_reserved=take)
    shipped = reservation.shipped + take
    state = ReservationState.CONSUMED if shipped == reservation.quantity else reservation.state
    return replace(reservation, shipped=shipped, state=state), position, quantity - take
