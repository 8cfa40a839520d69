"""The event envelope: ids, EventMeta stamping, NATS headers, trace context, decoding and validation."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import protovalidate
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from opentelemetry import propagate

from libs.bus.streams import subject_for

# Header names (docs/architecture.md, "Events").
MSG_ID = "Nats-Msg-Id"
EVENT_ID = "Retail-Event-Id"
EVENT_TYPE = "Retail-Event-Type"
CORRELATION_ID = "Retail-Correlation-Id"
CAUSATION_ID = "Retail-Causation-Id"
CONTENT_TYPE = "Content-Type"
PROTOBUF = "application/protobuf"
#: Set on a dead-letter replay: only this durable consumer should handle the copy.
REPLAY_FOR = "Retail-Replay-For"

SOURCE_SYSTEM_MESH = "SOURCE_SYSTEM_MESH"


class PoisonMessage(Exception):
    """A message that can never be handled: unknown type, undecodable bytes, invalid fields."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidEvent(ValueError):
    """An event refused by protovalidate before it was written to the outbox."""


_id_lock = threading.Lock()
_last_ms = 0
_seq = 0


def new_event_id() -> str:
    """A time-ordered UUID (version 7 layout) as a 36-character string.

    Ids generated later sort later, also within one millisecond in this process (a 12-bit
    counter fills `rand_a`), so the outbox relay publishes rows in creation order.
    """
    global _last_ms, _seq
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _seq += 1
            if _seq > 0xFFF:  # counter exhausted within one millisecond: borrow the next one
                _last_ms += 1
                _seq = 0
            ms = _last_ms
        else:
            _seq = 0
        _last_ms = ms
        seq = _seq
    rand_b = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def has_meta(event: Message) -> bool:
    """Whether `event` has the `retail.common.v1.EventMeta meta` field every event should carry."""
    return "meta" in event.DESCRIPTOR.fields_by_name


def stamp_meta(
    event: Message,
    *,
    event_id: str,
    correlation_id: str,
    causation_id: str | None = None,
    key: str | None = None,
    producer: str | None = None,
    occurred_at: datetime | None = None,
) -> None:
    """Fill the unset fields of `event.meta` in place; fields the producer set are left alone.

    Written against whichever EventMeta fields the generated code has, so older and newer
    versions of `retail.common.v1` both work.
    """
    if not has_meta(event):
        return
    meta = event.meta
    fields = meta.DESCRIPTOR.fields_by_name
    if "event_id" in fields and not meta.event_id:
        meta.event_id = event_id
    if "occurred_at" in fields and not meta.HasField("occurred_at"):
        meta.occurred_at.FromDatetime(occurred_at or datetime.now(UTC))
    if "correlation_id" in fields and not meta.correlation_id:
        meta.correlation_id = correlation_id
    if "causation_id" in fields and not meta.causation_id and causation_id:
        meta.causation_id = causation_id
    if "key" in fields and not meta.key and key:
        meta.key = key
    if "producer" in fields and not meta.producer and producer:
        meta.producer = producer
    if "source_system" in fields and meta.source_system == 0:
        mesh = fields["source_system"].enum_type.values_by_name.get(SOURCE_SYSTEM_MESH)
        if mesh is not None:
            meta.source_system = mesh.number


def meta_value(event: Message, name: str) -> str:
    """A string field of `event.meta`, or "" when the event or its meta lacks it."""
    if not has_meta(event) or name not in event.meta.DESCRIPTOR.fields_by_name:
        return ""
    return getattr(event.meta, name)


def publish_headers(
    event_type: str, event_id: str, correlation_id: str, causation_id: str | None
) -> dict[str, str]:
    """The headers of a published event, with the current OpenTelemetry context injected (W3C)."""
    headers = {
        MSG_ID: event_id,
        EVENT_ID: event_id,
        EVENT_TYPE: event_type,
        CORRELATION_ID: correlation_id,
        CONTENT_TYPE: PROTOBUF,
    }
    if causation_id:
        headers[CAUSATION_ID] = causation_id
    propagate.inject(headers)  # traceparent / tracestate of the span that caused the event
    return headers


def event_id_of(headers: Mapping[str, str]) -> str | None:
    """The business event id a message carries; replays change `Nats-Msg-Id` but not this."""
    return headers.get(EVENT_ID) or headers.get(MSG_ID)


def validation_error(event: Message) -> str | None:
    """protovalidate's violations of `event` as one line, or None when it is valid."""
    violations = protovalidate.collect_violations(event)
    if not violations:
        return None
    return "; ".join(f"{_field_path(v)}: {v.proto.message}" for v in violations)


def _field_path(violation: Any) -> str:
    elements = violation.proto.field.elements
    return ".".join(e.field_name for e in elements) or "(message)"


_classes: dict[str, type[Message]] = {}


def message_class(event_type: str) -> type[Message]:
    """The generated class of a full proto name, from the default descriptor pool (cached).

    Raises:
        KeyError: the type is not registered (its `_pb2` module was never imported).
    """
    cls = _classes.get(event_type)
    if cls is None:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(event_type)
        cls = _classes[event_type] = message_factory.GetMessageClass(descriptor)
    return cls


def decode(headers: Mapping[str, str], payload: bytes, *, validate: bool = True) -> Message:
    """Decode a message by its `Retail-Event-Type` header and validate it.

    Raises:
        PoisonMessage: the type is missing or unknown, the bytes do not parse, or the event
            breaks its protovalidate rules (the reason lists the violations).
    """
    event_type = headers.get(EVENT_TYPE)
    if not event_type:
        raise PoisonMessage(f"missing {EVENT_TYPE} header")
    try:
        cls = message_class(event_type)
    except KeyError:
        raise PoisonMessage(f"unknown event type {event_type}") from None
    event = cls()
    try:
        event.ParseFromString(payload)
    except DecodeError as error:
        raise PoisonMessage(f"undecodable {event_type}: {error}") from None
    if validate:
        problem = validation_error(event)
        if problem:
            raise PoisonMessage(f"invalid {event_type}: {problem}")
    return event


__all__ = [
    "CAUSATION_ID",
    "CONTENT_TYPE",
    "CORRELATION_ID",
    "EVENT_ID",
    "EVENT_TYPE",
    "MSG_ID",
    "PROTOBUF",
    "REPLAY_FOR",
    "InvalidEvent",
    "PoisonMessage",
    "decode",
    "event_id_of",
    "has_meta",
    "message_class",
    "meta_value",
    "new_event_id",
    "publish_headers",
    "stamp_meta",
    "subject_for",
    "validation_error",
]
