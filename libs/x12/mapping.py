"""Pieces every typed mapping shares: segment syntax checks, parties, references, numbers.

The syntax table is deliberately small: the element counts and code lengths of the segments the
warehouse sets (940, 943/944, 945, 846, 947, 997) use, enough to catch a missing segment terminator
(two segments run together) or a shifted element, not a full X12 dictionary.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from libs.x12.envelope import Segment, TransactionSet
from libs.x12.error import X12Error

# tag -> (most elements, {element position: (min length, max length)} for coded elements).
# A position of the form (n, 1) means "component 1 of composite element n".
SYNTAX: dict[str, tuple[int, dict[int | tuple[int, int], tuple[int, int]]]] = {
    "AK1": (3, {1: (2, 2)}),
    "AK2": (3, {1: (3, 3)}),
    "AK3": (4, {}),
    "AK4": (4, {}),
    "AK5": (6, {1: (1, 1)}),
    "AK9": (9, {1: (1, 1)}),
    "BIA": (6, {1: (2, 2), 2: (2, 2)}),
    "CTT": (7, {}),
    "CTP": (11, {}),
    "DTM": (6, {1: (3, 3)}),
    "G62": (5, {1: (2, 2)}),
    "LIN": (31, {}),
    "LX": (1, {}),
    "MAN": (6, {1: (1, 2)}),
    "N1": (6, {1: (2, 3)}),
    "N3": (2, {}),
    "N4": (7, {}),
    "N9": (7, {1: (2, 3)}),
    "NTE": (2, {}),
    "QTY": (4, {1: (2, 2), (3, 1): (2, 2)}),
    "REF": (4, {1: (2, 3)}),
    "UIT": (3, {(1, 1): (2, 2)}),
    "W01": (17, {2: (2, 2)}),
    "W03": (5, {}),
    "W05": (7, {1: (1, 1)}),
    "W06": (7, {1: (1, 1)}),
    "W07": (11, {2: (2, 2)}),
    "W12": (22, {1: (2, 2), 5: (2, 2)}),
    "W13": (9, {2: (2, 2), 3: (2, 2)}),
    "W15": (6, {4: (2, 2), 5: (2, 2)}),
    "W17": (10, {1: (1, 1)}),
    "W19": (18, {1: (2, 2), 3: (2, 2)}),
    "W27": (9, {}),
    "W76": (6, {}),
}


def check_syntax(transaction: TransactionSet) -> None:
    """Check every segment of ``transaction`` the table knows.

    Raises:
        X12Error: naming the first segment with too many elements or a code of the wrong length.
    """
    component = transaction.delimiters.component
    for position, segment in enumerate(transaction.segments, start=2):
        rule = SYNTAX.get(segment.tag)
        if rule is None:
            continue
        most, codes = rule
        where = f"(position {position} of transaction set {transaction.control_number})"
        if len(segment.elements) > most:
            raise X12Error(
                f"{len(segment.elements)} elements, {segment.tag} takes at most {most} {where}; "
                "a segment terminator may be missing",
                tag=segment.tag,
                index=segment.index,
            )
        for key, (low, high) in codes.items():
            if isinstance(key, tuple):
                value = segment.components(key[0], component)[key[1] - 1] if segment.get(key[0]) else ""
                name = f"{segment.tag}{key[0]:02d}-{key[1]}"
            else:
                value = segment.get(key)
                name = f"{segment.tag}{key:02d}"
            if value and not low <= len(value) <= high:
                raise X12Error(
                    f"{name} {value!r} must be a code of {low}-{high} characters {where}",
                    tag=segment.tag,
                    index=segment.index,
                )


def expect_set(transaction: TransactionSet, code: str) -> None:
    """Raise unless ``transaction`` is an ``code`` set, then check its syntax."""
    if transaction.code != code:
        raise X12Error(
            f"expected a {code} transaction set, got {transaction.code}", tag="ST", index=transaction.index
        )
    check_syntax(transaction)


def number(segment: Segment, position: int, *, required: bool = False) -> Decimal | None:
    """Element ``position`` as a decimal number (X12 types N and R)."""
    raw = segment.get(position).strip()
    if not raw:
        if required:
            raise X12Error(f"{segment.tag}{position:02d} is required", tag=segment.tag, index=segment.index)
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise X12Error(
            f"{segment.tag}{position:02d} {raw!r} is not a number", tag=segment.tag, index=segment.index
        )
    return value


def required_number(segment: Segment, position: int) -> Decimal:
    """Element ``position`` as a number; an error when it is missing."""
    value = number(segment, position, required=True)
    assert value is not None
    return value


def text_number(value: Decimal | int | None) -> str:
    """A number as X12 writes it: no exponent, no trailing zeros, ``""`` for None."""
    if value is None:
        return ""
    value = Decimal(value)
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def product_ids(segment: Segment, first: int, last: int) -> dict[str, str]:
    """Qualifier/id pairs from element ``first`` to ``last`` (``UP``/``SK``/``VN``... → id)."""
    found: dict[str, str] = {}
    for position in range(first, last, 2):
        qualifier, value = segment.get(position), segment.get(position + 1)
        if qualifier and value:
            found.setdefault(qualifier, value)
    return found


def product_elements(ids: dict[str, str]) -> list[str]:
    """Qualifier/id pairs flattened back into elements."""
    out: list[str] = []
    for qualifier, value in ids.items():
        out.extend([qualifier, value])
    return out


SKU_QUALIFIERS = ("SK", "VN", "VC", "BP", "IN", "PN")


def sku_of(ids: dict[str, str]) -> str:
    """The item's SKU: the first of the stock-keeping / vendor / buyer part numbers present."""
    for qualifier in SKU_QUALIFIERS:
        if ids.get(qualifier):
            return ids[qualifier]
    return ""


@dataclass
class Party:
    """An N1 loop: who (ship-to ``ST``, warehouse ``WH``, depositor ``DE``...) and where."""

    code: str
    name: str = ""
    id_qualifier: str = ""
    id: str = ""
    address: list[str] = field(default_factory=list)
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""

    def segments(self) -> list[Segment]:
        """N1 (then N3 and N4 when there is an address)."""
        out = [Segment("N1", [self.code, self.name, self.id_qualifier, self.id])]
        for start in range(0, len(self.address), 2):
            out.append(Segment("N3", self.address[start : start + 2]))
        if self.city or self.state or self.postal_code or self.country:
            out.append(Segment("N4", [self.city, self.state, self.postal_code, self.country]))
        return out


@dataclass
class Reference:
    """An N9 (or REF) reference: a qualifier (``BM`` bill of lading, ``2I`` tracking...) and a value."""

    qualifier: str
    value: str
    description: str = ""

    def segment(self) -> Segment:
        """As an N9 segment."""
        return Segment("N9", [self.qualifier, self.value, self.description])


@dataclass
class DateReference:
    """A G62 date: qualifier (``10`` requested ship, ``02`` delivery requested, ``11`` shipped...)."""

    qualifier: str
    date: str
    time: str = ""

    def segment(self) -> Segment:
        """As a G62 segment."""
        out = [self.qualifier, self.date]
        if self.time:
            out.extend(["", self.time])  # G62-03 is the time qualifier; G62-04 the time
        return Segment("G62", out)


class Walker:
    """Reads a transaction set's segments front to back, one loop at a time."""

    def __init__(self, segments: Iterable[Segment]) -> None:
        self.segments = list(segments)
        self.at = 0

    def peek(self) -> Segment | None:
        """The next segment, not consumed."""
        return self.segments[self.at] if self.at < len(self.segments) else None

    def take(self) -> Segment:
        """Consume the next segment."""
        segment = self.segments[self.at]
        self.at += 1
        return segment

    def take_if(self, *tags: str) -> Segment | None:
        """Consume the next segment if its tag is one of ``tags``."""
        nxt = self.peek()
        if nxt is not None and nxt.tag in tags:
            return self.take()
        return None

    def party(self, n1: Segment) -> Party:
        """An N1 loop whose N1 was just taken: its N2/N3/N4 follow."""
        party = Party(code=n1.get(1), name=n1.get(2), id_qualifier=n1.get(3), id=n1.get(4))
        while (seg := self.take_if("N2", "N3", "N4")) is not None:
            if seg.tag == "N3":
                party.address.extend(v for v in (seg.get(1), seg.get(2)) if v)
            elif seg.tag == "N4":
                party.city, party.state, party.postal_code, party.country = (seg.get(i) for i in range(1, 5))
            elif seg.tag == "N2" and not party.name:
                party.name = seg.get(1)
        return party


def reference(segment: Segment) -> Reference:
    """An N9 or REF segment as a :class:`Reference`."""
    return Reference(qualifier=segment.get(1), value=segment.get(2), description=segment.get(3))


def date_reference(segment: Segment) -> DateReference:
    """A G62 segment as a :class:`DateReference`."""
    return DateReference(qualifier=segment.get(1), date=segment.get(2), time=segment.get(4))
