"""Every message type of the mesh's protos, and instances with every field set: for tests that must
hold for any message (the hop log's snapshot, the orders service's dict mapping)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

#: Texts that exercise every masking rule of the redaction: plain text, emails and phones in text, a bearer
#: credential, a long text (not cached), one that is empty.
_TEXTS = (
    "TEE-RED-M",
    "write to jon@example.com today",
    "call +1 613-555-0135",
    "Authorization: Bearer abc.def",
    "x" * 80 + " jane@example.org",
    "",
)


def mesh_message_types() -> list[Any]:
    """Every message type of the mesh's protos (retail.*), nested ones included."""
    import retail

    found: list[Any] = []

    def walk(descriptor: Any) -> None:
        if not descriptor.GetOptions().map_entry:
            found.append(descriptor)
            for nested in descriptor.nested_types:
                walk(nested)

    for module in pkgutil.walk_packages(retail.__path__, "retail."):
        if module.name.endswith("_pb2"):
            for descriptor in importlib.import_module(module.name).DESCRIPTOR.message_types_by_name.values():
                walk(descriptor)
    return found


def filled(descriptor: Any, seed: int, depth: int = 0) -> Message:
    """A message of `descriptor` with every field set (one member per oneof, repeated twice)."""
    message = message_factory.GetMessageClass(descriptor)()
    chosen_oneofs: set[str] = set()
    for index, field in enumerate(descriptor.fields):
        if field.containing_oneof is not None:
            if field.containing_oneof.name in chosen_oneofs:
                continue
            chosen_oneofs.add(field.containing_oneof.name)
        for repeat in range(2 if field.is_repeated else 1):
            value = _value(field, seed + index + repeat, depth)
            if value is None:
                break
            if field.is_repeated:
                target = getattr(message, field.name)
                if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                    target.add().CopyFrom(value)
                else:
                    target.append(value)
            elif field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                getattr(message, field.name).CopyFrom(value)
            else:
                setattr(message, field.name, value)
    return message


def _value(field: Any, seed: int, depth: int) -> Any:
    kind = field.cpp_type
    if kind == FieldDescriptor.CPPTYPE_MESSAGE:
        name = field.message_type.full_name
        if name == "google.protobuf.Timestamp":
            return Timestamp(seconds=1_796_013_537 + seed, nanos=(0, 5_000_000, 5_000, 5)[seed % 4])
        if name == "google.protobuf.Duration":
            return Duration(seconds=seed, nanos=250_000_000)
        if depth > 3:
            return None
        return filled(field.message_type, seed, depth + 1)
    if kind == FieldDescriptor.CPPTYPE_ENUM:
        numbers = sorted(field.enum_type.values_by_number)
        return numbers[seed % len(numbers)] if seed % 5 else 999  # 999: a value the enum lacks
    if kind == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            return b"+16135550135 \x00\xff"
        return _TEXTS[seed % len(_TEXTS)] or "plain"
    if kind == FieldDescriptor.CPPTYPE_BOOL:
        return bool(seed % 2)
    if kind in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
        return (1.1, float("nan"), float("inf"), -0.5)[seed % 4]
    if kind in (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_INT32):
        return -seed * 1_000_003
    return seed * 1_000_003  # unsigned
