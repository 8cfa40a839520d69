"""A position (one SKU at one location) and the pure transitions that change it (MISSION I1, I2).

Every function takes a position and returns a new one or raises; nothing here touches storage,
so the same code runs in the service (under a row lock) and in the property-based tests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

#: Buckets Adjust and snapshots may change; reserved and committed move only through reservations.
ADJUSTABLE = ("on_hand", "incoming", "damaged", "quality_control", "safety_stock")


class StockError(Exception):
    """A transition the position cannot take.

    Attributes:
        code: Stable reason code (`OUT_OF_STOCK`, `NEGATIVE_BUCKET`, ...).
        field: The bucket or input concerned.
    """

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Position:
    """Stock of one SKU at one location, in the distinct states of I1.

    `damaged`, `quality_control` and `safety_stock` are parts of `on_hand` that may not be sold;
    `reserved` and `committed` are the mesh's claims on it; `incoming` is outside it.
    """

    sku: str
    location_id: str
    on_hand: int = 0
    reserved: int = 0
    committed: int = 0
    incoming: int = 0
    damaged: int = 0
    quality_control: int = 0
    safety_stock: int = 0
    version: int = 0

    @property
    def key(self) -> str:
        """`sku@location_id`, the business key of position events."""
        return f"{self.sku}@{self.location_id}"

    @property
    def sellable(self) -> int:
        """On hand that may be sold at all: on_hand - damaged - quality_control - safety_stock."""
        return self.on_hand - self.damaged - self.quality_control - self.safety_stock

    @property
    def available_to_sell(self) -> int:
        """max(0, sellable - reserved - committed): what may be reserved now (docs/contracts.md)."""
        return max(0, self.sellable - self.reserved - self.committed)

    @property
    def oversold(self) -> int:
        """Claims beyond sellable stock; only physical facts (counts, damage) can make it positive."""
        return max(0, self.reserved + self.committed - max(0, self.sellable))

    def bump(self, **changes: int) -> Position:
        """A copy with `changes` applied and the version incremented."""
        return replace(self, version=self.version + 1, **changes)


def reserve(position: Position, quantity: int, available: int) -> Position:
    """Claim `quantity` for an order line.

    Args:
        position: the position before.
        quantity: units to reserve (> 0).
        available: what the ordering channel may take from this position now
            (`ChannelRule.available(position)`); never more than available_to_sell.

    Raises:
        StockError: OUT_OF_STOCK when `quantity` exceeds `available`.
    """
    _positive(quantity)
    if quantity > min(available, position.available_to_sell):
        raise StockError(
            "OUT_OF_STOCK",
            "quantity",
            f"{quantity} requested, {min(available, position.available_to_sell)} available "
            f"for {position.key}",
        )
    return position.bump(reserved=position.reserved + quantity)


def unreserve(position: Position, quantity: int) -> Position:
    """Give back `quantity` of reserved stock (release of an active reservation)."""
    _positive(quantity)
    _claim_covers(position.reserved, quantity, "reserved", position)
    return position.bump(reserved=position.reserved - quantity)


def commit(position: Position, quantity: int) -> Position:
    """Move `quantity` from reserved to committed (released to the warehouse)."""
    _positive(quantity)
    _claim_covers(position.reserved, quantity, "reserved", position)
    return position.bump(reserved=position.reserved - quantity, committed=position.committed + quantity)


def uncommit(position: Position, quantity: int) -> Position:
    """Give back `quantity` of committed stock (cancellation accepted by the warehouse)."""
    _positive(quantity)
    _claim_covers(position.committed, quantity, "committed", position)
    return position.bump(committed=position.committed - quantity)


def ship(
    position: Position, *, from_committed: int = 0, from_reserved: int = 0, unclaimed: int = 0
) -> Position:
    """Stock left the building: claims and on_hand go down together (StockConsumed).

    Args:
        position: the position before.
        from_committed: shipped units that were committed.
        from_reserved: shipped units still reserved (the shipment overtook the release event).
        unclaimed: shipped units without a reservation (physical facts win).

    on_hand never goes below zero: a snapshot may already have counted the shipment.
    """
    _claim_covers(position.committed, from_committed, "committed", position)
    _claim_covers(position.reserved, from_reserved, "reserved", position)
    total = from_committed + from_reserved + unclaimed
    _positive(total)
    return position.bump(
        committed=position.committed - from_committed,
        reserved=position.reserved - from_reserved,
        on_hand=max(0, position.on_hand - total),
    )


def adjust(position: Position, deltas: dict[str, int]) -> Position:
    """Apply signed changes to adjustable buckets, all or none.

    Raises:
        StockError: UNKNOWN_BUCKET for reserved/committed or an unknown name; NEGATIVE_BUCKET when
            a bucket would drop below zero.
    """
    changes: dict[str, int] = {}
    for bucket, delta in deltas.items():
        if bucket not in ADJUSTABLE:
            raise StockError("UNKNOWN_BUCKET", bucket, f"{bucket} cannot be adjusted")
        value = changes.get(bucket, getattr(position, bucket)) + delta
        if value < 0:
            raise StockError(
                "NEGATIVE_BUCKET",
                bucket,
                f"{bucket} of {position.key} would become {value}",
            )
        changes[bucket] = value
    return position.bump(**changes)


def apply_counts(position: Position, *, on_hand: int, damaged: int, quality_control: int) -> Position:
    """Set the warehouse-owned buckets from a snapshot; reserved and committed are untouched.

    Returns the same position (same version) when nothing differs.
    """
    for name, value in (("on_hand", on_hand), ("damaged", damaged), ("quality_control", quality_control)):
        if value < 0:
            raise StockError("NEGATIVE_BUCKET", name, f"{name} may not be negative")
    if (position.on_hand, position.damaged, position.quality_control) == (on_hand, damaged, quality_control):
        return position
    return position.bump(on_hand=on_hand, damaged=damaged, quality_control=quality_control)


def _positive(quantity: int) -> None:
    if quantity <= 0:
        raise StockError("INVALID_QUANTITY", "quantity", f"quantity must be positive, got {quantity}")


def _claim_covers(claim: int, quantity: int, bucket: str, position: Position) -> None:
    if quantity < 0 or quantity > claim:
        raise StockError(
            "CLAIM_MISMATCH", bucket, f"{bucket} of {position.key} is {claim}, cannot take {quantity}"
        )
