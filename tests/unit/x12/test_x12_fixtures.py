"""Every real 940, 945, 846 and 856 sample (and the 997s) read, or rejected naming the segment.

The files are byte-for-byte copies of the public samples in ../shared/fixtures/real/edi-x12
(tests/fixtures/x12/PROVENANCE.md). Which are rejected, and why:

* olmelabs-EdiEngine/940_Failed_SE01.edi: SE01 says 12 segments, the set has 9 (EdiEngine's own
  negative test). Its W01 is also shifted by one element, which the 940 mapping reports.
* olmelabs-EdiEngine/ControlNumbersMismatch.edi: SE02, GE02 and IEA02 disagree with ST02, GS06 and
  ISA13 (negative test).
* olmelabs-EdiEngine/WrongGroupsAndTranCount.edi: GE01 and IEA01 count 2 where there is 1
  (negative test).
* OopFactory-X12Parser/ORD/_846/Example2.txt: malformed by accident: two segment terminators are
  missing, so ``REF~ZZ~ASIA`` and ``QTY~17~403.32~FT`` run together into one REF with 5 elements.
  The envelope counts were made after the damage, so only the 846 mapping can see it.
* OopFactory-X12Parser/WAR/_940/simplot.txt: GE02 and IEA02 (940001777) do not match GS06
  (177818711) and ISA13 (398161180). Strict reading rejects it; lenient reading (what a trading
  partner's translator does before answering a 997) reads the 940 in full.
* OopFactory-X12Parser/WAR/_945/inter-americanproducts.txt: its GS has 10 elements (GS06 shifted),
  so GE02 cannot match. Strict reading rejects it; lenient reading reads the 945 in full.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from libs.x12 import (
    FunctionalAck,
    InventoryAdvice,
    ShippingAdvice,
    ShippingOrder,
    X12Error,
    acknowledge,
    read,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x12"

READ_STRICTLY = [
    "olmelabs-EdiEngine/940.OK.edi",
    "olmelabs-EdiEngine/940.2.OK.edi",
    "olmelabs-EdiEngine/940.W05.Only.edi",
    "olmelabs-EdiEngine/AckTest.edi",
    "olmelabs-EdiEngine/MultipleInterchangesAndGroups.edi",
    "olmelabs-EdiEngine/856.Crossdock.OK.edi",
    "olmelabs-EdiEngine/850.OK.edi",
    "apimeister-x12-types/004060_856.edi",
    "OopFactory-X12Parser/ORD/_846/Example1.txt",
    "OopFactory-X12Parser/ORD/_846/Example2.txt",
    "OopFactory-X12Parser/ORD/_856/Example1.txt",
    "OopFactory-X12Parser/ORD/_856/Example2.txt",
    "OopFactory-X12Parser/ORD/_856/Example3.txt",
    "OopFactory-X12Parser/ORD/_856/Example4.txt",
    "OopFactory-X12Parser/ORD/_856/FromGregarican.txt",
    "OopFactory-X12Parser/ORD/_856/edi1Source.txt",
    "OopFactory-X12Parser/ORD/_850/Example1_PGWGlass.txt",
    "OopFactory-X12Parser/Acknowledgments/TechnicalAcknowledgment_Sample1.txt",
    "azoner-pyx12/simple1.997.base",
    "azoner-pyx12/bad_elements.997.base",
    "azoner-pyx12/mult_isa.997.base",
    "azoner-pyx12/simple1.txt",
]

# file -> (tag, segment ordinal) of the strict reader's error
REJECTED_STRICTLY = {
    "olmelabs-EdiEngine/940_Failed_SE01.edi": ("SE", 11),
    "olmelabs-EdiEngine/ControlNumbersMismatch.edi": ("SE", 7),
    "olmelabs-EdiEngine/WrongGroupsAndTranCount.edi": ("GE", 8),
    "OopFactory-X12Parser/WAR/_940/simplot.txt": ("GE", 30),
    "OopFactory-X12Parser/WAR/_945/inter-americanproducts.txt": ("GS", 2),
}


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def transactions(name: str, strict: bool = True):
    return [t for i in read(load(name), strict=strict) for g in i.groups for t in g.transactions]


def test_every_fixture_file_is_classified_by_this_test_module() -> None:
    on_disk = {
        str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*") if p.is_file() and p.name != "PROVENANCE.md"
    }

    classified = set(READ_STRICTLY) | set(REJECTED_STRICTLY)

    assert on_disk == classified


@pytest.mark.parametrize("name", READ_STRICTLY)
def test_well_formed_sample_reads_strictly_with_every_transaction_set(name: str) -> None:
    data = load(name)

    interchanges = read(data)

    assert interchanges
    assert not [e for i in interchanges for e in i.all_errors()]
    assert data.count(b"ST") >= sum(len(g.transactions) for i in interchanges for g in i.groups)


@pytest.mark.parametrize(("name", "where"), sorted(REJECTED_STRICTLY.items()))
def test_malformed_envelope_is_rejected_naming_the_segment(name: str, where: tuple[str, int]) -> None:
    with pytest.raises(X12Error) as caught:
        read(load(name))

    assert (caught.value.tag, caught.value.index) == where
    assert f"{where[0]} segment #{where[1]}" in str(caught.value)


@pytest.mark.parametrize("name", sorted(REJECTED_STRICTLY))
def test_malformed_envelope_reads_leniently_keeping_the_errors(name: str) -> None:
    interchanges = read(load(name), strict=False)

    errors = [e for i in interchanges for e in i.all_errors()]
    assert errors
    assert errors[0].tag == REJECTED_STRICTLY[name][0]


def test_pretty_printed_940_with_bom_and_cr_terminator_maps_to_a_shipping_order() -> None:
    (transaction,) = transactions("OopFactory-X12Parser/WAR/_940/simplot.txt", strict=False)

    order = ShippingOrder.from_transaction(transaction)

    assert order.order_number == "01235639"
    assert order.purchase_order == "3353558"
    consignee = next(p for p in order.parties if p.code == "CN")
    assert (consignee.city, consignee.state, consignee.postal_code) == ("Guilderland Center", "NY", "12085")
    assert [(line.quantity, line.unit, line.upc) for line in order.lines] == [
        (Decimal(972), "CA", "007117900989"),
        (Decimal(189), "CA", "007117901707"),
    ]
    assert order.lines[1].description.startswith("Taco Bell")
    assert [d.qualifier for d in order.dates] == ["10", "02"]


def test_newline_terminated_940_maps_ship_to_dates_and_lines() -> None:
    (transaction,) = transactions("olmelabs-EdiEngine/940.OK.edi")

    order = ShippingOrder.from_transaction(transaction)

    assert order.ship_to is not None and order.ship_to.name == "ST COMPANY"
    assert [r.value for r in order.references] == ["R1121"]
    assert [(d.qualifier, d.date) for d in order.dates] == [("10", "20000204"), ("02", "20000207")]
    assert [line.quantity for line in order.lines] == [12, 32, 12]
    assert order.lines[0].sku == "000100"
    assert [r.value for r in order.lines[2].references] == ["JAN0100"]


def test_945_with_odd_gs_reads_leniently_and_maps_shipped_quantities() -> None:
    (transaction,) = transactions("OopFactory-X12Parser/WAR/_945/inter-americanproducts.txt", strict=False)

    advice = ShippingAdvice.from_transaction(transaction)

    assert transaction.control_number == "0003100001"
    assert (advice.ship_date, advice.shipment_id) == ("20020916", "2144")
    assert (advice.transport_method, advice.carrier) == ("M", "NA")
    assert [(line.quantity_ordered, line.quantity_shipped, line.sku) for line in advice.lines] == [
        (120, 120, "339408"),
        (400, 400, "100021"),
        (400, 400, "133848"),
    ]
    assert advice.tracking_numbers == ["K018293-00010", "K018273-00033", "K082738-0041"]
    assert not advice.partial


def test_846_with_tilde_elements_and_brace_terminator_maps_quantities() -> None:
    (transaction,) = transactions("OopFactory-X12Parser/ORD/_846/Example1.txt")

    advice = InventoryAdvice.from_transaction(transaction)

    (item,) = advice.items
    assert item.sku == "46L5055"
    assert [(q.qualifier, q.quantity, q.unit) for q in item.quantities] == [
        ("34", 5250, "EA"),
        ("QH", 100, "EA"),
        ("QB", 50, "EA"),
        ("87", 75, "EA"),
    ]


def test_846_with_run_together_segments_is_rejected_naming_the_ref_segment() -> None:
    (transaction,) = transactions("OopFactory-X12Parser/ORD/_846/Example2.txt")

    with pytest.raises(X12Error) as caught:
        InventoryAdvice.from_transaction(transaction)

    assert (caught.value.tag, caught.value.index) == ("REF", 15)
    assert "terminator may be missing" in str(caught.value)


def test_856_with_multibyte_ellipsis_terminator_reads_every_hl_segment() -> None:
    (transaction,) = transactions("OopFactory-X12Parser/ORD/_856/Example3.txt")

    hl = [s for s in transaction.segments if s.tag == "HL"]

    assert [s.get(1) for s in hl] == ["1", "2", "3", "4"]
    assert transaction.segments[-1].elements == ["4", "4188"]


def test_repetition_separator_declared_in_isa11_is_not_split_eagerly() -> None:
    (interchange,) = read(load("OopFactory-X12Parser/ORD/_856/edi1Source.txt"))

    bm = next(s for s in interchange.groups[0].transactions[0].segments if s.tag == "REF")

    assert interchange.delimiters.repetition == "-"
    assert bm.get(2) == "999999-001"


def test_ta1_only_interchange_keeps_its_acknowledgments() -> None:
    (interchange,) = read(load("OopFactory-X12Parser/Acknowledgments/TechnicalAcknowledgment_Sample1.txt"))

    assert [s.get(1) for s in interchange.acknowledgments] == ["0659", "0660"]
    assert interchange.groups == []


def test_multiple_interchanges_and_groups_are_all_read() -> None:
    interchanges = read(load("olmelabs-EdiEngine/MultipleInterchangesAndGroups.edi"))

    shape = [[len(g.transactions) for g in i.groups] for i in interchanges]

    assert shape == [[2, 1], [2, 1]]


def test_pyx12_997_maps_rejections_and_segment_errors() -> None:
    (transaction,) = transactions("azoner-pyx12/simple1.997.base")

    ack = FunctionalAck.from_transaction(transaction)

    assert (ack.functional_id, ack.group_control_number, ack.status) == ("HC", "17", "R")
    assert (ack.included, ack.received, ack.accepted) == (1, 1, 0)
    assert [(e.tag, e.position) for e in ack.transactions[0].segment_errors] == [("BHT", 1), ("HL", 1)]


def test_997_for_a_group_with_a_wrong_segment_count_rejects_that_transaction_set() -> None:
    (interchange,) = read(load("olmelabs-EdiEngine/940_Failed_SE01.edi"), strict=False)

    ack = acknowledge(interchange.groups[0])

    assert ack.status == "R"
    assert [(t.control_number, t.status, t.errors) for t in ack.transactions] == [("20066", "R", ["4"])]


def test_997_for_a_good_group_accepts_it_and_checks_each_set_with_the_mapping() -> None:
    (interchange,) = read(load("olmelabs-EdiEngine/AckTest.edi"))

    acks = [acknowledge(g, check=ShippingOrder.from_transaction) for g in interchange.groups]

    assert [(a.group_control_number, a.status, a.accepted) for a in acks] == [
        ("9221", "A", 2),
        ("9222", "A", 1),
    ]
