"""The ERP and 3PL stand-ins start from the same stock per location (sandbox.common.stock)."""

import pytest

from sandbox.business_central.state import OUT_OF_STOCK_EAST, BusinessCentralState
from sandbox.common.stock import warehouse_on_hand
from sandbox.tpl.state import TplState


def _bc_stock(bc: BusinessCentralState) -> dict[tuple[str, str], int]:
    return {
        (item["number"], location["code"]): int(bc.stock[(item["id"], location["id"])])
        for item in bc.stores["items"].values()
        for location in bc.stores["locations"].values()
    }


@pytest.mark.parametrize("seed", [0, 7])
def test_business_central_books_what_the_3pl_holds_at_each_location(seed):
    tpl = TplState(seed)
    bc = BusinessCentralState(seed)

    warehouse = {(sku, tpl.centers[cid]["name"]): s.on_hand for (sku, cid), s in tpl.stock.items()}
    booked = _bc_stock(bc)

    assert warehouse == warehouse_on_hand(seed)
    assert {k: v for k, v in booked.items() if k != (OUT_OF_STOCK_EAST, "EAST")} == {
        k: v for k, v in warehouse.items() if k != (OUT_OF_STOCK_EAST, "EAST")
    }
    assert booked[(OUT_OF_STOCK_EAST, "EAST")] == 0
