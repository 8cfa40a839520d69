"""Writing X12 interchanges: fixed-width ISA, counts and control numbers computed, never trusted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from libs.x12.envelope import Delimiters, FunctionalGroup, Interchange, Segment, TransactionSet
from libs.x12.error import X12Error

# ISA01..ISA15 widths; ISA16 is the component separator itself.
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1)


def _fixed(value: str, width: int, name: str) -> str:
    if len(value) > width:
        raise X12Error(f"{name} {value!r} is longer than its {width} characters", tag="ISA")
    return value.ljust(width)


def _isa_control_number(value: str) -> str:
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise X12Error(f"ISA13 control number must be up to 9 digits, got {value!r}", tag="ISA")
    return value.zfill(9)


def _check_element(value: str, tag: str, position: int, delimiters: Delimiters, composite: bool) -> None:
    forbidden = {delimiters.element, delimiters.segment, "\r", "\n"}
    if delimiters.repetition:
        forbidden.add(delimiters.repetition)
    if not composite:
        forbidden.add(delimiters.component)
    for char in forbidden:
        if char in value:
            raise X12Error(f"{tag}{position:02d} {value!r} contains the delimiter {char!r}", tag=tag)


def render_segment(segment: Segment, delimiters: Delimiters) -> str:
    """One segment as text, without its terminator.

    Component separators are allowed inside elements (that is how composites are written);
    any other delimiter inside data raises :class:`X12Error`, since X12 has no escaping.
    """
    if not segment.tag.isalnum() or not 2 <= len(segment.tag) <= 3:
        raise X12Error(f"invalid segment tag {segment.tag!r}", tag=segment.tag)
    elements = list(segment.elements)
    while elements and elements[-1] == "":
        elements.pop()
    for position, value in enumerate(elements, start=1):
        _check_element(value, segment.tag, position, delimiters, composite=True)
    return delimiters.element.join([segment.tag, *elements])


def transaction_segments(transaction: TransactionSet) -> list[Segment]:
    """ST, the body, and an SE whose count and control number are computed."""
    st = [transaction.code, transaction.control_number]
    if transaction.implementation_reference:
        st.append(transaction.implementation_reference)
    count = len(transaction.segments) + 2
    return [Segment("ST", st), *transaction.segments, Segment("SE", [str(count), transaction.control_number])]


def group_segments(group: FunctionalGroup) -> list[Segment]:
    """GS, every transaction set, and a GE with the computed count."""
    out = [
        Segment(
            "GS",
            [
                group.functional_id,
                group.sender,
                group.receiver,
                group.date,
                group.time,
                group.control_number,
                group.agency,
                group.version,
            ],
        )
    ]
    for transaction in group.transactions:
        out.extend(transaction_segments(transaction))
    out.append(Segment("GE", [str(len(group.transactions)), group.control_number]))
    return out


def isa_text(interchange: Interchange) -> str:
    """The fixed-width ISA segment (106 characters with its terminator, as the standard requires)."""
    d = interchange.delimiters
    d.check()
    if d.repetition and interchange.version < "00402":
        raise X12Error(
            f"a repetition separator needs ISA12 00402 or later, not {interchange.version!r}", tag="ISA"
        )
    values = (
        interchange.authorization_qualifier,
        interchange.authorization,
        interchange.security_qualifier,
        interchange.security,
        interchange.sender_qualifier,
        interchange.sender_id,
        interchange.receiver_qualifier,
        interchange.receiver_id,
        interchange.date,
        interchange.time,
        d.repetition or interchange.standards_id,
        interchange.version,
        _isa_control_number(interchange.control_number),
        interchange.ack_requested,
        interchange.usage,
    )
    fields = []
    for number, (value, width) in enumerate(zip(values, _ISA_WIDTHS, strict=True), start=1):
        if number != 11:
            _check_element(value, "ISA", number, d, composite=False)
        fields.append(_fixed(value, width, f"ISA{number:02d}"))
    return d.element.join(["ISA", *fields, d.component]) + d.segment


def write(interchanges: Interchange | Sequence[Interchange], *, line_break: bool = True) -> bytes:
    """Serialise one or more interchanges to UTF-8 bytes.

    Args:
        interchanges: what to write; each uses its own ``delimiters``.
        line_break: put a newline after each segment terminator (readable, and accepted by every
            translator we know); ignored when the terminator already is a newline.

    Raises:
        X12Error: a value does not fit its ISA field or contains a delimiter.
    """
    if isinstance(interchanges, Interchange):
        interchanges = [interchanges]
    return "".join(_interchange_text(i, line_break) for i in interchanges).encode("utf-8")


def _interchange_text(interchange: Interchange, line_break: bool) -> str:
    d = interchange.delimiters
    end = d.segment + ("\n" if line_break and d.segment != "\n" else "")
    parts = [isa_text(interchange)]
    if end != d.segment:
        parts.append("\n")
    body: list[Segment] = list(interchange.acknowledgments)
    for group in interchange.groups:
        body.extend(group_segments(group))
    body.append(
        Segment("IEA", [str(len(interchange.groups)), _isa_control_number(interchange.control_number)])
    )
    parts.extend(render_segment(s, d) + end for s in body)
    return "".join(parts)


def segments_text(segments: Iterable[Segment], delimiters: Delimiters) -> str:
    """Segments as text, each followed by the terminator (for logs and tests)."""
    return "".join(render_segment(s, delimiters) + delimiters.segment for s in segments)
