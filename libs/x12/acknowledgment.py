"""997 Functional Acknowledgment: to and from dataclasses, and building one for a received group.

A 997 acknowledges one functional group: AK1 names the group, one AK2..AK5 loop per transaction
set says accepted (``A``) or rejected (``R``) and why, AK9 sums up the group. A 997 is never
itself acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from libs.x12.envelope import FunctionalGroup, Segment, TransactionSet
from libs.x12.error import X12Error
from libs.x12.mapping import expect_set

ACCEPTED = "A"
ACCEPTED_WITH_ERRORS = "E"
PARTIALLY_ACCEPTED = "P"
REJECTED = "R"
# AK5 code: one or more segments in error; AK3 code: segment has data element errors.
AK5_SEGMENTS_IN_ERROR = "5"
AK3_ELEMENT_ERRORS = "8"


@dataclass
class SegmentError:
    """An AK3: the segment in error, its position in the transaction set, and the error code."""

    tag: str
    position: int
    code: str
    loop: str = ""


@dataclass
class TransactionAck:
    """One AK2 loop: which transaction set, its status (AK501) and the codes why (AK502..)."""

    code: str
    control_number: str
    status: str = ACCEPTED
    errors: list[str] = field(default_factory=list)
    segment_errors: list[SegmentError] = field(default_factory=list)


@dataclass
class FunctionalAck:
    """A 997 for one functional group."""

    functional_id: str
    group_control_number: str
    status: str = ACCEPTED
    included: int = 0
    received: int = 0
    accepted: int = 0
    errors: list[str] = field(default_factory=list)
    transactions: list[TransactionAck] = field(default_factory=list)

    @classmethod
    def from_transaction(cls, transaction: TransactionSet) -> FunctionalAck:
        """Map a 997 transaction set.

        Raises:
            X12Error: not a 997, no AK1 or AK9, bad counts, or a malformed segment.
        """
        expect_set(transaction, "997")
        ack: FunctionalAck | None = None
        current: TransactionAck | None = None
        saw_ak9 = False
        for segment in transaction.segments:
            if segment.tag == "AK1":
                ack = cls(functional_id=segment.get(1), group_control_number=segment.get(2))
            elif ack is None:
                raise X12Error("a 997 must start with AK1", tag=segment.tag, index=segment.index)
            elif segment.tag == "AK2":
                current = TransactionAck(code=segment.get(1), control_number=segment.get(2))
                ack.transactions.append(current)
            elif segment.tag == "AK3" and current is not None:
                current.segment_errors.append(
                    SegmentError(
                        tag=segment.get(1),
                        position=_int(segment, 2),
                        loop=segment.get(3),
                        code=segment.get(4),
                    )
                )
            elif segment.tag == "AK5" and current is not None:
                current.status = segment.get(1)
                current.errors = [v for v in segment.elements[1:] if v]
            elif segment.tag == "AK9":
                saw_ak9 = True
                ack.status = segment.get(1)
                ack.included, ack.received, ack.accepted = (_int(segment, i) for i in (2, 3, 4))
                ack.errors = [v for v in segment.elements[4:] if v]
        if ack is None or not saw_ak9:
            raise X12Error("a 997 needs AK1 and AK9", tag="ST", index=transaction.index)
        return ack

    def to_segments(self) -> list[Segment]:
        """The 997 body: AK1, AK2/AK3/AK5 per transaction set, AK9."""
        out = [Segment("AK1", [self.functional_id, self.group_control_number])]
        for t in self.transactions:
            out.append(Segment("AK2", [t.code, t.control_number]))
            out.extend(Segment("AK3", [e.tag, str(e.position), e.loop, e.code]) for e in t.segment_errors)
            out.append(Segment("AK5", [t.status, *t.errors[:5]]))
        out.append(
            Segment(
                "AK9",
                [self.status, str(self.included), str(self.received), str(self.accepted), *self.errors[:5]],
            )
        )
        return out

    def to_transaction(self, control_number: str) -> TransactionSet:
        """As a 997 transaction set."""
        return TransactionSet(code="997", control_number=control_number, segments=self.to_segments())


def _int(segment: Segment, position: int) -> int:
    raw = segment.get(position).strip()
    if not raw:
        return 0
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        raise X12Error(
            f"{segment.tag}{position:02d} {raw!r} is not a count", tag=segment.tag, index=segment.index
        )
    return int(raw)


def acknowledge(
    group: FunctionalGroup,
    check: Callable[[TransactionSet], None] | None = None,
) -> FunctionalAck:
    """Build the 997 for a group read leniently.

    Envelope errors the reader kept (SE count, SE/ST control numbers, GE count and control number)
    reject the transaction set or the group with their X12 codes. ``check`` may map each set
    (``ShippingOrder.from_transaction``, say); an :class:`X12Error` it raises rejects that set
    with an AK3 naming the segment.
    """
    ack = FunctionalAck(
        functional_id=group.functional_id,
        group_control_number=group.control_number,
        included=group.declared_count if group.declared_count is not None else len(group.transactions),
        received=len(group.transactions),
    )
    for transaction in group.transactions:
        t_ack = TransactionAck(code=transaction.code, control_number=transaction.control_number)
        codes = [e.code for e in transaction.errors if e.code]
        if check is not None and not codes:
            try:
                check(transaction)
            except X12Error as exc:
                codes.append(AK5_SEGMENTS_IN_ERROR)
                if exc.tag and exc.index:
                    position = exc.index - transaction.index + 1
                    t_ack.segment_errors.append(
                        SegmentError(tag=exc.tag, position=position, code=AK3_ELEMENT_ERRORS)
                    )
        if codes:
            t_ack.status, t_ack.errors = REJECTED, list(dict.fromkeys(codes))
        else:
            ack.accepted += 1
        ack.transactions.append(t_ack)
    ack.errors = list(dict.fromkeys(e.code for e in group.errors if e.code))
    if ack.errors or (ack.accepted == 0 and ack.received > 0):
        ack.status = REJECTED
    elif ack.accepted < ack.received:
        ack.status = PARTIALLY_ACCEPTED
    return ack
