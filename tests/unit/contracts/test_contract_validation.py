"""protovalidate rules on requests and events accept valid messages and name the offending field."""

from __future__ import annotations

from collections.abc import Callable

import protovalidate
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_pb2, inventory_service_pb2
from retail.orders.v1 import events_pb2 as order_events_pb2
from retail.orders.v1 import orders_pb2, orders_service_pb2
from retail.shipments.v1 import shipments_pb2, shipments_service_pb2

SHOPIFY = common_pb2.SOURCE_SYSTEM_SHOPIFY


def _usd(cents: int) -> common_pb2.Money:
    return common_pb2.Money(minor_units=cents, currency="USD")


def _address() -> common_pb2.Address:
    return common_pb2.Address(
        name="Ada Lovelace",
        lines=["1 Main St"],
        city="Springfield",
        province_code="IL",
        postal_code="62701",
        country_code="US",
    )


def ingest_order() -> orders_service_pb2.IngestOrderRequest:
    return orders_service_pb2.IngestOrderRequest(
        request_id="shopify-event-1",
        order=orders_pb2.SalesOrder(
            channel="online-store",
            channel_order=common_pb2.ExternalRef(system=SHOPIFY, id="gid://shopify/Order/1", name="#1001"),
            lines=[orders_pb2.OrderLine(line_id="1", sku="SKU-1", quantity=2, unit_price=_usd(1999))],
            shipping_address=_address(),
            placed_at=Timestamp(seconds=1_700_000_000),
            channel_updated_at=Timestamp(seconds=1_700_000_000),
        ),
    )


def order_accepted() -> order_events_pb2.OrderAccepted:
    return order_events_pb2.OrderAccepted(
        meta=common_pb2.EventMeta(
            event_id="0190f2a4-1c2b-7000-8000-000000000001",
            occurred_at=Timestamp(seconds=1_700_000_001),
            correlation_id="corr-1",
            source_system=common_pb2.SOURCE_SYSTEM_MESH,
            producer="orders",
            key="ord-1",
        ),
        order=orders_pb2.SalesOrder(
            order_id="ord-1",
            channel="online-store",
            lines=[orders_pb2.OrderLine(line_id="1", sku="SKU-1", quantity=2, unit_price=_usd(1999))],
        ),
    )


def reserve() -> inventory_service_pb2.ReserveRequest:
    return inventory_service_pb2.ReserveRequest(
        request_id="ord-1/reserve",
        order_id="ord-1",
        channel="online-store",
        lines=[inventory_service_pb2.ReserveLine(line_id="1", sku="SKU-1", quantity=1)],
    )


def adjust() -> inventory_service_pb2.AdjustRequest:
    return inventory_service_pb2.AdjustRequest(
        request_id="947-0001-1",
        sku="SKU-1",
        location_id="WH-EAST",
        changes=[inventory_pb2.BucketDelta(bucket=inventory_pb2.INVENTORY_BUCKET_DAMAGED, delta=-2)],
        reason=inventory_pb2.ADJUSTMENT_REASON_CYCLE_COUNT,
        source_system=common_pb2.SOURCE_SYSTEM_TPL,
    )


def record_shipment() -> shipments_service_pb2.RecordShipmentRequest:
    return shipments_service_pb2.RecordShipmentRequest(
        request_id="945-0001",
        shipment=shipments_pb2.ShipmentNotice(
            order_id="ord-1",
            release_id="ord-1.r1",
            location_id="WH-EAST",
            warehouse_shipment=common_pb2.ExternalRef(system=common_pb2.SOURCE_SYSTEM_TPL, id="SB-99"),
            shipped_at=Timestamp(seconds=1_700_000_100),
            packages=[
                shipments_pb2.Package(
                    package_id="1",
                    tracking_number="1Z999",
                    carrier="UPS",
                    tracking_url="https://track.example/1Z999",
                    lines=[shipments_pb2.ShipmentLine(line_id="1", sku="SKU-1", quantity=2)],
                )
            ],
        ),
    )


def cancel_order() -> orders_service_pb2.CancelOrderRequest:
    return orders_service_pb2.CancelOrderRequest(
        request_id="cancel-1",
        order_id="ord-1",
        reason=orders_pb2.CANCELLATION_REASON_CUSTOMER_REQUEST,
        requested_by=SHOPIFY,
    )


VALID: list[Callable[[], Message]] = [
    ingest_order,
    order_accepted,
    reserve,
    adjust,
    record_shipment,
    cancel_order,
]


def _field_path(violation: protovalidate.Violation) -> str:
    return ".".join(element.field_name for element in violation.proto.field.elements)


def _violations(message: Message) -> dict[str, str]:
    return {_field_path(v): v.proto.rule_id for v in protovalidate.collect_violations(message)}


@pytest.mark.parametrize("build", VALID, ids=lambda b: b.__name__)
def test_valid_examples_pass_validation(build):
    message = build()

    violations = protovalidate.collect_violations(message)

    assert violations == []


def _walk(message: Message, path: str) -> tuple[Message, str]:
    """The parent message of a dotted path (`order.lines.0.sku`) and the leaf field name."""
    *parents, leaf = path.split(".")
    target = message
    for name in parents:
        target = target[int(name)] if name.isdigit() else getattr(target, name)
    return target, leaf


def _set(path: str, value):
    def mutate(message: Message) -> None:
        parent, leaf = _walk(message, path)
        setattr(parent, leaf, value)

    return mutate


def _clear(path: str):
    def mutate(message: Message) -> None:
        parent, leaf = _walk(message, path)
        parent.ClearField(leaf)

    return mutate


INVALID = [
    ("missing request_id", ingest_order, _set("request_id", ""), "request_id", "string.min_len"),
    ("zero quantity", ingest_order, _set("order.lines.0.quantity", 0), "order.lines.quantity", "int32.gt"),
    (
        "lower-case currency",
        ingest_order,
        _set("order.lines.0.unit_price.currency", "usd"),
        "order.lines.unit_price.currency",
        "string.pattern",
    ),
    (
        "sku with a space",
        ingest_order,
        _set("order.lines.0.sku", "SKU 1"),
        "order.lines.sku",
        "string.pattern",
    ),
    ("sku with @", reserve, _set("lines.0.sku", "SKU@WH"), "lines.sku", "string.pattern"),
    ("no lines", ingest_order, _clear("order.lines"), "order.lines", "repeated.min_items"),
    (
        "three-letter country",
        ingest_order,
        _set("order.shipping_address.country_code", "USA"),
        "order.shipping_address.country_code",
        "string.pattern",
    ),
    ("no price", ingest_order, _clear("order.lines.0.unit_price"), "order.lines.unit_price", "required"),
    ("no order", ingest_order, _clear("order"), "order", "required"),
    ("event without meta", order_accepted, _clear("meta"), "meta", "required"),
    ("event without occurred_at", order_accepted, _clear("meta.occurred_at"), "meta.occurred_at", "required"),
    (
        "event without source system",
        order_accepted,
        _set("meta.source_system", 0),
        "meta.source_system",
        "enum.not_in",
    ),
    (
        "event without correlation id",
        order_accepted,
        _set("meta.correlation_id", ""),
        "meta.correlation_id",
        "string.min_len",
    ),
    ("unspecified cancellation reason", cancel_order, _set("reason", 0), "reason", "enum.not_in"),
    ("undefined cancellation reason", cancel_order, _set("reason", 99), "reason", "enum.defined_only"),
    ("zero adjustment", adjust, _set("changes.0.delta", 0), "changes.delta", "int32.not_in"),
    (
        "adjusting reserved by hand",
        adjust,
        _set("changes.0.bucket", inventory_pb2.INVENTORY_BUCKET_RESERVED),
        "changes.bucket",
        "enum.in",
    ),
    (
        "package without lines",
        record_shipment,
        _clear("shipment.packages.0.lines"),
        "shipment.packages.lines",
        "repeated.min_items",
    ),
    (
        "tracking url not a uri",
        record_shipment,
        _set("shipment.packages.0.tracking_url", "not a url"),
        "shipment.packages.tracking_url",
        "string.uri",
    ),
]


@pytest.mark.parametrize(
    ("build", "mutate", "field", "rule_id"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_examples_are_rejected_naming_the_field(build, mutate, field, rule_id):
    message = build()
    mutate(message)

    violations = _violations(message)

    assert violations.get(field) == rule_id, violations
    with pytest.raises(protovalidate.ValidationError):
        protovalidate.validate(message)


def test_lookup_oneof_must_be_set():
    request = orders_service_pb2.GetOrderRequest(include_timeline=True)

    violations = protovalidate.collect_violations(request)

    assert [v.proto.rule_id for v in violations] == ["required"]
    assert violations[0].proto.field.elements[0].field_name == "lookup"
