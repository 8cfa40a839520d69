"""Reconciliation of a warehouse count with a position (MISSION I5): drift, bounds and repair.

Pure rules, no storage (docs/decisions/0010-inventory-drift-bounds.md):

- The count is compared with what the mesh believed *at the count's as_of*: the position's
  figure minus the on_hand movements the mesh already applied that happened after as_of
  (`in_flight`, e.g. a shipment the 3PL made after it counted and that the mesh consumed before
  the snapshot arrived). The repaired figure keeps those movements: `observed + in_flight`.
- A drift within the bound of the SKU is repaired (the count wins).
- A drift beyond the bound is escalated. The count is still applied when it *lowers* sellable
  stock (less on_hand, more damaged or in quality control): never offer what may not exist.
  It is held when it would *raise* sellable stock: more stock than the mesh knows of needs a
  person (a receipt never reported, a unit-of-measure error) before it is sold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.inventory.domain.position import Position, apply_counts

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"

#: Buckets a warehouse count reports, in the order findings are listed.
COUNTED = ("on_hand", "damaged", "quality_control")


class DriftBound(BaseModel):
    """How far a count may differ from the mesh and still be repaired without a person.

    A drift is within the bound when its size is at most `max_units`, or at most `max_percent`
    of the mesh's figure for that bucket. Both 0: every drift is escalated.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_units: int = Field(0, ge=0, description="Drifts of at most this many units are repaired.")
    max_percent: int = Field(
        0, ge=0, le=100, description="Drifts of at most this share of the mesh's figure are repaired."
    )

    def allows(self, drift: int, mesh: int) -> bool:
        """True when a drift of `drift` units against a mesh figure of `mesh` may be repaired."""
        size = abs(drift)
        return size <= self.max_units or size * 100 <= self.max_percent * max(0, mesh)

    def describe(self) -> str:
        """`±5 units or 5%`, for evidence."""
        return f"±{self.max_units} units or {self.max_percent}%"


class SkuBound(BaseModel):
    """A bound for particular SKUs (a high-value or flash-sale item)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    skus: tuple[str, ...] = Field(min_length=1)
    bound: DriftBound


class ReconciliationPolicy(BaseModel):
    """The `reconciliation:` section of the inventory policy; absent = escalate every drift."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: DriftBound = DriftBound()
    overrides: tuple[SkuBound, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> ReconciliationPolicy:
        import re

        seen: set[str] = set()
        for i, override in enumerate(self.overrides):
            for sku in override.skus:
                if not re.match(SKU_PATTERN, sku):
                    raise ValueError(f"reconciliation.overrides[{i}].skus: {sku!r} is not a SKU")
                if sku in seen:
                    raise ValueError(f"reconciliation.overrides[{i}].skus: {sku!r} has two bounds")
                seen.add(sku)
        return self

    def bound(self, sku: str) -> DriftBound:
        """The bound of `sku`: its override, else the default."""
        for override in self.overrides:
            if sku in override.skus:
                return override.bound
        return self.default


class Outcome(StrEnum):
    """What reconciliation did with one drifting bucket."""

    REPAIRED = "REPAIRED"
    """Within the bound: the count was applied."""
    ESCALATED_APPLIED = "ESCALATED_APPLIED"
    """Beyond the bound, and the count lowers sellable stock: applied, and raised to people."""
    ESCALATED_HELD = "ESCALATED_HELD"
    """Beyond the bound, and the count would raise sellable stock: the mesh's figure is kept."""

    @property
    def repaired(self) -> bool:
        """True only for a drift repaired within its bound."""
        return self is Outcome.REPAIRED


@dataclass(frozen=True)
class Count:
    """What the warehouse (or ERP) reports for one SKU at one location."""

    on_hand: int
    damaged: int = 0
    quality_control: int = 0


@dataclass(frozen=True)
class Finding:
    """One bucket of one position that differs from the count.

    Attributes:
        bucket: `on_hand`, `damaged` or `quality_control`.
        mesh: the mesh's figure when the snapshot arrived.
        in_flight: movements the mesh applied that happened after the count's as_of (on_hand
            only; 0 for the other buckets).
        expected: the mesh's figure at as_of, `mesh - in_flight` (a part capped by the new
            on_hand).
        observed: the counted figure.
        outcome: what was done.
        result: the bucket after reconciliation.
    """

    bucket: str
    mesh: int
    in_flight: int
    expected: int
    observed: int
    outcome: Outcome
    result: int

    @property
    def drift(self) -> int:
        """observed - expected: negative when the warehouse has less than the mesh believed."""
        return self.observed - self.expected


@dataclass(frozen=True)
class Reconciled:
    """The position after a count, what differed, and whether on_hand now rests on the count."""

    position: Position
    findings: list[Finding]
    counted: bool


def reconcile(position: Position, count: Count, *, in_flight: int, bound: DriftBound) -> Reconciled:
    """Compare a count with a position and decide, bucket by bucket, what to apply.

    Args:
        position: the position when the snapshot arrived (version 0: never seen, so the count is
            its first figure and nothing drifts).
        count: the counted buckets.
        in_flight: signed sum of on_hand movements the mesh applied that happened after the
            count's as_of (shipments negative, receipts positive).
        bound: the SKU's repair bound.

    Returns:
        The new position (the same version when nothing changed), the findings, and `counted`:
        False when on_hand was held, so movements before this as_of still count against it.
    """
    targets = {
        "on_hand": max(0, count.on_hand + in_flight),
        "damaged": count.damaged,
        "quality_control": count.quality_control,
    }
    if position.version == 0:
        return Reconciled(_apply(position, targets), [], True)
    findings: list[Finding] = []
    chosen: dict[str, int] = {}
    room: int | None = None  # what is left of the new on_hand for damaged, then quality_control
    for bucket in COUNTED:
        # damaged and quality_control are parts of on_hand: compared and kept within the new whole
        mesh = getattr(position, bucket) if room is None else min(getattr(position, bucket), room)
        target = targets[bucket] if room is None else min(targets[bucket], room)
        moved = in_flight if bucket == "on_hand" else 0
        expected, observed = mesh - moved, getattr(count, bucket)
        if expected == observed:
            chosen[bucket] = mesh
        else:
            lowers_sellable = target < mesh if bucket == "on_hand" else target > mesh
            if bound.allows(observed - expected, expected):
                outcome = Outcome.REPAIRED
            elif lowers_sellable:
                outcome = Outcome.ESCALATED_APPLIED
            else:
                outcome = Outcome.ESCALATED_HELD
            chosen[bucket] = mesh if outcome is Outcome.ESCALATED_HELD else target
            findings.append(
                Finding(bucket, getattr(position, bucket), moved, expected, observed, outcome, chosen[bucket])
            )
        room = chosen[bucket] if room is None else room - chosen[bucket]
    after = _apply(position, chosen)
    held = any(f.bucket == "on_hand" and f.outcome is Outcome.ESCALATED_HELD for f in findings)
    return Reconciled(after, findings, not held)


def judge_channel(mesh: int, observed: int, bound: DriftBound) -> Outcome | None:
    """What to do when a sales channel shows `observed` where the mesh offers it `mesh` units.

    The channel never changes a position (it holds no stock); the question is only which figure
    the channel keeps (docs/decisions/0021-shopify-availability-drift.md):

    - equal: no drift (None);
    - within the bound: REPAIRED, the mesh's figure is pushed again;
    - beyond the bound, the channel shows more: ESCALATED_APPLIED, the mesh's lower figure is
      pushed over it at once (more than the mesh offers may not exist: oversell);
    - beyond the bound, the channel shows less: ESCALATED_HELD, the channel's lower figure stays as
      a ceiling until a person decides (a merchant who took stock off sale, or sales the mesh has
      not reserved yet: pushing the higher figure could oversell).
    """
    if observed == mesh:
        return None
    if bound.allows(observed - mesh, mesh):
        return Outcome.REPAIRED
    return Outcome.ESCALATED_APPLIED if observed > mesh else Outcome.ESCALATED_HELD


def _apply(position: Position, buckets: dict[str, int]) -> Position:
    on_hand = buckets["on_hand"]
    damaged = min(buckets["damaged"], on_hand)
    quality_control = min(buckets["quality_control"], on_hand - damaged)
    return apply_counts(position, on_hand=on_hand, damaged=damaged, quality_control=quality_control)


def latest_moment(moment: datetime) -> datetime:
    """When a movement happened, read in the safe direction.

    A time of exactly midnight UTC is taken as a bare date (an EDI 945 ship date carries no time):
    the movement may have happened at any moment of that day, so it is placed at the day's last
    microsecond. Late is the safe side: a shipment placed too early would be taken as already in
    a count made that day and never leave on_hand (oversell); placed too late it may leave on_hand
    twice (undersell) until the next count repairs it.
    """
    if moment.timetz().replace(tzinfo=None) == time(0) and moment.utcoffset() == timedelta(0):
        return moment + timedelta(days=1, microseconds=-1)
    return moment
