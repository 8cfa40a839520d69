"""The 947 mapping: a warehouse's adjustment advice read in full, malformed ones rejected naming the
segment."""

from __future__ import annotations

from decimal import Decimal

import pytest

from libs.x12 import AdjustmentAdvice, X12Error, acknowledge, document, read_one
from libs.x12 import adjustment_advice as x947

HEADER = (
    "ISA*00*          *00*          *ZZ*TPLSANDBOX     *ZZ*RETAILMESH     *260301*0930*U*00401*"
    "000000042*0*P*>~GS*AW*TPLSANDBOX*RETAILMESH*20260301*0930*42*X*004010~ST*947*0001~"
)


def interchange(body: str) -> str:
    """``body`` wrapped in ST/SE, GS/GE and ISA/IEA, counts computed."""
    return f"{HEADER}{body}SE*{body.count('~') + 2}*0001~GE*1*42~IEA*1*000000042~"


# A 004010 947 as a 3PL sends it: W19 loops without LX, units lost and found, one damaged.
SAMPLE = interchange(
    "W15*20260301*ADJ-7781*DEP-1~"
    "N1*WH*EAST*92*EAST~N3*1 Dock Rd~N4*Edison*NJ*08817*US~"
    "N9*ZZ*cycle count aisle 4~G62*07*20260301**0915~"
    "W19*06*2*EA**SK*SKU-1001~N9*LT*LOT-9~"
    "W19*51*1*EA*012345678905*SK*SKU-1002*VN*V-1002~"
    "W19*AU*3*EA**SK*SKU-1003~"
)


def transaction(data: str):
    return read_one(data).groups[0].transactions[0]


def test_947_maps_header_warehouse_references_time_and_every_w19_line() -> None:
    advice = AdjustmentAdvice.from_transaction(transaction(SAMPLE))

    assert (advice.date, advice.adjustment_number, advice.depositor_adjustment_number) == (
        "20260301",
        "ADJ-7781",
        "DEP-1",
    )
    assert [(p.code, p.id, p.city) for p in advice.parties] == [("WH", "EAST", "Edison")]
    assert [(r.qualifier, r.value) for r in advice.references] == [("ZZ", "cycle count aisle 4")]
    assert advice.time == "0915"
    assert [(x.line_number, x.reason_code, x.quantity, x.unit, x.sku) for x in advice.lines] == [
        ("1", x947.BOOK_ADJUSTMENT_DECREASE, Decimal(2), "EA", "SKU-1001"),
        ("2", x947.UNABLE_TO_LOCATE_PRODUCT_LOCATED, Decimal(1), "EA", "SKU-1002"),
        ("3", x947.DAMAGED_IN_FACILITY, Decimal(3), "EA", "SKU-1003"),
    ]
    assert advice.lines[0].references[0].value == "LOT-9"
    assert advice.lines[1].upc == "012345678905"
    assert advice.lines[1].product_ids == {"SK": "SKU-1002", "VN": "V-1002"}


def test_947_lines_behind_lx_take_the_lx_number_and_keep_a_signed_quantity() -> None:
    data = interchange("W15*20260301*ADJ-2~LX*10~W19*AA*-4*EA**SK*SKU-1004~G62*07*20260301**1200~")

    advice = AdjustmentAdvice.from_transaction(transaction(data))

    (line,) = advice.lines
    assert (line.line_number, line.reason_code, line.quantity) == ("10", x947.PHYSICAL_COUNT, Decimal(-4))
    assert [(d.qualifier, d.time) for d in line.dates] == [("07", "1200")]
    assert advice.time == ""


def test_document_dispatches_a_947_and_a_997_accepts_its_group() -> None:
    parsed = read_one(SAMPLE)

    assert isinstance(document(parsed.groups[0].transactions[0]), AdjustmentAdvice)
    ack = acknowledge(parsed.groups[0])
    assert (ack.functional_id, ack.status) == ("AW", "A")


@pytest.mark.parametrize(
    ("body", "tag", "index", "message"),
    [
        ("N1*WH*EAST~W19*06*2*EA**SK*SKU-1001~", "ST", 3, "must start with W15"),
        ("W15**ADJ-1~W19*06*2*EA**SK*SKU-1001~", "W15", 4, "W1501"),
        ("W15*20260301*ADJ-1~W19*06*two*EA**SK*SKU-1001~", "W19", 5, "W1902 'two' is not a number"),
        ("W15*20260301*ADJ-1~W19*06**EA**SK*SKU-1001~", "W19", 5, "W1902 is required"),
        ("W15*20260301*ADJ-1~W19**2*EA**SK*SKU-1001~", "W19", 5, "W1901"),
        ("W15*20260301*ADJ-1~W19*DAMAGED*2*EA**SK*SKU-1001~", "W19", 5, "W1901 'DAMAGED'"),
        ("W15*20260301*ADJ-1~LX*1~N9*LT*LOT-1~W19*06*2*EA**SK*S~", "N9", 6, "before its W19"),
    ],
)
def test_malformed_947_is_rejected_naming_the_segment(body: str, tag: str, index: int, message: str) -> None:
    with pytest.raises(X12Error) as caught:
        AdjustmentAdvice.from_transaction(transaction(interchange(body)))

    assert (caught.value.tag, caught.value.index) == (tag, index)
    assert message in str(caught.value)


def test_run_together_w19_segments_are_rejected_as_a_missing_terminator() -> None:
    # the terminator between two W19s lost: one W19 with 24 elements
    data = interchange("W15*20260301*ADJ-1~W19*06*2*EA**SK*SKU-1001**********W19*51*1*EA**SK*SKU-1002~")

    with pytest.raises(X12Error) as caught:
        AdjustmentAdvice.from_transaction(transaction(data))

    assert caught.value.tag == "W19"
    assert str(caught.value).startswith("W19 segment #5: ")
    assert "terminator may be missing" in str(caught.value)
