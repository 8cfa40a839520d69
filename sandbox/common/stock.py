"""The demo stock every stand-in starts from: units on hand per SKU and warehouse location.

The 3PL's warehouses hold the goods; the ERP books the same goods per location. A real retailer
starts the integration with both in agreement (the ERP's item ledger matches the warehouse's
count), so the stand-ins that keep stock per location start from the same figures for the same
seed: the 3PL's seeding draws them (`sandbox/tpl/state.py`), and Business Central books exactly
these (docs/decisions/0012-sandbox-erp-books-the-warehouse-stock.md).
"""

from __future__ import annotations

import random

DEMO_SKUS = tuple(f"SKU-{n}" for n in range(1001, 1011))
#: Warehouse locations in the 3PL's center order (EAST is center 1, WEST center 2).
LOCATIONS = ("EAST", "WEST")


def warehouse_on_hand(seed: int) -> dict[tuple[str, str], int]:
    """Units on hand per (SKU, location) at the start, as the 3PL stand-in seeds them for `seed`.

    The draws are the 3PL's first ones (SKU by SKU, centers in order, 40..120 units each), so its
    counts and these agree without either importing the other's state.
    """
    rng = random.Random(seed)
    return {(sku, location): rng.randint(40, 120) for sku in DEMO_SKUS for location in LOCATIONS}
