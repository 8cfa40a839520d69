"""Masking personal data and secrets before anything is logged or snapshotted (S3, S4)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

SECRET_MASK = "[REDACTED]"

# Keys whose values are secrets: masked whole, never hashed, since a hash of a short secret can be
# guessed offline. Matched as substrings of the normalized key.
_SECRET_PARTS = (
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "hmac",
    "api_key",
    "apikey",
    "cookie",
    "signature",
    "private_key",
    "credential",
)
# Keys whose values are personal data: replaced by a keyed hash so equal values stay comparable.
_PII_EXACT = frozenset(
    {
        "name",
        "full_name",
        "customer_name",
        "contact_name",
        "ship_to_name",
        "bill_to_name",
        "first_name",
        "last_name",
        "email",
        "phone",
        "phone_number",
        "mobile",
        "address1",
        "address2",
        "address_line1",
        "address_line2",
        "street",
        "street1",
        "street2",
        "zip",
        "zip_code",
        "postal_code",
        "postcode",
        "post_code",
        "contact",
        "address_lines",
        "latitude",
        "longitude",
    }
)
# Suffixes that mark personal data inside compound keys (`customer_email`, `billing_phone`).
_PII_SUFFIXES = (
    "_email",
    "_phone",
    "_first_name",
    "_last_name",
    "_address1",
    "_address2",
    "_street",
    "_zip",
    # Business Central's party fields: shipToAddressLine1, sellToPostCode, shipToContact.
    "_address_line1",
    "_address_line2",
    "_address_line3",
    "_post_code",
    "_postal_code",
    "_zip_code",
    "_contact",
)
# Inside an address (a value under a key ending in `address`), these keys are its street lines:
# the mesh's `Address.lines`.
_ADDRESS_LINES = frozenset({"lines"})

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# International numbers with a leading +, and North American ones with separators. Bare digit runs
# are left alone on purpose: order, line and location ids are long digit runs too.
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d[\d\s().\-]{6,18}\d(?!\d)")
_PHONE_NANP = re.compile(r"(?<![\d\w])(?:\(\d{3}\)\s?|\d{3}[\s.\-])\d{3}[\s.\-]\d{4}(?!\d)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")

_DEFAULT_KEY = b"retail-mesh-redaction"
_key: bytes = _DEFAULT_KEY


def set_redaction_key(key: str | bytes | None) -> None:
    """Set the key of the hash used for masked values (REDACTION_KEY); None restores the default.

    With a private key, a masked email cannot be reversed by hashing a list of known addresses; with
    the same key in every service, the same customer still maps to the same token across services.
    """
    global _key
    if key is None:
        _key = _DEFAULT_KEY
    else:
        _key = key.encode() if isinstance(key, str) else key
    _redact_short.cache_clear()  # its tokens were made with the old key
    _token.cache_clear()


@functools.lru_cache(maxsize=4096)
def _token(kind: str, value: str) -> str:
    # Remembered: one order's name, phone and postal code are masked again at every hop it takes.
    digest = hmac.new(_key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:12]
    return f"<{kind}:{digest}>"


def mask_email(value: str) -> str:
    """Return the stable token for an email address (case-insensitive)."""
    return _token("email", value.strip().lower())


def mask_phone(value: str) -> str:
    """Return the stable token for a phone number (formatting ignored, digits compared)."""
    return _token("phone", re.sub(r"\D", "", value))


def redact_text(text: str) -> str:
    """Mask emails, phone numbers and bearer credentials found inside free text.

    Args:
        text: A log message, an exception message, a payload snippet.

    Returns:
        The text with each email and phone replaced by its stable token.
    """
    if len(text) <= _SHORT:
        return _redact_short(text)
    return _redact(text)


# Payload snapshots repeat the same short strings (enum names, SKUs, ids, currencies) on every hop;
# remembering their outcome spares four regex scans each. Long texts (log lines) are not kept.
_SHORT = 64


@functools.lru_cache(maxsize=8192)
def _redact_short(text: str) -> str:
    return _redact(text)


def _redact(text: str) -> str:
    text = _BEARER.sub(lambda m: f"{m.group(1)} {SECRET_MASK}", text)
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    text = _PHONE_INTL.sub(lambda m: mask_phone(m.group(0)), text)
    return _PHONE_NANP.sub(lambda m: mask_phone(m.group(0)), text)


def normalize_key(key: str) -> str:
    """Return `key` in snake case (`firstName`, `First-Name` and `first_name` compare equal)."""
    return _CAMEL.sub(r"\1_\2", key).replace("-", "_").lower()


_PLAIN, _SECRET, _PII = 0, 1, 2


@functools.lru_cache(maxsize=4096)
def _classify(raw_key: str) -> tuple[int, str]:
    """What a dict key's value is (plain, secret, personal data) and the key normalized.

    Payloads use a small set of keys, so each is classified once.
    """
    key = normalize_key(raw_key)
    if any(part in key for part in _SECRET_PARTS):
        return _SECRET, key
    if key in _PII_EXACT or key.endswith(_PII_SUFFIXES):
        return _PII, key
    return _PLAIN, key


def _names_an_address(key: str) -> bool:
    """Whether a (normalized) key's value is an address, whose `lines` are its street lines."""
    return key.endswith("address")


def _mask_pii_value(key: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, list | tuple):
        return type(value)(_mask_pii_value(key, item) for item in value)  # each item is personal too
    if value is None or value == "":
        return value  # absence is not personal data, and is useful when debugging
    text = str(value)
    if "email" in key:
        return mask_email(text)
    if "phone" in key or key == "mobile":
        return mask_phone(text)
    return _token("pii", text)


def redact(obj: Any) -> Any:
    """Return a copy of `obj` with personal data and secrets masked, recursively.

    Dict values are masked by key (emails, phones, names, street addresses, postal codes; tokens,
    secrets, passwords, HMACs, authorization), whatever the key's case or style; inside an address
    (a dict under a key ending in `address`) its `lines` are street lines and masked too. Every other
    string is scanned for emails, phone numbers and bearer credentials. Masking is deterministic:
    the same email always yields the same `<email:...>` token (see `set_redaction_key`).

    Args:
        obj: Dicts, lists, tuples, strings and scalars, nested freely; other objects pass through.

    Returns:
        The redacted copy; the input is not modified.
    """
    return _redact_value(obj, address=False)


def _redact_value(obj: Any, *, address: bool) -> Any:
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for raw_key, value in obj.items():
            kind, key = _classify(str(raw_key))
            if address and key in _ADDRESS_LINES:
                kind = _PII
            if kind == _PLAIN:
                out[raw_key] = _redact_value(value, address=_names_an_address(key))
            elif kind == _SECRET:
                out[raw_key] = value if value is None else SECRET_MASK
            else:
                out[raw_key] = _mask_pii_value(key, value)
        return out
    if isinstance(obj, list | tuple):
        return type(obj)(_redact_value(item, address=address) for item in obj)
    return obj


def redact_message(message: Message, *, _address: bool = False) -> dict[str, Any]:
    """`redact(MessageToDict(message, preserving_proto_field_name=True))`, in one pass.

    The hop log snapshots every message a service handles (V2), and the two steps took about 40 µs
    a message, 4-5 % of the services' CPU under the flash-sale benchmark: `json_format` builds a
    dict through a generic walk, and `redact` then walks and copies it again. This walks the set
    fields once, with what each field needs (its conversion and its masking) worked out on first
    sight and kept per field descriptor. Maps, extensions and the well-known types other than
    Timestamp are rare in the mesh's messages and take the two steps. The result equals the two
    steps' (tests/unit/telemetry/test_redaction.py compares them on every message type the mesh
    defines, every field set).
    """
    if message.DESCRIPTOR.full_name.startswith(_WELL_KNOWN):
        return _two_steps(message)
    plans = _ADDRESS_PLANS if _address else _FIELD_PLANS
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        plan = plans.get(field)
        if plan is None:
            plan = plans[field] = _field_plan(field, address=_address)
        if plan is _TWO_STEPS:
            return _two_steps(message)
        out[field.name] = plan(value)
    return out


_WELL_KNOWN = "google.protobuf."
_INT64 = (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64)
_INT32 = (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_UINT32)


def _two_steps(message: Message) -> dict[str, Any]:
    return redact(MessageToDict(message, preserving_proto_field_name=True))


#: The plan of a field that needs its whole message's two steps (a map, an extension).
_TWO_STEPS: Any = object()
_FIELD_PLANS: dict[FieldDescriptor, Any] = {}
_ADDRESS_PLANS: dict[FieldDescriptor, Any] = {}  # the fields of a message inside an address


def _field_plan(field: FieldDescriptor, *, address: bool) -> Any:
    """How one field's value becomes its redacted JSON value, as the two steps would make it."""
    kind, key = _classify(field.name)
    if address and key in _ADDRESS_LINES:
        kind = _PII
    message_type = field.message_type
    if field.is_extension or (message_type is not None and message_type.GetOptions().map_entry):
        return _TWO_STEPS
    if kind == _SECRET and (field.is_repeated or field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE):
        return _secret
    if message_type is not None:
        if message_type.full_name == "google.protobuf.Timestamp":
            if kind == _PII:
                return _per_item(field, lambda value: _mask_pii_value(key, _timestamp(value)))
            # RFC 3339 text (digits, '-', ':', '.', 'T', 'Z') holds no email, phone or credential.
            return _per_item(field, _timestamp)
        if message_type.full_name.startswith(_WELL_KNOWN):
            return _TWO_STEPS
        # Under a personal-data key a message is still masked key by key inside, as `redact` does.
        inner = kind == _PLAIN and _names_an_address(key)
        return _per_item(field, lambda value: redact_message(value, _address=inner))
    convert = _scalar(field)
    if kind == _SECRET:
        return lambda value: None if convert(value) is None else SECRET_MASK
    if kind == _PII:
        raw = _raw(field)
        return _per_item(field, lambda value: _mask_pii_value(key, raw(value)))
    return _per_item(field, convert)


def _per_item(field: FieldDescriptor, plan: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`plan` for a field's value, or for each of its items when it is repeated."""
    if field.is_repeated:
        return lambda values: [plan(value) for value in values]
    return plan


def _scalar(field: FieldDescriptor) -> Callable[[Any], Any]:
    """`json_format`'s conversion of one scalar or enum value of `field`, then `redact`'s scan.

    Strings are scanned as `redact_text` does; int64 text (digits) and enum names (identifiers)
    never hold an email, a phone number or a credential, so they are not.
    """
    if field.cpp_type == FieldDescriptor.CPPTYPE_STRING and field.type != FieldDescriptor.TYPE_BYTES:
        return redact_text
    if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return bool
    if field.cpp_type in _INT64:
        return str
    if field.cpp_type in _INT32:
        return _same
    # Enums, bytes and floats: json_format's own rules, the enum names worked out once.
    printer = json_format._Printer(preserving_proto_field_name=True)
    to_json = printer._FieldToJsonObject
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        names = {number: to_json(field, number) for number in field.enum_type.values_by_number}
        return lambda number: names[number] if number in names else to_json(field, number)
    return lambda value: _text(to_json(field, value))


def _raw(field: FieldDescriptor) -> Callable[[Any], Any]:
    """`json_format`'s conversion alone (what a personal-data key's value is masked from)."""
    if field.cpp_type == FieldDescriptor.CPPTYPE_STRING and field.type != FieldDescriptor.TYPE_BYTES:
        return str
    to_json = json_format._Printer(preserving_proto_field_name=True)._FieldToJsonObject
    return lambda value: to_json(field, value)


def _same(value: Any) -> Any:
    return value


def _timestamp(value: Any) -> str:
    """`Timestamp.ToJsonString()`, its date and time of day worked out once per second."""
    nanos = value.nanos
    if not 0 <= nanos < 1_000_000_000:
        return value.ToJsonString()  # its error
    if nanos == 0:
        return _whole_second(value.seconds) + "Z"
    if nanos % 1_000_000 == 0:
        return f"{_whole_second(value.seconds)}.{nanos // 1_000_000:03d}Z"
    if nanos % 1_000 == 0:
        return f"{_whole_second(value.seconds)}.{nanos // 1_000:06d}Z"
    return f"{_whole_second(value.seconds)}.{nanos:09d}Z"


@functools.lru_cache(maxsize=1024)
def _whole_second(seconds: int) -> str:
    return Timestamp(seconds=seconds).ToJsonString()[:-1]  # 'Z' only, no fraction; range checked


def _secret(value: Any) -> str:
    return SECRET_MASK


def _text(value: Any) -> Any:
    """A converted float or bytes value as `redact` leaves it: text ('NaN', base64) scanned."""
    return redact_text(value) if isinstance(value, str) else value
