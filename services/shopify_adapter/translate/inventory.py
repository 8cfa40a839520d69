"""Channel availability → Shopify `inventorySetQuantities` (I4), as pure functions.

What is pushed: the `available` quantity of one inventory item at one location, set to the
mesh's availability for the Shopify channel (`online-store` by default), with `changeFromQuantity`
(compare-and-set against what Shopify held when we last looked) and an `@idempotent` key derived
from the batch's content, so a retried call is one write and a different call is never mistaken
for a retry.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from retail.inventory.v1 import events_pb2 as inventory_events

#: The quantity name the adapter sets: Shopify's sellable figure at a location.
QUANTITY_NAME = "available"
#: `inventorySetQuantities` reason: the mesh corrects Shopify to its own figure.
REASON = "correction"
#: Shopify accepts at most this many quantities in one `inventorySetQuantities` input.
MAX_QUANTITIES_PER_CALL = 250
#: Namespace of the idempotency keys (a UUIDv5-shaped key, as Shopify recommends UUIDs).
_KEY_NAMESPACE = uuid.UUID("6f1c1d2e-3d4b-5a69-8c7e-9a0b1c2d3e4f")


def channel_available(event: inventory_events.AvailabilityChanged, channel: str) -> int | None:
    """The channel's availability in the event, never negative; None when the channel is absent."""
    for each in event.channels:
        if each.channel == channel:
            return max(0, int(each.available))
    return None


@dataclass(frozen=True)
class Quantity:
    """One quantity to set: an item at a location, from what Shopify holds to the mesh's figure.

    Attributes:
        item_gid: Shopify inventory item GID.
        location_gid: Shopify location GID.
        quantity: the mesh's channel availability (the new `available`).
        change_from: the `available` Shopify held when last seen (compare-and-set).
        version: the position version the quantity comes from (makes the key unique per change).
    """

    item_gid: str
    location_gid: str
    quantity: int
    change_from: int
    version: int

    def as_input(self) -> dict[str, Any]:
        """The `InventoryQuantityInput`."""
        return {
            "inventoryItemId": self.item_gid,
            "locationId": self.location_gid,
            "quantity": self.quantity,
            "changeFromQuantity": self.change_from,
        }


def idempotency_key(quantities: Iterable[Quantity]) -> str:
    """A deterministic key of the batch's content (order-insensitive).

    The same quantities with the same compare-and-set values and versions give the same key, so a
    call repeated after a lost answer is one write at Shopify. The version is part of the content:
    setting 5 → 7 again later, for a newer position, is a new write and gets a new key.
    """
    content = sorted((q.item_gid, q.location_gid, q.quantity, q.change_from, q.version) for q in quantities)
    digest = json.dumps([QUANTITY_NAME, REASON, content], separators=(",", ":"))
    return str(uuid.uuid5(_KEY_NAMESPACE, hashlib.sha256(digest.encode()).hexdigest()))


def set_quantities_input(quantities: Sequence[Quantity], key: str) -> dict[str, Any]:
    """The `InventorySetQuantitiesInput` of one batch (at most 250 quantities).

    Raises:
        ValueError: more than MAX_QUANTITIES_PER_CALL quantities, or none.
    """
    if not quantities or len(quantities) > MAX_QUANTITIES_PER_CALL:
        raise ValueError(f"a batch holds 1..{MAX_QUANTITIES_PER_CALL} quantities, got {len(quantities)}")
    return {
        "name": QUANTITY_NAME,
        "reason": REASON,
        "referenceDocumentUri": f"gid://retail-mesh/InventoryPush/{key}",
        "quantities": [q.as_input() for q in quantities],
    }


def batches(items: Sequence[Any], size: int = MAX_QUANTITIES_PER_CALL) -> list[Sequence[Any]]:
    """`items` cut into consecutive batches of at most `size`."""
    size = max(1, min(size, MAX_QUANTITIES_PER_CALL))
    return [items[i : i + size] for i in range(0, len(items), size)]


def errors_by_index(user_errors: Iterable[dict[str, Any]]) -> tuple[dict[int, str], list[str]]:
    """Split `userErrors` into per-quantity codes (`{index: code}`) and errors about the whole input.

    A quantity's error has `field` `["input", "quantities", "<index>", ...]`.
    """
    per_item: dict[int, str] = {}
    general: list[str] = []
    for error in user_errors:
        field = [str(f) for f in (error.get("field") or [])]
        if len(field) >= 3 and field[:2] == ["input", "quantities"] and field[2].isdigit():
            per_item.setdefault(int(field[2]), str(error.get("code") or error.get("message") or "ERROR"))
        else:
            general.append(f"{error.get('code') or ''} {error.get('message') or ''}".strip())
    return per_item, general


STALE = "CHANGE_FROM_QUANTITY_STALE"
#: Codes that mean the item or location mapping is wrong (look the SKU up again later).
MAPPING_ERRORS = frozenset({"INVALID_INVENTORY_ITEM", "INVALID_LOCATION", "ITEM_NOT_STOCKED_AT_LOCATION"})
