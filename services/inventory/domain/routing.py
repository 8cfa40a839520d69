"""Fulfillment routing (I6): which location ships which line.

The rule, in order: (1) one location ships everything if any can (the best such location by the
policy's location order); (2) otherwise fewest locations: repeatedly pick the location that can
ship the most remaining lines whole (ties by location order), so lines are never split while a
whole-line assignment exists; (3) lines no single location can ship are split across locations
in location order; (4) what is left is unroutable. Deterministic for the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    """A line to route."""

    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class Assignment:
    """A location ships `quantity` of a line."""

    line_id: str
    sku: str
    location_id: str
    quantity: int


@dataclass(frozen=True)
class Route:
    """The routing decision: assignments and per-line quantities nobody can ship."""

    assignments: tuple[Assignment, ...]
    unroutable: tuple[tuple[Line, int], ...]


def route(lines: list[Line], available: dict[tuple[str, str], int], locations: list[str]) -> Route:
    """Route `lines` over `locations` (best first) given `available[(sku, location)]`."""
    stock = {key: max(0, value) for key, value in available.items()}

    def can_ship(location: str, pending: list[Line]) -> list[Line]:
        left = dict(stock)
        whole = []
        for line in pending:
            have = left.get((line.sku, location), 0)
            if have >= line.quantity:
                left[(line.sku, location)] = have - line.quantity
                whole.append(line)
        return whole

    def take(location: str, line: Line, quantity: int) -> Assignment:
        stock[(line.sku, location)] = stock.get((line.sku, location), 0) - quantity
        return Assignment(line.line_id, line.sku, location, quantity)

    pending = list(lines)
    assignments: list[Assignment] = []
    for location in locations:
        if len(can_ship(location, pending)) == len(pending):
            return Route(tuple(take(location, line, line.quantity) for line in pending), ())
    while pending:
        best, best_lines = None, []
        for location in locations:
            whole = can_ship(location, pending)
            if len(whole) > len(best_lines):
                best, best_lines = location, whole
        if best is None:
            break
        for line in best_lines:
            assignments.append(take(best, line, line.quantity))
            pending.remove(line)
    unroutable = []
    for line in pending:
        need = line.quantity
        for location in locations:
            have = stock.get((line.sku, location), 0)
            if need and have > 0:
                part = min(have, need)
                assignments.append(take(location, line, part))
                need -= part
        if need:
            unroutable.append((line, need))
    order = {line.line_id: i for i, line in enumerate(lines)}
    assignments.sort(key=lambda a: (order[a.line_id], locations.index(a.location_id)))
    return Route(tuple(assignments), tuple(unroutable))
