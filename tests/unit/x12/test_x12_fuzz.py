"""Property tests: writer → reader round trips, and no input makes the reader raise anything else."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.x12 import (
    AdjustedLine,
    AdjustmentAdvice,
    DateReference,
    Delimiters,
    FunctionalAck,
    FunctionalGroup,
    Interchange,
    InventoryAdvice,
    InventoryItem,
    OrderLine,
    Party,
    Quantity,
    ReceiptAdvice,
    ReceiptException,
    ReceivedLine,
    Reference,
    Segment,
    SegmentError,
    ShippedLine,
    ShippingAdvice,
    ShippingOrder,
    TransactionAck,
    TransactionSet,
    X12Error,
    document,
    read,
    write,
)

ENVELOPE_TAGS = {"ISA", "IEA", "GS", "GE", "ST", "SE", "TA1"}
DATA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -./#&"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
# Delimiter candidates never overlap the data alphabet, as in real interchanges.
DELIMITER_POOL = "*~|^!>:`\\}{'…+"

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def text(min_size: int = 0, max_size: int = 12, alphabet: str = DATA) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size)


def word(min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    # no leading/trailing spaces: ISA pads and strips them, and they are never meaningful
    return text(min_size, max_size).map(str.strip).filter(lambda s: len(s) >= min_size)


def code(size: int) -> st.SearchStrategy[str]:
    return text(size, size, UPPER + DIGITS)


def digits(size: int) -> st.SearchStrategy[str]:
    return text(size, size, DIGITS)


quantities = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def delimiters(draw) -> Delimiters:
    newline = draw(st.booleans())
    chars = draw(st.permutations(DELIMITER_POOL))
    repetition = draw(st.one_of(st.none(), st.just(chars[3])))
    return Delimiters(
        element=chars[0], component=chars[1], segment="\n" if newline else chars[2], repetition=repetition
    )


tags = text(2, 3, UPPER + DIGITS).filter(lambda t: t[0].isalpha() and t not in ENVELOPE_TAGS)
segments = st.builds(Segment, tags, st.lists(text(0, 10), max_size=8))


@st.composite
def interchanges(draw) -> Interchange:
    d = draw(delimiters())
    version = "00501" if d.repetition else draw(st.sampled_from(["00401", "00501", "00200"]))
    groups = []
    for _ in range(draw(st.integers(0, 3))):
        transactions = [
            TransactionSet(
                code=draw(digits(3)),
                control_number=draw(digits(draw(st.integers(4, 9)))),
                segments=draw(st.lists(segments, max_size=6)),
            )
            for _ in range(draw(st.integers(0, 3)))
        ]
        groups.append(
            FunctionalGroup(
                functional_id=draw(code(2)),
                sender=draw(word(1, 15)),
                receiver=draw(word(1, 15)),
                date=draw(digits(8)),
                time=draw(digits(4)),
                control_number=str(draw(st.integers(1, 999_999_999))),
                version=draw(st.sampled_from(["004010", "005010", "004060"])),
                transactions=transactions,
            )
        )
    return Interchange(
        sender_id=draw(word(0, 15)),
        receiver_id=draw(word(0, 15)),
        sender_qualifier=draw(code(2)),
        receiver_qualifier=draw(code(2)),
        date=draw(digits(6)),
        time=draw(digits(4)),
        control_number=draw(digits(9)),
        version=version,
        usage=draw(st.sampled_from("PT")),
        delimiters=d,
        groups=groups,
    )


@FAST
@given(st.lists(interchanges(), min_size=1, max_size=3), st.booleans())
def test_written_interchanges_read_back_equal(originals: list[Interchange], line_break: bool) -> None:
    data = write(originals, line_break=line_break)

    parsed = read(data)

    assert parsed == originals


@FAST
@given(interchanges())
def test_written_isa_is_fixed_width(interchange: Interchange) -> None:
    text_ = write(interchange, line_break=False).decode("utf-8")

    assert text_[3] == interchange.delimiters.element
    assert text_.index(interchange.delimiters.segment) == 105


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_nothing_but_x12_error(data: bytes) -> None:
    try:
        read(data, strict=True)
        read(data, strict=False)
    except X12Error:
        pass


@FAST
@given(interchanges(), st.data())
def test_damaged_interchanges_raise_nothing_but_x12_error(
    interchange: Interchange, data: st.DataObject
) -> None:
    raw = bytearray(write(interchange))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, max(0, len(raw) - 1)))
        action = data.draw(st.sampled_from(["delete", "insert", "replace"]))
        byte = data.draw(st.integers(0, 255))
        if action == "delete" and raw:
            del raw[at]
        elif action == "insert":
            raw.insert(at, byte)
        elif raw:
            raw[at] = byte

    try:
        for parsed in read(bytes(raw), strict=False):
            for group in parsed.groups:
                for transaction in group.transactions:
                    try:
                        document(transaction)
                    except X12Error:
                        pass
    except X12Error:
        pass


mapped_tags = st.sampled_from(
    [
        "W05",
        "W06",
        "BIA",
        "W17",
        "W15",
        "W19",
        "AK1",
        "AK2",
        "AK3",
        "AK5",
        "AK9",
        "N1",
        "N3",
        "N4",
        "N9",
        "G62",
        "LX",
        "W01",
        "W12",
        "W07",
        "W13",
        "MAN",
        "LIN",
        "QTY",
        "UIT",
        "G69",
        "W27",
        "W76",
        "W03",
        "NTE",
        "W66",
        "CTT",
        "REF",
    ]
)


@FAST
@given(
    st.sampled_from(["940", "945", "846", "944", "947", "997"]),
    st.lists(st.builds(Segment, mapped_tags, st.lists(text(0, 6, DATA + "+-.eE"), max_size=10)), max_size=15),
)
def test_mappings_of_random_segments_raise_nothing_but_x12_error(set_code: str, body: list[Segment]) -> None:
    transaction = TransactionSet(code=set_code, control_number="0001", segments=body)

    try:
        document(transaction)
    except X12Error:
        pass


def roundtrip(transaction: TransactionSet) -> TransactionSet:
    interchange = Interchange(
        sender_id="MESH",
        receiver_id="TPL",
        date="260101",
        time="1200",
        control_number="000000001",
        groups=[FunctionalGroup("ZZ", "MESH", "TPL", "20260101", "1200", "1", transactions=[transaction])],
    )
    (parsed,) = read(write(interchange))
    return parsed.groups[0].transactions[0]


parties = st.builds(
    Party,
    code=st.sampled_from(["ST", "WH", "DE", "BT", "SF"]),
    name=word(0, 20),
    id_qualifier=st.just("92"),
    id=word(1, 10),
    address=st.lists(word(1, 20), max_size=3),
    city=word(0, 10),
    state=code(2),
    postal_code=digits(5),
    country=st.sampled_from(["", "US"]),
)
references = st.builds(Reference, qualifier=code(2), value=word(1, 12), description=word(0, 10))
dates = st.builds(DateReference, qualifier=code(2), date=digits(8), time=st.one_of(st.just(""), digits(4)))
ids = st.dictionaries(st.sampled_from(["SK", "UP", "VN", "BP", "IN"]), word(1, 12), max_size=3)


@FAST
@given(
    st.builds(
        ShippingOrder,
        order_number=word(1, 22),
        purchase_order=word(0, 22),
        status=st.sampled_from(["N", "C"]),
        parties=st.lists(parties, max_size=3),
        references=st.lists(references, max_size=3),
        dates=st.lists(dates, max_size=2),
        notes=st.lists(word(1, 30), max_size=2),
        carrier_routing=word(0, 20),
        lines=st.lists(
            st.builds(
                OrderLine,
                line_number=digits(2).map(lambda s: str(int(s) + 1)),
                quantity=quantities,
                unit=code(2),
                upc=digits(12),
                product_ids=ids,
                description=word(0, 30),
                references=st.lists(references, max_size=2),
            ),
            max_size=4,
        ),
    )
)
def test_940_round_trips(order: ShippingOrder) -> None:
    assert ShippingOrder.from_transaction(roundtrip(order.to_transaction("0001"))) == order


@FAST
@given(
    st.builds(
        ShippingAdvice,
        order_number=word(1, 22),
        ship_date=digits(8),
        shipment_id=word(0, 30),
        purchase_order=word(0, 22),
        reporting_code=st.sampled_from(["F", "N"]),
        parties=st.lists(parties, max_size=2),
        references=st.lists(references, max_size=2),
        dates=st.lists(dates, max_size=2),
        transport_method=st.sampled_from(["", "M", "U"]),
        carrier=code(4),
        routing=word(0, 20),
        lines=st.lists(
            st.builds(
                ShippedLine,
                line_number=digits(2).map(lambda s: str(int(s) + 1)),
                quantity_ordered=quantities,
                quantity_shipped=quantities,
                status=st.sampled_from(["CC", "CP"]),
                unit=code(2),
                upc=digits(12),
                product_ids=st.dictionaries(st.sampled_from(["SK", "VN"]), word(1, 12), max_size=1),
                lot=word(0, 12),
                packages=st.lists(word(1, 20), max_size=2),
                references=st.lists(references, max_size=2),
            ),
            max_size=4,
        ),
    )
)
def test_945_round_trips(advice: ShippingAdvice) -> None:
    assert ShippingAdvice.from_transaction(roundtrip(advice.to_transaction("0001"))) == advice


@FAST
@given(
    st.builds(
        InventoryAdvice,
        reference=word(1, 20),
        date=digits(8),
        purpose=st.just("00"),
        report_type=code(2),
        time=st.one_of(st.just(""), digits(4)),
        parties=st.lists(parties, max_size=2),
        items=st.lists(
            st.builds(
                InventoryItem,
                product_ids=ids.filter(bool),
                line_id=digits(1),
                quantities=st.lists(
                    st.builds(
                        Quantity,
                        qualifier=st.sampled_from(["17", "33", "74"]),
                        quantity=quantities,
                        unit=code(2),
                        location=st.sampled_from(["", "EAST", "WEST"]),
                    ),
                    max_size=5,
                ).map(lambda qs: sorted(qs, key=lambda q: q.location != "")),
            ),
            max_size=4,
        ),
    )
)
def test_846_round_trips(advice: InventoryAdvice) -> None:
    parsed = InventoryAdvice.from_transaction(roundtrip(advice.to_transaction("0001")))

    for item in advice.items:  # consecutive quantities of one location share one N1
        item.quantities.sort(key=lambda q: q.location != "")
    assert parsed == advice


@FAST
@given(
    st.builds(
        ReceiptAdvice,
        receipt_number=word(1, 20),
        date=digits(8),
        order_number=word(0, 20),
        reporting_code=st.just("F"),
        reference_id=word(0, 20),
        parties=st.lists(parties, max_size=2),
        references=st.lists(references, max_size=2),
        lines=st.lists(
            st.builds(
                ReceivedLine,
                line_number=digits(2).map(lambda s: str(int(s) + 1)),
                quantity=quantities,
                unit=code(2),
                upc=digits(12),
                product_ids=st.dictionaries(st.sampled_from(["SK", "VN", "UP"]), word(1, 12), max_size=2),
                lot=word(0, 12),
                exceptions=st.lists(
                    st.builds(
                        ReceiptException,
                        quantity=quantities,
                        condition=st.sampled_from(["01", "02", "03"]),
                        unit=code(2),
                        damage_reason=st.sampled_from(["", "AV", "BC"]),
                    ),
                    max_size=2,
                ),
            ),
            max_size=3,
        ),
    )
)
def test_944_round_trips(advice: ReceiptAdvice) -> None:
    assert ReceiptAdvice.from_transaction(roundtrip(advice.to_transaction("0001"))) == advice


@FAST
@given(
    st.builds(
        AdjustmentAdvice,
        adjustment_number=word(1, 22),
        date=digits(8),
        depositor_adjustment_number=word(0, 22),
        purpose=st.sampled_from(["", "00"]),
        parties=st.lists(parties, max_size=2),
        references=st.lists(references, max_size=2),
        dates=st.lists(dates, max_size=2),
        lines=st.lists(
            st.builds(
                AdjustedLine,
                reason_code=st.sampled_from(["06", "07", "51", "52", "AA", "AU", "AV"]),
                quantity=st.one_of(quantities, quantities.map(lambda q: -q)),
                unit=code(2),
                line_number=digits(2).map(lambda s: str(int(s) + 1)),
                upc=st.one_of(st.just(""), digits(12)),
                product_ids=st.dictionaries(st.sampled_from(["SK", "VN", "UP"]), word(1, 12), max_size=2),
                lot=word(0, 12),
                references=st.lists(references, max_size=2),
                dates=st.lists(dates, max_size=2),
            ),
            max_size=4,
        ),
    )
)
def test_947_round_trips(advice: AdjustmentAdvice) -> None:
    assert AdjustmentAdvice.from_transaction(roundtrip(advice.to_transaction("0001"))) == advice


@FAST
@given(
    st.builds(
        FunctionalAck,
        functional_id=code(2),
        group_control_number=digits(4),
        status=st.sampled_from("AEPR"),
        included=st.integers(0, 99),
        received=st.integers(0, 99),
        accepted=st.integers(0, 99),
        errors=st.lists(st.sampled_from(["1", "4", "5"]), max_size=5),
        transactions=st.lists(
            st.builds(
                TransactionAck,
                code=digits(3),
                control_number=digits(4),
                status=st.sampled_from("AR"),
                errors=st.lists(st.sampled_from(["3", "4", "5"]), max_size=5),
                segment_errors=st.lists(
                    st.builds(
                        SegmentError,
                        tag=tags,
                        position=st.integers(1, 999),
                        code=st.sampled_from(["1", "8"]),
                        loop=st.just(""),
                    ),
                    max_size=2,
                ),
            ),
            max_size=3,
        ),
    )
)
def test_997_round_trips(ack: FunctionalAck) -> None:
    assert FunctionalAck.from_transaction(roundtrip(ack.to_transaction("0001"))) == ack


def test_quantities_are_written_without_exponent_or_trailing_zeros() -> None:
    line = OrderLine(line_number="1", quantity=Decimal("12.50"), unit="EA", product_ids={"SK": "SKU-1"})

    body = ShippingOrder(order_number="A", lines=[line]).to_segments()

    assert next(s for s in body if s.tag == "W01").elements[:2] == ["12.5", "EA"]
