"""944 Warehouse Stock Transfer Receipt Advice (warehouse → depositor) to and from dataclasses.

The mesh receives returns with it: W07 quantities received per item, W13 exceptions with their
receiving condition (``01`` damaged product or container).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from libs.x12.envelope import Segment, TransactionSet
from libs.x12.error import X12Error
from libs.x12.mapping import (
    Party,
    Reference,
    Walker,
    expect_set,
    product_elements,
    product_ids,
    reference,
    required_number,
    sku_of,
    text_number,
)

DAMAGED = "01"  # W13-03 receiving condition: damaged product or container
QUANTITY_SHORT = "02"
QUANTITY_OVER = "03"


@dataclass
class ReceiptException:
    """A W13: part of a line received in some condition other than good."""

    quantity: Decimal
    condition: str
    unit: str = "EA"
    damage_reason: str = ""


@dataclass
class ReceivedLine:
    """One LX loop: W07 quantity received, its exceptions."""

    line_number: str
    quantity: Decimal
    unit: str = "EA"
    upc: str = ""
    product_ids: dict[str, str] = field(default_factory=dict)
    lot: str = ""
    exceptions: list[ReceiptException] = field(default_factory=list)

    @property
    def sku(self) -> str:
        """The SKU (``SK``, else the vendor's or buyer's item number)."""
        return sku_of(self.product_ids)

    @property
    def damaged(self) -> Decimal:
        """Units received damaged."""
        return sum((e.quantity for e in self.exceptions if e.condition == DAMAGED), Decimal(0))


@dataclass
class ReceiptAdvice:
    """A 944: what the warehouse received against one receipt (a return, here)."""

    receipt_number: str
    date: str
    order_number: str = ""
    reporting_code: str = "F"
    reference_id: str = ""
    parties: list[Party] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    lines: list[ReceivedLine] = field(default_factory=list)

    @classmethod
    def from_transaction(cls, transaction: TransactionSet) -> ReceiptAdvice:
        """Map a 944 transaction set.

        Raises:
            X12Error: not a 944, no W17, a bad quantity, or a malformed segment.
        """
        expect_set(transaction, "944")
        walk = Walker(transaction.segments)
        w17 = walk.take_if("W17")
        if w17 is None:
            raise X12Error("a 944 must start with W17", tag="ST", index=transaction.index)
        advice = cls(
            reporting_code=w17.get(1),
            date=w17.get(2),
            receipt_number=w17.get(3),
            order_number=w17.get(4),
            reference_id=w17.get(5),
        )
        line: ReceivedLine | None = None
        lx_number = ""
        while (segment := walk.peek()) is not None:
            walk.take()
            if segment.tag == "N1" and line is None:
                advice.parties.append(walk.party(segment))
            elif segment.tag == "N9" and line is None:
                advice.references.append(reference(segment))
            elif segment.tag == "LX":
                lx_number, line = segment.get(1), None
            elif segment.tag == "W07":
                line = ReceivedLine(
                    line_number=lx_number,
                    quantity=required_number(segment, 1),
                    unit=segment.get(2),
                    upc=segment.get(3),
                    product_ids=product_ids(segment, 4, 8),
                    lot=segment.get(8),
                )
                advice.lines.append(line)
            elif segment.tag == "W13":
                if line is None:
                    raise X12Error("W13 before any W07", tag="W13", index=segment.index)
                line.exceptions.append(
                    ReceiptException(
                        quantity=required_number(segment, 1),
                        unit=segment.get(2),
                        condition=segment.get(3),
                        damage_reason=segment.get(5),
                    )
                )
        return advice

    def to_segments(self) -> list[Segment]:
        """The 944 body: W17, parties, references, LX/W07/W13 per line, W14 total."""
        out = [
            Segment(
                "W17",
                [self.reporting_code, self.date, self.receipt_number, self.order_number, self.reference_id],
            )
        ]
        for party in self.parties:
            out.extend(party.segments())
        out.extend(r.segment() for r in self.references)
        for line in self.lines:
            ids = dict(list(line.product_ids.items())[:2])
            padded = product_elements(ids) + [""] * (4 - 2 * len(ids))
            out.append(Segment("LX", [line.line_number]))
            out.append(Segment("W07", [text_number(line.quantity), line.unit, line.upc, *padded, line.lot]))
            out.extend(
                Segment("W13", [text_number(e.quantity), e.unit, e.condition, "", e.damage_reason])
                for e in line.exceptions
            )
        if self.lines:
            out.append(Segment("W14", [text_number(sum((x.quantity for x in self.lines), Decimal(0)))]))
        return out

    def to_transaction(self, control_number: str) -> TransactionSet:
        """As a 944 transaction set."""
        return TransactionSet(code="944", control_number=control_number, segments=self.to_segments())
