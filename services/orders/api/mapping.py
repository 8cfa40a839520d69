"""SalesOrder (retail.orders.v1) to and from the domain Order: the one place they meet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from retail.common.v1 import common_pb2
from retail.orders.v1 import orders_pb2
from services.orders.domain.order import Hold, Line, Order, StatusChange


def to_dict(message: Message) -> dict[str, Any]:
    """A message as JSON-ready dict with proto field names."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def from_dict(data: dict[str, Any] | None, message: Message) -> Message:
    """Fill `message` from a dict made by `to_dict` (unknown fields ignored).

    As `json_format.ParseDict` would, at a fraction of its cost: the order keeps its prices, totals,
    address and references as `to_dict`'s dicts, and every event carrying the order builds them
    back (OrderAccepted: about twenty). The dict's own shapes (field names, enum names, int64 as
    text, RFC 3339 timestamps) go to the message's constructor, converted field by field with
    what each field needs, worked out once per field; anything else (a JSON name, a map, bytes, a
    well-known type other than Timestamp, a value the constructor refuses) takes ParseDict.
    """
    if data:
        try:
            built = type(message)(**_arguments(message.DESCRIPTOR, data))
        except (_Unusual, TypeError, ValueError, AttributeError):
            json_format.ParseDict(data, message, ignore_unknown_fields=True)
        else:
            message.MergeFrom(built)
    return message


class _Unusual(Exception):
    """A dict `from_dict` leaves to ParseDict."""


_CONVERTERS: dict[FieldDescriptor, Callable[[Any], Any]] = {}


def _arguments(descriptor: Descriptor, data: dict[str, Any]) -> dict[str, Any]:
    fields = descriptor.fields_by_name
    arguments: dict[str, Any] = {}
    oneofs: set[str] = set()
    for key, value in data.items():
        field = fields.get(key)
        if field is None:
            if key in descriptor.fields_by_camelcase_name:
                raise _Unusual(key)  # a JSON name: ParseDict knows them
            continue  # unknown: ignored, as ParseDict(ignore_unknown_fields=True) does
        if value is None:
            continue  # null: the field stays unset, as in ParseDict
        if field.containing_oneof is not None:
            if field.containing_oneof.name in oneofs:
                raise _Unusual(key)  # two members of one oneof: ParseDict's error
            oneofs.add(field.containing_oneof.name)
        convert = _CONVERTERS.get(field)
        if convert is None:
            convert = _CONVERTERS[field] = _converter(field)
        if field.is_repeated:
            if not isinstance(value, list):
                raise _Unusual(key)
            arguments[key] = [convert(item) for item in value]
        else:
            arguments[key] = convert(value)
    return arguments


def _converter(field: FieldDescriptor) -> Callable[[Any], Any]:
    """`to_dict`'s value of one item of `field` as the message constructor takes it."""
    if field.message_type is not None:
        if field.message_type.GetOptions().map_entry:
            return _unusual
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return _timestamp
        if field.message_type.full_name.startswith("google.protobuf."):
            return _unusual
        cls = message_factory.GetMessageClass(field.message_type)
        return lambda value: cls(**_arguments(field.message_type, value))
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _unusual
    if field.cpp_type in (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64):
        return int  # written as text
    if field.cpp_type in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
        return float  # 'NaN' and 'Infinity' too
    return _same  # strings, bools, 32-bit ints, enum names (the constructor takes them)


def _same(value: Any) -> Any:
    return value


def _unusual(value: Any) -> Any:
    raise _Unusual(type(value).__name__)


def _timestamp(value: Any) -> Timestamp:
    stamp = Timestamp()
    stamp.FromJsonString(value)
    return stamp


def ts_to_dt(ts: Timestamp, present: bool = True) -> datetime | None:
    """A Timestamp as aware datetime, None when unset."""
    if not present or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.ToDatetime(tzinfo=UTC)


def set_ts(ts: Timestamp, value: datetime | None) -> None:
    """Set a Timestamp field from an optional datetime."""
    if value is not None:
        ts.FromDatetime(value)


def system_name(value: int) -> str:
    """SourceSystem number to its domain name (`SHOPIFY`)."""
    return common_pb2.SourceSystem.Name(value).removeprefix("SOURCE_SYSTEM_")


def system_value(name: str) -> int:
    """Domain system name to SourceSystem number."""
    return common_pb2.SourceSystem.Value(f"SOURCE_SYSTEM_{name}")


def status_value(name: str | None) -> int:
    """Domain status name to OrderStatus number (0 for None)."""
    return orders_pb2.OrderStatus.Value(f"ORDER_STATUS_{name}") if name else 0


def status_name(value: int) -> str:
    """OrderStatus number to the domain name."""
    return orders_pb2.OrderStatus.Name(value).removeprefix("ORDER_STATUS_")


def order_from_proto(msg: orders_pb2.SalesOrder, order_id: str) -> Order:
    """The fields a channel states about an order (IngestOrderRequest.order), as a domain Order."""
    return Order(
        order_id=order_id,
        channel=msg.channel,
        channel_order=to_dict(msg.channel_order),
        customer=to_dict(msg.customer),
        lines=[
            Line(
                line_id=ln.line_id,
                sku=ln.sku,
                title=ln.title,
                quantity=ln.quantity,
                unit_price=to_dict(ln.unit_price),
                discount_total=to_dict(ln.discount_total) if ln.HasField("discount_total") else None,
                tax_total=to_dict(ln.tax_total) if ln.HasField("tax_total") else None,
                channel_line=to_dict(ln.channel_line) if ln.HasField("channel_line") else None,
            )
            for ln in msg.lines
        ],
        totals=to_dict(msg.totals),
        tax_lines=[to_dict(t) for t in msg.tax_lines],
        shipping_address=to_dict(msg.shipping_address) if msg.HasField("shipping_address") else None,
        shipping_method=msg.shipping_method,
        payment_status=orders_pb2.PaymentStatus.Name(msg.payment_status),
        placed_at=ts_to_dt(msg.placed_at, msg.HasField("placed_at")),
        channel_updated_at=ts_to_dt(msg.channel_updated_at, msg.HasField("channel_updated_at")),
    )


def _change_to_proto(change: StatusChange) -> orders_pb2.StatusChange:
    msg = orders_pb2.StatusChange(
        from_status=status_value(change.from_status),
        to_status=status_value(change.to_status),
        source_system=system_value(change.source),
        caused_by=change.caused_by,
        note=change.note[:2000],
    )
    set_ts(msg.occurred_at, change.at)
    return msg


def change_to_proto(change: StatusChange) -> orders_pb2.StatusChange:
    """A domain status change as StatusChange."""
    return _change_to_proto(change)


def hold_to_proto(hold: Hold) -> orders_pb2.Hold:
    """A domain hold as Hold."""
    msg = orders_pb2.Hold(
        hold_id=hold.hold_id,
        reason=orders_pb2.HoldReason.Value(f"HOLD_REASON_{hold.reason}"),
        note=hold.note,
        placed_by=system_value(hold.placed_by),
    )
    set_ts(msg.placed_at, hold.placed_at)
    set_ts(msg.released_at, hold.released_at)
    return msg


def line_to_proto(line: Line, order: Order) -> orders_pb2.OrderLine:
    """A domain line as OrderLine."""
    msg = orders_pb2.OrderLine(
        line_id=line.line_id,
        sku=line.sku,
        title=line.title,
        quantity=line.quantity,
        status=orders_pb2.LineStatus.Value(f"LINE_STATUS_{line.status(order.status)}"),
        fulfillment_location_id=line.location_id,
        quantity_shipped=line.quantity_shipped,
        quantity_cancelled=line.quantity_cancelled,
        quantity_backordered=line.short if order.status.value == "BACKORDERED" else 0,
    )
    from_dict(line.unit_price, msg.unit_price)
    if line.discount_total is not None:
        from_dict(line.discount_total, msg.discount_total)
    if line.tax_total is not None:
        from_dict(line.tax_total, msg.tax_total)
    if line.channel_line is not None:
        from_dict(line.channel_line, msg.channel_line)
    return msg


def order_to_proto(order: Order) -> orders_pb2.SalesOrder:
    """The domain order as the canonical SalesOrder (with the address: callers decide where it goes)."""
    msg = orders_pb2.SalesOrder(
        order_id=order.order_id,
        channel=order.channel,
        lines=[line_to_proto(line, order) for line in order.lines],
        tax_lines=[from_dict(t, orders_pb2.TaxLine()) for t in order.tax_lines],
        shipping_method=order.shipping_method,
        payment_status=orders_pb2.PaymentStatus.Value(order.payment_status or "PAYMENT_STATUS_UNSPECIFIED"),
        status=status_value(order.status),
        resume_status=status_value(order.resume_status),
        holds=[hold_to_proto(h) for h in order.holds],
        rejection_reason=orders_pb2.RejectionReason.Value(f"REJECTION_REASON_{order.rejection_reason}")
        if order.rejection_reason
        else 0,
        rejection_detail=order.rejection_detail,
        replacement_of_order_id=order.replacement_of_order_id,
        status_history=[_change_to_proto(c) for c in order.history],
        version=order.version,
    )
    from_dict(order.channel_order, msg.channel_order)
    from_dict(order.customer, msg.customer)
    from_dict(order.totals, msg.totals)
    if order.shipping_address:
        from_dict(order.shipping_address, msg.shipping_address)
    if order.erp_sales_order:
        from_dict(order.erp_sales_order, msg.erp_sales_order)
    set_ts(msg.placed_at, order.placed_at)
    set_ts(msg.channel_updated_at, order.channel_updated_at)
    set_ts(msg.updated_at, order.updated_at)
    return msg
