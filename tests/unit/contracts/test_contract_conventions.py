"""The house rules of docs/contracts.md, checked on the descriptors of the generated modules."""

from __future__ import annotations

import re

import protovalidate
from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions
from google.protobuf.message_factory import GetMessageClass

EVENT_META = "retail.common.v1.EventMeta"
IRREGULAR_PAST = {"Held", "Sent", "Paid", "Built", "Made", "Done", "Found", "Lost", "Set", "Put"}


def _words(name: str) -> list[str]:
    return re.findall(r"[A-Z][a-z0-9]*", name)


def _looks_past_tense(name: str) -> bool:
    # A noun first, then a participle somewhere after it: OrderAccepted, OrderReleasedToWarehouse.
    return any(w.endswith("ed") or w in IRREGULAR_PAST for w in _words(name)[1:])


def _services(proto_files: list[FileDescriptor]):
    return [s for f in proto_files for s in f.services_by_name.values()]


def _is_read_only(method) -> bool:
    return method.GetOptions().idempotency_level == MethodOptions.NO_SIDE_EFFECTS


def test_package_is_the_folder_and_ends_in_v1(proto_files):
    wrong = [
        (f.name, f.package)
        for f in proto_files
        if f.package != ".".join(f.name.split("/")[:-1]) or not f.package.endswith(".v1")
    ]

    assert wrong == []


def test_every_context_publishes_events(proto_files):
    packages_with_events = {f.package for f in proto_files if f.name.endswith("/events.proto")}

    assert packages_with_events == {
        f"retail.{ctx}.v1"
        for ctx in ("orders", "inventory", "shipments", "returns", "catalog", "ops", "integration")
    }


def test_every_event_has_event_meta_as_field_one(events):
    wrong = []
    for event in events:
        meta = event.fields_by_number.get(1)
        if (
            meta is None
            or meta.name != "meta"
            or meta.type != FieldDescriptor.TYPE_MESSAGE
            or meta.message_type.full_name != EVENT_META
        ):
            wrong.append(event.full_name)

    assert events
    assert wrong == []


def test_every_event_is_named_in_the_past_tense(events):
    wrong = [e.full_name for e in events if not _looks_past_tense(e.name)]

    assert wrong == []


def test_an_event_without_meta_fails_validation(events):
    accepted = []
    for event in events:
        violations = protovalidate.collect_violations(GetMessageClass(event)())
        if not any(
            v.proto.field.elements[0].field_name == "meta" and v.proto.rule_id == "required"
            for v in violations
        ):
            accepted.append(event.full_name)

    assert accepted == []


def test_messages_carrying_event_meta_live_in_events_proto(messages: list[Descriptor]):
    stray = [
        m.full_name
        for m in messages
        if not m.file.name.endswith("/events.proto")
        and any(f.message_type is not None and f.message_type.full_name == EVENT_META for f in m.fields)
    ]

    assert stray == []


def test_every_service_name_ends_in_service(proto_files):
    services = _services(proto_files)

    assert {s.full_name for s in services} >= {
        "retail.orders.v1.OrdersService",
        "retail.inventory.v1.InventoryService",
        "retail.shipments.v1.ShipmentsService",
        "retail.returns.v1.ReturnsService",
        "retail.catalog.v1.CatalogService",
        "retail.ops.v1.OpsService",
    }
    assert [s.full_name for s in services if not s.name.endswith("Service")] == []


def test_every_rpc_has_its_own_request_and_response(proto_files):
    wrong = []
    for service in _services(proto_files):
        for method in service.methods:
            want_in = f"{service.file.package}.{method.name}Request"
            want_out = f"{service.file.package}.{method.name}Response"
            if method.input_type.full_name != want_in or method.output_type.full_name != want_out:
                wrong.append(method.full_name)

    assert wrong == []


def test_every_mutating_request_requires_a_request_id(proto_files):
    wrong = []
    for service in _services(proto_files):
        for method in service.methods:
            if _is_read_only(method):
                continue
            field = method.input_type.fields_by_name.get("request_id")
            rules = field.GetOptions().Extensions[validate_pb2.field] if field else None
            if (
                field is None
                or field.number != 1
                or field.type != FieldDescriptor.TYPE_STRING
                or rules.string.min_len < 1
            ):
                wrong.append(method.full_name)

    assert wrong == []


def test_read_only_requests_carry_no_request_id(proto_files):
    wrong = [
        method.full_name
        for service in _services(proto_files)
        for method in service.methods
        if _is_read_only(method) and "request_id" in method.input_type.fields_by_name
    ]

    assert wrong == []


def test_queries_are_marked_read_only(proto_files):
    wrong = [
        method.full_name
        for service in _services(proto_files)
        for method in service.methods
        if method.name.startswith(("Get", "List", "Check", "Summarize")) and not _is_read_only(method)
    ]

    assert wrong == []


def test_enum_zero_values_are_unspecified(proto_files):
    enums = [e for f in proto_files for e in f.enum_types_by_name.values()]
    enums += [e for f in proto_files for m in f.message_types_by_name.values() for e in m.enum_types]

    wrong = [e.full_name for e in enums if not e.values_by_number[0].name.endswith("_UNSPECIFIED")]

    assert wrong == []
