"""Masking personal data and secrets before anything is logged or snapshotted (S3, S4)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

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
        "latitude",
        "longitude",
    }
)
# Suffixes that mark personal data inside compound keys (`customer_email`, `billing_phone`).
_PII_SUFFIXES = ("_email", "_phone", "_first_name", "_last_name", "_address1", "_address2", "_street", "_zip")

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


def _token(kind: str, value: str) -> str:
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


def _mask_pii_value(key: str, value: Any) -> Any:
    if isinstance(value, Mapping | list | tuple):
        return redact(value)
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
    secrets, passwords, HMACs, authorization), whatever the key's case or style. Every other
    string is scanned for emails, phone numbers and bearer credentials. Masking is deterministic:
    the same email always yields the same `<email:...>` token (see `set_redaction_key`).

    Args:
        obj: Dicts, lists, tuples, strings and scalars, nested freely; other objects pass through.

    Returns:
        The redacted copy; the input is not modified.
    """
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for raw_key, value in obj.items():
            kind, key = _classify(str(raw_key))
            if kind == _PLAIN:
                out[raw_key] = redact(value)
            elif kind == _SECRET:
                out[raw_key] = value if value is None else SECRET_MASK
            else:
                out[raw_key] = _mask_pii_value(key, value)
        return out
    if isinstance(obj, list | tuple):
        return type(obj)(redact(item) for item in obj)
    return obj
