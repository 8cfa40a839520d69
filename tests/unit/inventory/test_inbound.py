"""What an inbound document still brings (services/inventory/domain/inbound.py)."""

from services.inventory.domain.inbound import ExpectedLine, outstanding


def test_warehouse_and_erp_receipts_of_the_same_goods_are_never_added():
    lines = [ExpectedLine("a", 10, erp_received=4)]

    assert outstanding(lines, warehouse_received=6)["a"].outstanding == 4
    assert outstanding(lines, warehouse_received=3)["a"].outstanding == 6


def test_warehouse_receipts_fill_lines_in_order_and_closed_lines_bring_nothing():
    lines = [ExpectedLine("b", 5), ExpectedLine("a", 5), ExpectedLine("c", 9, closed=True)]

    result = outstanding(lines, warehouse_received=7)

    assert {k: v.outstanding for k, v in result.items()} == {"a": 0, "b": 3, "c": 0}


def test_an_over_receipt_leaves_nothing_outstanding_and_never_goes_negative():
    result = outstanding([ExpectedLine("a", 5)], warehouse_received=8)

    assert (result["a"].received, result["a"].outstanding) == (5, 0)
