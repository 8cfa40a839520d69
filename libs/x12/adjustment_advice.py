"""947 Warehouse Inventory Adjustment Advice (warehouse → depositor) to and from dataclasses.

The warehouse tells the depositor that stock changed in its books without a receipt or a
shipment: units found damaged, lost, found again, put on hold. Layout (004010 and 005010): W15
(date, the warehouse's and the depositor's adjustment numbers), N1 loops (the warehouse), heading
N9 references and G62 dates, then one W19 loop per item adjusted (W19 reason code, quantity,
unit, item ids; its own N9 and G62), each W19 optionally behind an LX.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from libs.x12.envelope import Segment, TransactionSet
from libs.x12.error import X12Error
from libs.x12.mapping import (
    DateReference,
    Party,
    Reference,
    Walker,
    date_reference,
    expect_set,
    product_elements,
    product_ids,
    reference,
    required_number,
    sku_of,
    text_number,
)

# W19-01 quantity or status adjustment reason codes (X12 element 181) the mesh maps.
PRODUCT_PUT_ON_HOLD = "05"
BOOK_ADJUSTMENT_DECREASE = "06"
PRODUCT_DUMPED_OR_DESTROYED = "07"
PRODUCT_PUT_IN_QUALITY_INSPECTION = "08"
UNABLE_TO_LOCATE_PRODUCT_LOCATED = "51"
RECOUP_OF_DAMAGED_PRODUCT = "52"
PRODUCT_TAKEN_OFF_HOLD = "55"
BOOK_ADJUSTMENT_INCREASE = "56"
PRODUCT_REMOVED_FROM_QUALITY_INSPECTION = "88"
PHYSICAL_COUNT = "AA"
DAMAGED_IN_FACILITY = "AU"
DAMAGED_IN_TRANSIT = "AV"
# G62-01 of the heading date that carries the adjustment's time (this mesh's convention).
EFFECTIVE_DATE = "07"


@dataclass
class AdjustedLine:
    """One W19 loop: why, how many (signed as the warehouse sent it), which item."""

    reason_code: str
    quantity: Decimal
    unit: str = "EA"
    line_number: str = ""
    upc: str = ""
    product_ids: dict[str, str] = field(default_factory=dict)
    lot: str = ""
    references: list[Reference] = field(default_factory=list)
    dates: list[DateReference] = field(default_factory=list)

    @property
    def sku(self) -> str:
        """The SKU (``SK``, else the vendor's or buyer's item number)."""
        return sku_of(self.product_ids)


@dataclass
class AdjustmentAdvice:
    """A 947: the items one warehouse adjustment changed."""

    adjustment_number: str
    date: str
    depositor_adjustment_number: str = ""
    purpose: str = ""
    parties: list[Party] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    dates: list[DateReference] = field(default_factory=list)
    lines: list[AdjustedLine] = field(default_factory=list)

    @property
    def time(self) -> str:
        """HHMM[SS] of the heading G62 ``07`` on the W15 date, ``""`` when none says."""
        for d in self.dates:
            if d.qualifier == EFFECTIVE_DATE and d.date == self.date and d.time:
                return d.time
        return ""

    @classmethod
    def from_transaction(cls, transaction: TransactionSet) -> AdjustmentAdvice:
        """Map a 947 transaction set.

        Raises:
            X12Error: not a 947, no W15, a W15 without date, a W19 with a bad quantity, an N9 or
                G62 of a line before any W19, or a malformed segment (two run together, say).
        """
        expect_set(transaction, "947")
        walk = Walker(transaction.segments)
        w15 = walk.take_if("W15")
        if w15 is None:
            raise X12Error("a 947 must start with W15", tag="ST", index=transaction.index)
        if not w15.get(1):
            raise X12Error("W1501 (the adjustment date) is required", tag="W15", index=w15.index)
        advice = cls(
            date=w15.get(1),
            adjustment_number=w15.get(2),
            depositor_adjustment_number=w15.get(3),
            purpose=w15.get(4),
        )
        line: AdjustedLine | None = None
        lx_number = ""
        in_detail = False
        while (segment := walk.peek()) is not None:
            walk.take()
            if segment.tag == "N1" and not in_detail:
                advice.parties.append(walk.party(segment))
            elif segment.tag == "LX":
                lx_number, line, in_detail = segment.get(1), None, True
            elif segment.tag == "W19":
                in_detail = True
                line = AdjustedLine(
                    reason_code=segment.get(1),
                    quantity=required_number(segment, 2),
                    unit=segment.get(3),
                    upc=segment.get(4),
                    product_ids=product_ids(segment, 5, 9),
                    lot=segment.get(9),
                    line_number=lx_number or str(len(advice.lines) + 1),
                )
                if not line.reason_code:
                    raise X12Error("W1901 (the reason code) is required", tag="W19", index=segment.index)
                advice.lines.append(line)
                lx_number = ""
            elif segment.tag in ("N9", "G62"):
                if not in_detail:
                    target = advice
                elif line is None:
                    raise X12Error(
                        f"{segment.tag} of a line before its W19", tag=segment.tag, index=segment.index
                    )
                else:
                    target = line
                if segment.tag == "N9":
                    target.references.append(reference(segment))
                else:
                    target.dates.append(date_reference(segment))
        return advice

    def to_segments(self) -> list[Segment]:
        """The 947 body: W15, parties, heading N9/G62, then LX + W19 (+ N9, G62) per line."""
        out = [
            Segment(
                "W15", [self.date, self.adjustment_number, self.depositor_adjustment_number, self.purpose]
            )
        ]
        for party in self.parties:
            out.extend(party.segments())
        out.extend(r.segment() for r in self.references)
        out.extend(d.segment() for d in self.dates)
        for line in self.lines:
            ids = dict(list(line.product_ids.items())[:2])
            padded = product_elements(ids) + [""] * (4 - 2 * len(ids))
            out.append(Segment("LX", [line.line_number]))
            out.append(
                Segment(
                    "W19",
                    [line.reason_code, text_number(line.quantity), line.unit, line.upc, *padded, line.lot],
                )
            )
            out.extend(r.segment() for r in line.references)
            out.extend(d.segment() for d in line.dates)
        return out

    def to_transaction(self, control_number: str) -> TransactionSet:
        """As a 947 transaction set."""
        return TransactionSet(code="947", control_number=control_number, segments=self.to_segments())
