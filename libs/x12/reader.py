"""Reading X12 interchanges as trading partners really send them.

The separators come from the ISA segment of each interchange (element separator after ``ISA``,
ISA11 repetition separator from 00402 on, ISA16 component separator, the segment terminator
right after ISA16). Byte-order marks, CR/LF, pretty-printing indentation, newline used as the
segment terminator, multi-byte terminators (``…`` in UTF-8), several interchanges per file and
several groups per interchange are all accepted.

Envelope counts and control numbers are checked (SE01/SE02, GE01/GE02, IEA01/IEA02). ``strict``
reading raises the first mismatch; lenient reading keeps the errors on the envelope they concern
(so a 997 can reject exactly that transaction set or group) and goes on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from libs.x12.envelope import Delimiters, FunctionalGroup, Interchange, Segment, TransactionSet
from libs.x12.error import X12Error

_TAG = re.compile(r"[A-Z][A-Z0-9]{1,2}\Z")
_NEWLINES = "\r\n"
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
# Counts the GS segment takes in every version we read: GS01..GS08.
_GS_ELEMENTS = 8

# 997 codes (AK5 transaction set, AK9 group) for the envelope errors the reader finds.
AK5_CONTROL_NUMBER_MISMATCH = "3"
AK5_SEGMENT_COUNT_MISMATCH = "4"
AK9_CONTROL_NUMBER_MISMATCH = "4"
AK9_TRANSACTION_COUNT_MISMATCH = "5"


def decode(data: bytes | str) -> str:
    """Bytes to text: byte-order mark removed, UTF-8 when valid, else Latin-1 (which never fails)."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError:
                return data[len(bom) :].decode("latin-1")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read(data: bytes | str, *, strict: bool = True) -> list[Interchange]:
    """Parse every interchange in ``data``.

    Args:
        data: the file's bytes (or text).
        strict: raise on envelope count and control-number mismatches; when false they are kept
            in the ``errors`` of the interchange, group or transaction set concerned.

    Raises:
        X12Error: the data is not X12, or is malformed; the error names the segment (tag and
            ordinal in the file) where reading stopped.
    """
    return list(_Reader(decode(data), strict).interchanges())


def read_one(data: bytes | str, *, strict: bool = True) -> Interchange:
    """Parse a file that holds exactly one interchange."""
    interchanges = read(data, strict=strict)
    if len(interchanges) != 1:
        raise X12Error(f"expected one interchange, found {len(interchanges)}")
    return interchanges[0]


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _same_control_number(a: str, b: str) -> bool:
    a, b = a.strip(), b.strip()
    if _digits(a) and _digits(b):
        return a.lstrip("0") == b.lstrip("0")
    return a == b


def _count(segment: Segment, position: int) -> int:
    value = segment.get(position).strip()
    if not _digits(value) or len(value) > 10:
        raise X12Error(
            f"{segment.tag}{position:02d} must be a count, found {value[:20]!r}",
            tag=segment.tag,
            index=segment.index,
        )
    return int(value)


class _Reader:
    def __init__(self, text: str, strict: bool) -> None:
        self.text = text
        self.strict = strict
        self.pos = 0
        self.index = 0
        self.last_tag = "ISA"

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def interchanges(self) -> Iterator[Interchange]:
        self._skip_space()
        if self.pos >= len(self.text):
            raise X12Error("no interchange: the data is empty", tag="ISA", index=1)
        while self.pos < len(self.text):
            if not self.text.startswith("ISA", self.pos):
                raise X12Error(
                    f"expected an ISA segment, found {self.text[self.pos : self.pos + 20]!r}",
                    tag="ISA",
                    index=self.index + 1,
                )
            yield self._interchange()
            self._skip_space()

    # --- tokenising -------------------------------------------------------------------------

    def _isa(self) -> tuple[Segment, Delimiters, bool]:
        start = self.pos
        self.index += 1
        self.last_tag = "ISA"
        index = self.index
        if len(self.text) < start + 4:
            raise X12Error("ISA segment is truncated", tag="ISA", index=index)
        sep = self.text[start + 3]
        if sep.isalnum() or sep.isspace():
            raise X12Error(
                f"element separator {sep!r} after ISA is a letter, digit or space", tag="ISA", index=index
            )
        cursor = start + 3  # the first separator
        for _ in range(15):
            cursor = self.text.find(sep, cursor + 1)
            if cursor < 0:
                raise X12Error("ISA segment has fewer than 16 elements", tag="ISA", index=index)
        # cursor is at the 16th separator: ISA16 follows, then the segment terminator.
        if cursor + 2 >= len(self.text):
            raise X12Error("ISA segment has no segment terminator after ISA16", tag="ISA", index=index)
        component = self.text[cursor + 1]
        terminator = self.text[cursor + 2]
        raw = self.text[start : cursor + 2]
        elements = raw.split(sep)[1:]
        if len(elements) != 16:
            raise X12Error(f"ISA must have 16 elements, found {len(elements)}", tag="ISA", index=index)
        version = elements[11]
        repetition = elements[10]
        newline = terminator in _NEWLINES
        declares_repetition = version >= "00402" and not repetition.isalnum() and not repetition.isspace()
        delimiters = Delimiters(
            element=sep,
            component=component,
            segment="\n" if newline else terminator,
            repetition=repetition if declares_repetition else None,
        )
        try:
            delimiters.check()
        except X12Error as exc:
            raise X12Error(exc.detail, tag="ISA", index=index) from None
        self.pos = cursor + 3
        if newline:
            self._eat_newline(terminator)
        segment = Segment("ISA", elements, index=index)
        return segment, delimiters, newline

    def _eat_newline(self, first: str) -> None:
        if first == "\r" and self.text.startswith("\n", self.pos):
            self.pos += 1

    def _next_segment(self, delimiters: Delimiters, newline: bool) -> Segment | None:
        """The next non-blank segment of the current interchange, or None at the end of the data."""
        while True:
            self._skip_space()
            if self.pos >= len(self.text):
                return None
            if newline:
                ends = [i for i in (self.text.find("\r", self.pos), self.text.find("\n", self.pos)) if i >= 0]
                end = min(ends) if ends else len(self.text)
                raw = self.text[self.pos : end]
                self.pos = end + 1
                if end < len(self.text):
                    self._eat_newline(self.text[end])
            else:
                end = self.text.find(delimiters.segment, self.pos)
                if end < 0:
                    end = len(self.text)
                raw = self.text[self.pos : end]
                self.pos = end + len(delimiters.segment)
            raw = raw.strip(_NEWLINES)
            if not raw.strip():
                continue
            self.index += 1
            parts = raw.split(delimiters.element)
            self.last_tag = parts[0][:3]
            tag = parts[0]
            if not _TAG.match(tag):
                raise X12Error(
                    f"{tag[:20]!r} is not a segment tag (2-3 capital letters or digits); "
                    "a segment terminator may be missing or wrong",
                    tag=tag[:3] or "?",
                    index=self.index,
                )
            return Segment(tag, parts[1:], index=self.index)

    # --- structure ----------------------------------------------------------------------------

    def _fail(self, error: X12Error, into: list[X12Error]) -> None:
        if self.strict:
            raise error
        into.append(error)

    def _interchange(self) -> Interchange:
        isa, delimiters, newline = self._isa()
        e = isa.elements
        interchange = Interchange(
            authorization_qualifier=e[0],
            authorization=e[1].rstrip(),
            security_qualifier=e[2],
            security=e[3].rstrip(),
            sender_qualifier=e[4],
            sender_id=e[5].rstrip(),
            receiver_qualifier=e[6],
            receiver_id=e[7].rstrip(),
            date=e[8],
            time=e[9],
            standards_id=e[10] if delimiters.repetition is None else "U",
            version=e[11],
            control_number=e[12],
            ack_requested=e[13],
            usage=e[14],
            delimiters=delimiters,
        )
        while True:
            segment = self._next_segment(delimiters, newline)
            if segment is None:
                raise X12Error("interchange ends without an IEA segment", tag=self.last_tag, index=self.index)
            if segment.tag == "GS":
                interchange.groups.append(self._group(segment, delimiters, newline))
            elif segment.tag == "TA1":
                interchange.acknowledgments.append(segment)
            elif segment.tag == "IEA":
                declared = _count(segment, 1)
                if declared != len(interchange.groups):
                    self._fail(
                        X12Error(
                            f"IEA01 says {declared} functional groups, the interchange has "
                            f"{len(interchange.groups)}",
                            tag="IEA",
                            index=segment.index,
                        ),
                        interchange.errors,
                    )
                if not _same_control_number(segment.get(2), interchange.control_number):
                    self._fail(
                        X12Error(
                            f"IEA02 {segment.get(2)!r} does not match ISA13 {interchange.control_number!r}",
                            tag="IEA",
                            index=segment.index,
                        ),
                        interchange.errors,
                    )
                return interchange
            else:
                raise X12Error(
                    f"{segment.tag} outside a functional group (expected GS, TA1 or IEA)",
                    tag=segment.tag,
                    index=segment.index,
                )

    def _group(self, gs: Segment, delimiters: Delimiters, newline: bool) -> FunctionalGroup:
        if len(gs.elements) < _GS_ELEMENTS:
            raise X12Error(
                f"GS has {len(gs.elements)} elements, needs {_GS_ELEMENTS}", tag="GS", index=gs.index
            )
        group = FunctionalGroup(
            functional_id=gs.get(1),
            sender=gs.get(2),
            receiver=gs.get(3),
            date=gs.get(4),
            time=gs.get(5),
            control_number=gs.get(6),
            agency=gs.get(7),
            version=gs.get(8),
        )
        if len(gs.elements) > _GS_ELEMENTS:
            self._fail(
                X12Error(
                    f"GS has {len(gs.elements)} elements, at most {_GS_ELEMENTS} are defined "
                    f"(GS06 read as {group.control_number!r})",
                    tag="GS",
                    index=gs.index,
                    code="6",
                ),
                group.errors,
            )
        while True:
            segment = self._next_segment(delimiters, newline)
            if segment is None:
                raise X12Error(
                    f"functional group {group.control_number} ends without a GE segment",
                    tag=self.last_tag,
                    index=self.index,
                )
            if segment.tag == "ST":
                group.transactions.append(self._transaction(segment, delimiters, newline))
            elif segment.tag == "GE":
                declared = _count(segment, 1)
                group.declared_count = declared
                if declared != len(group.transactions):
                    self._fail(
                        X12Error(
                            f"GE01 says {declared} transaction sets, group {group.control_number} has "
                            f"{len(group.transactions)}",
                            tag="GE",
                            index=segment.index,
                            code=AK9_TRANSACTION_COUNT_MISMATCH,
                        ),
                        group.errors,
                    )
                if not _same_control_number(segment.get(2), group.control_number):
                    self._fail(
                        X12Error(
                            f"GE02 {segment.get(2)!r} does not match GS06 {group.control_number!r}",
                            tag="GE",
                            index=segment.index,
                            code=AK9_CONTROL_NUMBER_MISMATCH,
                        ),
                        group.errors,
                    )
                return group
            else:
                raise X12Error(
                    f"{segment.tag} between transaction sets (expected ST or GE)",
                    tag=segment.tag,
                    index=segment.index,
                )

    def _transaction(self, st: Segment, delimiters: Delimiters, newline: bool) -> TransactionSet:
        if not st.get(1) or not st.get(2):
            raise X12Error(
                "ST needs ST01 (set identifier) and ST02 (control number)", tag="ST", index=st.index
            )
        transaction = TransactionSet(
            code=st.get(1),
            control_number=st.get(2),
            implementation_reference=st.get(3),
            delimiters=delimiters,
            index=st.index,
        )
        while True:
            segment = self._next_segment(delimiters, newline)
            if segment is None:
                raise X12Error(
                    f"transaction set {transaction.control_number} ends without an SE segment",
                    tag=self.last_tag,
                    index=self.index,
                )
            if segment.tag in ("ST", "GS", "GE", "ISA", "IEA"):
                raise X12Error(
                    f"{segment.tag} inside transaction set {transaction.control_number}: its SE is missing",
                    tag=segment.tag,
                    index=segment.index,
                )
            if segment.tag != "SE":
                transaction.segments.append(segment)
                continue
            declared = _count(segment, 1)
            actual = len(transaction.segments) + 2
            if declared != actual:
                self._fail(
                    X12Error(
                        f"SE01 says {declared} segments, transaction set {transaction.control_number} has "
                        f"{actual} (ST and SE included)",
                        tag="SE",
                        index=segment.index,
                        code=AK5_SEGMENT_COUNT_MISMATCH,
                    ),
                    transaction.errors,
                )
            if not _same_control_number(segment.get(2), transaction.control_number):
                self._fail(
                    X12Error(
                        f"SE02 {segment.get(2)!r} does not match ST02 {transaction.control_number!r}",
                        tag="SE",
                        index=segment.index,
                        code=AK5_CONTROL_NUMBER_MISMATCH,
                    ),
                    transaction.errors,
                )
            return transaction
