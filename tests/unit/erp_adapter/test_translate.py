"""Canonical order → BC salesOrder body, BC amounts → Money, BC errors → rejection reasons."""

from __future__ import annotations

import json
from pathlib import Path

from retail.common.v1 import common_pb2
from retail.orders.v1 import orders_pb2
from services.erp_adapter.translate import errors, sales_order

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "erp_adapter"
R = orders_pb2.RejectionReason


def _order(name: str = "#1001", **fields: object) -> orders_pb2.SalesOrder:
    order = orders_pb2.SalesOrder(
        order_id="O-1",
        channel_order=common_pb2.ExternalRef(
            system=common_pb2.SOURCE_SYSTEM_SHOPIFY, id="gid://shopify/Order/1", name=name
        ),
        **fields,
    )
    order.lines.add(
        line_id="L1",
        sku="SKU-1001",
        quantity=2,
        unit_price=common_pb2.Money(minor_units=1099, currency="USD"),
        discount_total=common_pb2.Money(minor_units=100, currency="USD"),
        fulfillment_location_id="WEST",
    )
    order.lines.add(
        line_id="L2", sku="SKU-1002", quantity=1, unit_price=common_pb2.Money(minor_units=500, currency="USD")
    )
    return order


def test_external_document_number_is_the_channel_order_name() -> None:
    assert sales_order.external_document_number(_order("#1001")) == "#1001"


def test_replacements_and_overlong_names_use_the_mesh_order_id_within_35_characters() -> None:
    replacement = _order("#1001", replacement_of_order_id="O-0")
    long_name = _order("#" + "9" * 40)
    long_id = _order("")
    long_id.order_id = "x" * 60

    assert sales_order.external_document_number(replacement) == "O-1"
    assert sales_order.external_document_number(long_name) == "O-1"
    assert len(sales_order.external_document_number(long_id)) <= 35


def test_customer_is_the_orders_own_then_the_mapped_channel_customer_then_the_default() -> None:
    own = _order(customer=orders_pb2.CustomerRef(erp_customer_number="C20000"))
    mapped = _order(
        customer=orders_pb2.CustomerRef(
            channel_customer=common_pb2.ExternalRef(
                system=common_pb2.SOURCE_SYSTEM_SHOPIFY, id="gid://shopify/Customer/7"
            )
        )
    )

    assert sales_order.customer_number(own, {}, "C10000") == "C20000"
    assert sales_order.customer_number(mapped, {"7": "C20000"}, "C10000") == "C20000"
    assert sales_order.customer_number(_order(), {}, "C10000") == "C10000"


def test_body_uses_the_real_sales_order_and_line_field_names() -> None:
    header_keys = set(json.loads((FIXTURES / "dynamics_salesOrder_create.response.json").read_text()))
    line_keys = set(json.loads((FIXTURES / "dynamics_salesorderline_get.block1.json").read_text()))
    line_keys |= {"locationId"}  # in the v2.0 salesOrderLine entity, absent from this doc example

    body = sales_order.sales_order_body(_order(), customer="C10000", location_ids={"WEST": "loc-west"})

    lines = body.pop("salesOrderLines")
    assert set(body) <= header_keys
    assert all(set(line) <= line_keys for line in lines)
    assert body["externalDocumentNumber"] == "#1001"
    assert lines[0] == {
        "sequence": 10000,
        "lineType": "Item",
        "lineObjectNumber": "SKU-1001",
        "quantity": 2,
        "unitPrice": 10.99,
        "discountAmount": 1.0,
        "locationId": "loc-west",
    }
    assert "locationId" not in lines[1]


def test_created_lines_map_back_to_order_lines_by_sequence() -> None:
    mapping = sales_order.line_map(_order(), [{"id": "b", "sequence": 20000}, {"id": "a", "sequence": 10000}])

    assert mapping["L1"]["bc_line_id"] == "a"
    assert mapping["L2"]["bc_line_id"] == "b"


def test_bc_amounts_become_minor_units_rounded_half_up() -> None:
    assert sales_order.to_money(17773.66, "USD") == common_pb2.Money(minor_units=1777366, currency="USD")
    assert sales_order.to_money(0.005, "USD").minor_units == 1
    assert sales_order.to_money(1200, "JPY").minor_units == 1200


def test_specific_bc_codes_map_to_reasons() -> None:
    assert (
        errors.rejection_reason("Application_CreditLimitExceeded", "")
        == R.REJECTION_REASON_CREDIT_LIMIT_EXCEEDED
    )
    assert errors.rejection_reason("Application_TaxAreaMissing", "") == R.REJECTION_REASON_TAX_REJECTED
    assert errors.rejection_reason("Application_ItemNotFound", "") == R.REJECTION_REASON_INVALID_SKU
    assert errors.rejection_reason("Application_FraudHold", "") == R.REJECTION_REASON_FRAUD_SUSPECTED


def test_generic_dialog_exceptions_are_told_apart_by_their_message() -> None:
    generic = "Application_DialogException"
    cases = {
        "Customer C30000 is blocked with type All.": R.REJECTION_REASON_CUSTOMER_BLOCKED,
        "Tax Area Code must have a value in Customer: No.=C50000.": R.REJECTION_REASON_TAX_REJECTED,
        "The field No. of table Sales Line contains a value (SKU-9) that cannot be found in the "
        "related table (Item).": R.REJECTION_REASON_INVALID_SKU,
        "Customer C40000 is on credit hold: the balance due exceeds the credit limit.": (
            R.REJECTION_REASON_CREDIT_LIMIT_EXCEEDED
        ),
        "The payment for External Document No. #1 is not authorized.": (
            R.REJECTION_REASON_PAYMENT_NOT_AUTHORIZED
        ),
        "Something else entirely.": R.REJECTION_REASON_OTHER,
    }

    for message, reason in cases.items():
        assert errors.rejection_reason(generic, message) == reason, message


def test_erp_reason_keeps_the_bc_code_verbatim_as_evidence() -> None:
    reason = errors.erp_reason("Application_TaxAreaMissing", "Tax Area Code must have a value")

    assert reason.code == "TAX_REJECTED"
    assert reason.external_code == "Application_TaxAreaMissing"
    assert reason.failure_kind == common_pb2.FAILURE_KIND_BUSINESS
