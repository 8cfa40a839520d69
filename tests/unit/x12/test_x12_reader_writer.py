"""Reader and writer edge cases: errors name the segment, the writer refuses what X12 cannot say."""

from __future__ import annotations

import pytest

from libs.x12 import (
    Delimiters,
    InventoryAdvice,
    InventoryItem,
    Quantity,
    Segment,
    ShippingOrder,
    X12Error,
    envelope,
    read,
    read_one,
    write,
)

ISA = (
    "ISA*00*          *00*          *ZZ*MESH           *ZZ*TPL            "
    "*260101*1200*U*00401*000000007*0*P*>~"
)


def test_missing_se_is_reported_at_the_segment_that_should_have_followed_it() -> None:
    data = ISA + "GS*OW*MESH*TPL*20260101*1200*7*X*004010~ST*940*0001~W05*N*A~GE*1*7~IEA*1*000000007~"

    with pytest.raises(X12Error) as caught:
        read(data)

    assert (caught.value.tag, caught.value.index) == ("GE", 5)
    assert "SE is missing" in str(caught.value)


def test_segment_outside_a_group_is_named() -> None:
    with pytest.raises(X12Error) as caught:
        read(ISA + "ST*940*0001~SE*2*0001~IEA*0*000000007~")

    assert (caught.value.tag, caught.value.index) == ("ST", 2)


def test_missing_iea_names_the_last_segment_read() -> None:
    with pytest.raises(X12Error) as caught:
        read(ISA + "GS*OW*MESH*TPL*20260101*1200*7*X*004010~ST*940*0001~SE*2*0001~GE*1*7~")

    assert (caught.value.tag, caught.value.index) == ("GE", 5)


def test_a_stray_terminator_shows_as_a_bad_tag_with_a_hint() -> None:
    with pytest.raises(X12Error) as caught:
        read(ISA + "GS*OW*MESH*TPL*20260101*1200*7*X*004010~ST*940*0001~W05*N~A*B~SE*3*0001~GE*1*7~IEA*1*7~")

    assert caught.value.index == 5
    assert "terminator may be missing" in str(caught.value)


def test_text_that_is_not_x12_is_rejected_as_missing_isa() -> None:
    with pytest.raises(X12Error) as caught:
        read(b'{"order": 1}')

    assert caught.value.tag == "ISA"


def test_utf16_with_bom_and_crlf_pretty_printing_is_read() -> None:
    pretty = ISA + "\r\n  GS*OW*MESH*TPL*20260101*1200*7*X*004010~\r\n    ST*940*0001~\r\n      W05*N*A~\r\n"
    pretty += "    SE*3*0001~\r\n  GE*1*7~\r\nIEA*1*000000007~\r\n"

    interchange = read_one(b"\xff\xfe" + pretty.encode("utf-16-le"))

    assert interchange.groups[0].transactions[0].segments == [Segment("W05", ["N", "A"])]


def test_writer_refuses_a_delimiter_inside_data() -> None:
    order = ShippingOrder(order_number="A*B")

    with pytest.raises(X12Error) as caught:
        write(
            envelope(
                [order.to_transaction("0001")],
                sender_id="MESH",
                receiver_id="TPL",
                control_number=1,
                date="20260101",
                time="1200",
            )
        )

    assert caught.value.tag == "W05"


def test_writer_refuses_an_isa_field_too_long() -> None:
    order = ShippingOrder(order_number="A")

    with pytest.raises(X12Error):
        write(
            envelope(
                [order.to_transaction("0001")],
                sender_id="X" * 16,
                receiver_id="TPL",
                control_number=1,
                date="20260101",
                time="1200",
            )
        )


def test_writer_refuses_a_repetition_separator_before_00402() -> None:
    interchange = envelope(
        [ShippingOrder(order_number="A").to_transaction("1")],
        sender_id="M",
        receiver_id="T",
        control_number=1,
        date="20260101",
        time="1200",
        delimiters=Delimiters(repetition="^"),
    )

    with pytest.raises(X12Error):
        write(interchange)


def test_written_counts_and_control_numbers_are_computed() -> None:
    advice = InventoryAdvice(
        reference="INV1",
        date="20260101",
        items=[
            InventoryItem(product_ids={"SK": "SKU-1001"}, quantities=[Quantity("17", 5, location="EAST")])
        ],
    )
    transactions = [advice.to_transaction("0001"), advice.to_transaction("0002")]

    text = write(
        envelope(
            transactions, sender_id="TPL", receiver_id="MESH", control_number=42, date="20260101", time="1200"
        )
    ).decode()

    assert "SE*7*0001~" in text and "SE*7*0002~" in text
    assert "GE*2*42~" in text
    assert text.rstrip().endswith("IEA*1*000000042~")
    assert read(text)[0].groups[0].functional_id == "IB"
