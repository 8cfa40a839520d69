"""Channel allocation, routing and reconciliation policy (I3, I6, I5): versioned data, validated
when loaded.

A channel sees `max(0, base - buffer - holdback)` of a position, where `base` is
available_to_sell (plus `incoming` if the channel may sell incoming stock) and `holdback` is
`ceil(sellable * holdback_percent / 100)`: a share of the sellable stock kept for the other
channels during peaks. Overrides per SKU replace a channel's numbers for that SKU. The
`reconciliation` section bounds the drift a warehouse count may repair without a person
(services/inventory/domain/reconciliation.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.inventory.domain.position import Position
from services.inventory.domain.reconciliation import ReconciliationPolicy

LOCATION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CHANNEL_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"


class ChannelRule(BaseModel):
    """What one channel may sell of a position."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    buffer: int = Field(0, ge=0, description="Units never offered to this channel.")
    holdback_percent: int = Field(0, ge=0, le=100, description="Share of sellable stock kept for others.")
    sell_incoming: bool = Field(False, description="Count incoming stock as sellable (pre-orders).")
    locations: tuple[str, ...] = Field((), description="Locations the channel ships from; empty = all.")

    def holdback(self, position: Position) -> int:
        """Units of the position kept for other channels."""
        return math.ceil(max(0, position.sellable) * self.holdback_percent / 100)

    def available(self, position: Position) -> int:
        """What this channel may sell (and reserve) from the position now."""
        base = position.available_to_sell + (position.incoming if self.sell_incoming else 0)
        return max(0, base - self.buffer - self.holdback(position))

    def ships_from(self, location_id: str) -> bool:
        """True when the channel may ship from the location."""
        return not self.locations or location_id in self.locations


class SkuOverride(BaseModel):
    """A channel's rule for particular SKUs (peak allocation of a hot item)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str = Field(pattern=CHANNEL_PATTERN)
    skus: tuple[str, ...] = Field(min_length=1)
    rule: ChannelRule


class LocationRule(BaseModel):
    """A location and the destinations it is nearest to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    location_id: str = Field(pattern=LOCATION_PATTERN)
    rank: int = Field(ge=0, description="Tie-break preference; lower ships first.")
    serves: tuple[str, ...] = Field(
        (), description="Destinations it is nearest to: `US` (country) or `US-NY` (province)."
    )


class Policy(BaseModel):
    """The whole allocation, routing and reconciliation policy; `version` names it in RouteOrder
    answers and in drift evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    default_channel: str = Field(pattern=CHANNEL_PATTERN)
    channels: dict[str, ChannelRule]
    overrides: tuple[SkuOverride, ...] = ()
    locations: tuple[LocationRule, ...] = ()
    reconciliation: ReconciliationPolicy = ReconciliationPolicy()

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        import re

        for name in self.channels:
            if not re.match(CHANNEL_PATTERN, name):
                raise ValueError(f"channels.{name}: not a channel name")
        if self.default_channel not in self.channels:
            raise ValueError(f"default_channel: {self.default_channel!r} is not in channels")
        for i, override in enumerate(self.overrides):
            if override.channel not in self.channels:
                raise ValueError(f"overrides[{i}].channel: {override.channel!r} is not in channels")
            for sku in override.skus:
                if not re.match(SKU_PATTERN, sku):
                    raise ValueError(f"overrides[{i}].skus: {sku!r} is not a SKU")
        ids = [loc.location_id for loc in self.locations]
        if len(ids) != len(set(ids)):
            raise ValueError("locations: a location is listed twice")
        return self

    def rule(self, channel: str, sku: str) -> ChannelRule:
        """The rule for `channel` and `sku`; unknown channels get the default channel's rule."""
        for override in self.overrides:
            if override.channel == channel and sku in override.skus:
                return override.rule
        return self.channels.get(channel) or self.channels[self.default_channel]

    def location_order(self, locations: set[str], country: str = "", province: str = "") -> list[str]:
        """`locations` best first: serving the destination's province, then its country, then by
        rank, then by id (deterministic)."""
        rules = {loc.location_id: loc for loc in self.locations}

        def score(location_id: str) -> tuple[int, int, str]:
            rule = rules.get(location_id)
            if rule is None:
                return (2, 1_000_000, location_id)
            near = 2
            if country and province and f"{country}-{province}" in rule.serves:
                near = 0
            elif country and country in rule.serves:
                near = 1
            return (near, rule.rank, location_id)

        return sorted(locations, key=score)


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file (YAML or JSON); raises ValueError naming the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"allocation policy {path}: {error}") from error
    return Policy.model_validate(data)
