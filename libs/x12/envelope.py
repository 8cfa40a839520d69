"""The X12 data model: delimiters, segments and the ISA/GS/ST envelopes around them."""

from __future__ import annotations

from dataclasses import dataclass, field

from libs.x12.error import X12Error


@dataclass(frozen=True)
class Delimiters:
    """The four separators an interchange declares in its ISA segment.

    ``repetition`` is only declared from version 00402 on (ISA11 was the standards identifier
    before); leave it ``None`` for 00401 interchanges.
    """

    element: str = "*"
    component: str = ">"
    segment: str = "~"
    repetition: str | None = None

    def check(self) -> None:
        """Raise :class:`X12Error` unless the separators are single, distinct, non-alphanumeric chars."""
        chars = [self.element, self.component, self.segment] + ([self.repetition] if self.repetition else [])
        for char in chars:
            if len(char) != 1 or char.isalnum() or char == " ":
                raise X12Error(f"delimiter {char!r} must be one character, not a letter, digit or space")
        if len(set(chars)) != len(chars):
            raise X12Error(f"delimiters must be distinct: {chars!r}")


@dataclass
class Segment:
    """One segment: its tag and its data elements (``elements[0]`` is element 01).

    Elements are kept as the text between separators; composites and repetitions are split on
    demand (:meth:`components`, :meth:`repeats`) so that a separator a sender reuses inside data
    never corrupts the elements around it. Trailing empty elements are not kept.
    """

    tag: str
    elements: list[str] = field(default_factory=list)
    index: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        while self.elements and self.elements[-1] == "":
            self.elements.pop()

    def get(self, position: int) -> str:
        """Element ``position`` (1-based, as in ``W05-02``), ``""`` when absent."""
        if 1 <= position <= len(self.elements):
            return self.elements[position - 1]
        return ""

    def components(self, position: int, separator: str) -> list[str]:
        """The components of a composite element."""
        return self.get(position).split(separator)

    def repeats(self, position: int, separator: str | None) -> list[str]:
        """The repetitions of a repeating element (one item when the interchange has none)."""
        value = self.get(position)
        return value.split(separator) if separator else [value]


@dataclass
class TransactionSet:
    """One ST..SE transaction set; ``segments`` are those between ST and SE."""

    code: str
    control_number: str
    segments: list[Segment] = field(default_factory=list)
    implementation_reference: str = ""
    errors: list[X12Error] = field(default_factory=list, compare=False, repr=False)
    delimiters: Delimiters = field(default_factory=Delimiters, compare=False, repr=False)
    index: int = field(default=0, compare=False, repr=False)


@dataclass
class FunctionalGroup:
    """One GS..GE functional group of transaction sets of one kind (``OW`` 940, ``SW`` 945...)."""

    functional_id: str
    sender: str
    receiver: str
    date: str
    time: str
    control_number: str
    version: str = "004010"
    agency: str = "X"
    transactions: list[TransactionSet] = field(default_factory=list)
    errors: list[X12Error] = field(default_factory=list, compare=False, repr=False)
    declared_count: int | None = field(default=None, compare=False, repr=False)


@dataclass
class Interchange:
    """One ISA..IEA interchange. Identifiers are kept without ISA's space padding."""

    sender_id: str
    receiver_id: str
    date: str
    time: str
    control_number: str
    sender_qualifier: str = "ZZ"
    receiver_qualifier: str = "ZZ"
    version: str = "00401"
    usage: str = "P"
    ack_requested: str = "0"
    authorization_qualifier: str = "00"
    authorization: str = ""
    security_qualifier: str = "00"
    security: str = ""
    standards_id: str = "U"
    delimiters: Delimiters = field(default_factory=Delimiters)
    groups: list[FunctionalGroup] = field(default_factory=list)
    acknowledgments: list[Segment] = field(default_factory=list)
    errors: list[X12Error] = field(default_factory=list, compare=False, repr=False)

    def all_errors(self) -> list[X12Error]:
        """Envelope errors found while reading leniently, at every level, in file order."""
        found = list(self.errors)
        for group in self.groups:
            found.extend(group.errors)
            for transaction in group.transactions:
                found.extend(transaction.errors)
        return sorted(found, key=lambda e: e.index or 0)
