"""Stock adjustments of the 3PL stand-in: the control route changes stock, and in EDI mode a 947
tells the depositor, parsed back by libs.x12."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import httpx
import pytest

from libs.x12 import AdjustmentAdvice, read_one
from libs.x12 import adjustment_advice as x947
from sandbox.common.server import serve_in_thread
from sandbox.tpl.app import create_app
from tests.integration.sandbox.tpl.conftest import HEADERS, Tpl, base_settings


def adjust(tpl, sku: str, location: str, delta: int, reason: str):
    return tpl.client.post(
        "/_sandbox/inventory/adjust",
        json={"sku": sku, "location": location, "delta": delta, "reason": reason},
    )


def only_947(tpl) -> tuple[str, AdjustmentAdvice]:
    (path,) = tpl.outbound("947")
    interchange = read_one(path.read_bytes())
    (group,) = interchange.groups
    (transaction,) = group.transactions
    return group.functional_id, AdjustmentAdvice.from_transaction(transaction)


def test_damaged_units_leave_on_hand_for_damaged_and_a_947_says_damaged_in_facility(tpl) -> None:
    before = tpl.inventory("SKU-1003")["EAST"]

    answer = adjust(tpl, "SKU-1003", "EAST", 3, "damaged")

    assert answer.status_code == 200
    after = tpl.inventory("SKU-1003")["EAST"]
    assert after["on_hand_quantity"] == before["on_hand_quantity"] - 3
    assert after["damaged_quantity"] == before["damaged_quantity"] + 3
    functional_id, advice = only_947(tpl)
    assert functional_id == "AW"
    assert [(p.code, p.id) for p in advice.parties] == [("WH", "EAST")]
    adjusted_at = answer.json()["adjusted_at"]  # 2026-03-01T09:15:02.123Z
    assert advice.date == adjusted_at[:10].replace("-", "")
    assert advice.time == adjusted_at[11:19].replace(":", "")
    assert advice.adjustment_number == f"ADJ{answer.json()['id']}"
    (line,) = advice.lines
    assert (line.reason_code, line.quantity, line.sku) == (x947.DAMAGED_IN_FACILITY, Decimal(3), "SKU-1003")


@pytest.mark.parametrize(
    ("reason", "delta", "code", "quantity"),
    [
        ("lost", -2, x947.BOOK_ADJUSTMENT_DECREASE, 2),
        ("found", 4, x947.UNABLE_TO_LOCATE_PRODUCT_LOCATED, 4),
        ("count", -5, x947.PHYSICAL_COUNT, -5),
    ],
)
def test_lost_found_and_recounted_units_change_on_hand_and_the_947_reason_says_which_way(
    tpl, reason: str, delta: int, code: str, quantity: int
) -> None:
    before = tpl.inventory("SKU-1004")["WEST"]["on_hand_quantity"]

    assert adjust(tpl, "SKU-1004", "WEST", delta, reason).status_code == 200

    assert tpl.inventory("SKU-1004")["WEST"]["on_hand_quantity"] == before + delta
    (line,) = only_947(tpl)[1].lines
    assert (line.reason_code, line.quantity, line.sku) == (code, Decimal(quantity), "SKU-1004")


def test_repaired_damaged_units_go_back_on_hand_with_reason_52(tpl) -> None:
    adjust(tpl, "SKU-1005", "EAST", 2, "damaged")
    (tpl.edi_dir / "outbound" / tpl.outbound("947")[0].name).unlink()
    before = tpl.inventory("SKU-1005")["EAST"]

    assert adjust(tpl, "SKU-1005", "EAST", -1, "damaged").status_code == 200

    after = tpl.inventory("SKU-1005")["EAST"]
    assert (after["on_hand_quantity"], after["damaged_quantity"]) == (
        before["on_hand_quantity"] + 1,
        before["damaged_quantity"] - 1,
    )
    (line,) = only_947(tpl)[1].lines
    assert (line.reason_code, line.quantity) == (x947.RECOUP_OF_DAMAGED_PRODUCT, Decimal(1))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"sku": "SKU-1001", "location": "EAST", "delta": 2, "reason": "lost"}, "ValidationError"),
        ({"sku": "SKU-1001", "location": "EAST", "delta": -2, "reason": "found"}, "ValidationError"),
        ({"sku": "SKU-1001", "location": "EAST", "delta": 0, "reason": "count"}, "ValidationError"),
        ({"sku": "SKU-1001", "location": "EAST", "delta": 1, "reason": "stolen"}, "ValidationError"),
        ({"sku": "SKU-9999", "location": "EAST", "delta": 1, "reason": "found"}, "ValidationError"),
        ({"sku": "SKU-1001", "location": "NORTH", "delta": 1, "reason": "found"}, "UnknownFulfillmentCenter"),
        ({"sku": "SKU-1001", "location": "EAST", "delta": -100000, "reason": "lost"}, "InsufficientStock"),
        ({"sku": "SKU-1001", "location": "EAST", "delta": 100000, "reason": "damaged"}, "InsufficientStock"),
    ],
)
def test_impossible_adjustment_is_refused_changes_nothing_and_writes_no_947(tpl, body, code) -> None:
    before = tpl.inventory("SKU-1001")

    answer = tpl.client.post("/_sandbox/inventory/adjust", json=body)

    assert (answer.status_code, answer.json()["error"]["code"]) == (422, code)
    assert tpl.inventory("SKU-1001") == before
    assert tpl.outbound("947") == []


def test_without_edi_an_adjustment_changes_stock_and_writes_no_file(tmp_path) -> None:
    app = create_app(replace(base_settings(tmp_path / "edi"), edi_dir=None))
    with serve_in_thread(app) as base_url, httpx.Client(base_url=base_url, headers=HEADERS) as client:
        tpl = Tpl(base_url=base_url, client=client, warehouse=app.state.warehouse, edi_dir=tmp_path / "edi")
        before = tpl.inventory("SKU-1002")["EAST"]["on_hand_quantity"]

        assert adjust(tpl, "SKU-1002", "EAST", 1, "found").status_code == 200

        assert tpl.inventory("SKU-1002")["EAST"]["on_hand_quantity"] == before + 1
        assert tpl.warehouse.written == []
    assert not (tmp_path / "edi").exists()
