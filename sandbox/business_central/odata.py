"""The slice of OData v4 the stand-in understands: $filter, $select, $top/$skip, ETags, keys."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any


class ODataError(ValueError):
    """A query option the stand-in cannot parse (answered 400 BadRequest)."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<lparen>\()
      | (?P<rparen>\))
      | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
      | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
      | (?P<date>\d{4}-\d{2}-\d{2})
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}

Predicate = Callable[[dict[str, Any]], bool]


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ODataError(f"Syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, str) and len(value) >= 16 and value[10:11] == "T":
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _compare(left: Any, op: str, right: Any) -> bool:
    left_dt, right_dt = _as_datetime(left), _as_datetime(right)
    if left_dt is not None and right_dt is not None:
        left, right = left_dt, right_dt
    if isinstance(left, str) and isinstance(right, str) and op in ("eq", "ne"):
        # GUIDs and codes compare case-insensitively in BC.
        left, right = left.lower(), right.lower()
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if left is None or right is None:
        return False
    try:
        return {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[op]
    except TypeError:
        return False


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ODataError("Unexpected end of $filter expression.")
        self.pos += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise ODataError(f"Unexpected '{self.peek()[1]}' in $filter expression.")
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek() == ("word", "or"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda rec: any(p(rec) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.term()]
        while self.peek() == ("word", "and"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else (lambda rec: all(p(rec) for p in parts))

    def term(self) -> Predicate:
        kind, value = self.take()
        if kind == "lparen":
            inner = self.disjunction()
            if self.take()[0] != "rparen":
                raise ODataError("Missing ')' in $filter expression.")
            return inner
        if kind == "word" and value == "not":
            inner = self.term()
            return lambda rec: not inner(rec)
        if kind != "word":
            raise ODataError(f"Expected a property name, found '{value}'.")
        field = value
        op_kind, op = self.take()
        if op_kind != "word" or op not in _COMPARISONS:
            raise ODataError(f"Unsupported operator '{op}' in $filter (supported: {sorted(_COMPARISONS)}).")
        literal = self.literal()
        return lambda rec: field in rec and _compare(rec[field], op, literal)

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "string":
            return value[1:-1].replace("''", "'")
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind in ("guid", "date", "datetime"):
            return value
        if kind == "word" and value in ("true", "false"):
            return value == "true"
        if kind == "word" and value == "null":
            return None
        raise ODataError(f"Expected a literal, found '{value}'.")


def parse_filter(text: str) -> Predicate:
    """Compile an OData ``$filter`` (eq ne gt ge lt le, and, or, not, parentheses) to a predicate.

    Raises:
        ODataError: on anything outside that subset.
    """
    return _Parser(text).parse()


def parse_select(text: str | None) -> list[str] | None:
    """The property names of ``$select``, or None for all."""
    if not text:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_count(name: str, text: str | None) -> int | None:
    """A non-negative integer query option ($top, $skip) or None."""
    if text is None:
        return None
    if not text.isdigit():
        raise ODataError(f"The value '{text}' of {name} is not a valid non-negative integer.")
    return int(text)


def etag(entity_id: str, version: int) -> str:
    """A weak ETag in BC's style (W/"<base64>"), changing with every write of the record."""
    token = base64.b64encode(f"44;{entity_id};{version};".encode()).decode()
    return f'W/"{token}"'


_SEGMENT = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_.]*)(?:\((?P<key>[^)]*)\))?$")


def parse_segments(path: str) -> list[tuple[str, str | None]]:
    """Split ``companies(x)/salesOrders(y)/salesOrderLines`` into ``[(name, key|None), ...]``.

    Raises:
        ODataError: when a segment is not ``name`` or ``name(key)``.
    """
    segments = []
    for raw in [s for s in path.split("/") if s]:
        match = _SEGMENT.match(raw)
        if not match:
            raise ODataError(f"The request URL segment '{raw}' is not valid.")
        key = match.group("key")
        if key is not None:
            key = key.strip()
            if key.startswith("'") and key.endswith("'"):
                key = key[1:-1]
            if "=" in key:  # id=<guid>
                key = key.split("=", 1)[1].strip("'")
        segments.append((match.group("name"), key))
    return segments
