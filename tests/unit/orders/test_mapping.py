"""The orders service's dict mapping: `from_dict` builds what ParseDict would, for any message."""

from __future__ import annotations

from google.protobuf import json_format, message_factory

from retail.common.v1 import common_pb2
from retail.orders.v1 import orders_pb2
from services.orders.api.mapping import from_dict, to_dict
from tests.contract.orders.harness import channel_order
from tests.unit.protos import filled, mesh_message_types


def _parse_dict(data, message):
    return json_format.ParseDict(data, message, ignore_unknown_fields=True)


def test_from_dict_builds_what_parse_dict_builds_for_every_mesh_message_type() -> None:
    for descriptor in mesh_message_types():
        cls = message_factory.GetMessageClass(descriptor)
        for seed in range(4):
            data = to_dict(filled(descriptor, seed))
            ours, theirs = from_dict(data, cls()), _parse_dict(data, cls())
            # bytes compared: NaN floats make equal messages compare unequal
            assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(
                deterministic=True
            ), descriptor.full_name


def test_shapes_to_dict_never_writes_are_left_to_parse_dict() -> None:
    cases = [
        (common_pb2.ExternalRef, {"system": "SOURCE_SYSTEM_ERP", "id": "so-1", "unknown": 1}),  # ignored
        (common_pb2.ExternalRef, {"system": "NOT_A_SYSTEM", "id": "so-1"}),  # a name the enum lacks
        (common_pb2.ExternalRef, {"system": 2, "id": None}),  # a number for the enum, null for the id
        (common_pb2.Money, {"minorUnits": "1999", "currency": "USD"}),  # a JSON name
        (common_pb2.Money, {"minor_units": 1999, "currency": "USD"}),  # int64 as a number
    ]
    for cls, data in cases:
        assert from_dict(data, cls()) == _parse_dict(data, cls()), data
    assert from_dict({"minorUnits": "1999"}, common_pb2.Money()).minor_units == 1999


def test_from_dict_merges_into_the_message_it_is_given_and_empty_data_changes_nothing() -> None:
    message = common_pb2.ExternalRef(name="SO-1")
    assert from_dict({"id": "so-1"}, message) is message
    assert (message.id, message.name) == ("so-1", "SO-1")
    assert from_dict(None, message) == from_dict({}, message) == message


def test_an_order_is_built_back_without_parse_dict(monkeypatch) -> None:
    """The order's own dicts take the fast path: ParseDict is only for shapes `to_dict` never writes."""
    from services.orders.api import mapping
    from services.orders.api.mapping import order_from_proto, order_to_proto

    def refuse(*args, **kwargs):
        raise AssertionError("ParseDict called")

    channel = channel_order(1)
    channel.lines[0].tax_total.CopyFrom(common_pb2.Money(minor_units=120, currency="USD"))
    channel.tax_lines.add().CopyFrom(filled(orders_pb2.TaxLine.DESCRIPTOR, 2))
    order = order_from_proto(channel, "o-1")
    monkeypatch.setattr(mapping.json_format, "ParseDict", refuse)
    built = order_to_proto(order)
    assert built.channel_order == channel.channel_order and built.shipping_address == channel.shipping_address
    assert [(line.unit_price, line.tax_total) for line in built.lines] == [
        (line.unit_price, line.tax_total) for line in channel.lines
    ]
    assert list(built.tax_lines) == list(channel.tax_lines)
