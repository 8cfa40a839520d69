"""846 Inventory Inquiry/Advice (warehouse → depositor) to and from plain dataclasses.

Quantities per item are QTY segments in the LIN loop. Quantities of one location follow an
``N1*WH`` in the LIN loop (this mesh's convention for several fulfillment centers in one advice);
quantities before any N1 belong to the advice's header warehouse, if any.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from libs.x12.envelope import Segment, TransactionSet
from libs.x12.error import X12Error
from libs.x12.mapping import (
    Party,
    Walker,
    expect_set,
    product_elements,
    product_ids,
    required_number,
    sku_of,
    text_number,
)

# QTY-01 qualifiers as this mesh's implementation guide uses them.
ON_HAND = "17"
AVAILABLE = "33"
DAMAGED = "74"


@dataclass
class Quantity:
    """One QTY: a qualifier, the amount, its unit, and the location (N1 id) it applies to."""

    qualifier: str
    quantity: Decimal
    unit: str = "EA"
    location: str = ""


@dataclass
class InventoryItem:
    """One LIN loop."""

    product_ids: dict[str, str]
    line_id: str = ""
    quantities: list[Quantity] = field(default_factory=list)

    @property
    def sku(self) -> str:
        """The SKU (``SK``, else the vendor's or buyer's item number)."""
        return sku_of(self.product_ids)

    def quantity(self, qualifier: str, location: str = "") -> Decimal | None:
        """The quantity of one qualifier at one location (``""``: the header location)."""
        for q in self.quantities:
            if q.qualifier == qualifier and q.location == location:
                return q.quantity
        return None


@dataclass
class InventoryAdvice:
    """An 846: on-hand and available quantities per item and location."""

    reference: str
    date: str
    purpose: str = "00"
    report_type: str = "SI"
    time: str = ""
    parties: list[Party] = field(default_factory=list)
    items: list[InventoryItem] = field(default_factory=list)

    @classmethod
    def from_transaction(cls, transaction: TransactionSet) -> InventoryAdvice:
        """Map an 846 transaction set.

        Raises:
            X12Error: not an 846, no BIA, a QTY outside a LIN loop or with a bad quantity, or a
                malformed segment (two segments run together, say).
        """
        expect_set(transaction, "846")
        walk = Walker(transaction.segments)
        bia = walk.take_if("BIA")
        if bia is None:
            raise X12Error("an 846 must start with BIA", tag="ST", index=transaction.index)
        advice = cls(
            purpose=bia.get(1), report_type=bia.get(2), reference=bia.get(3), date=bia.get(4), time=bia.get(5)
        )
        item: InventoryItem | None = None
        location = ""
        last_quantity: Quantity | None = None
        while (segment := walk.peek()) is not None:
            walk.take()
            if segment.tag == "LIN":
                item = InventoryItem(line_id=segment.get(1), product_ids=product_ids(segment, 2, 31))
                advice.items.append(item)
                location, last_quantity = "", None
            elif segment.tag == "N1":
                party = walk.party(segment)
                if item is None:
                    advice.parties.append(party)
                else:
                    location = party.id or party.name
            elif segment.tag == "QTY":
                if item is None:
                    raise X12Error("QTY before any LIN", tag="QTY", index=segment.index)
                unit = segment.components(3, transaction.delimiters.component)[0]
                last_quantity = Quantity(
                    qualifier=segment.get(1),
                    quantity=required_number(segment, 2),
                    unit=unit,
                    location=location,
                )
                item.quantities.append(last_quantity)
            elif segment.tag == "UIT" and last_quantity is not None and not last_quantity.unit:
                last_quantity.unit = segment.components(1, transaction.delimiters.component)[0]
        return advice

    def to_segments(self) -> list[Segment]:
        """The 846 body: BIA, header parties, then LIN loops (QTY, N1 + QTY per location), CTT."""
        out = [Segment("BIA", [self.purpose, self.report_type, self.reference, self.date, self.time])]
        for party in self.parties:
            out.extend(party.segments())
        for item in self.items:
            out.append(Segment("LIN", [item.line_id, *product_elements(item.product_ids)]))
            current = ""
            for q in sorted(item.quantities, key=lambda q: q.location != ""):
                if q.location != current:
                    out.append(Segment("N1", ["WH", "", "92", q.location]))
                    current = q.location
                out.append(Segment("QTY", [q.qualifier, text_number(q.quantity), q.unit]))
        out.append(Segment("CTT", [str(len(self.items))]))
        return out

    def to_transaction(self, control_number: str) -> TransactionSet:
        """As an 846 transaction set."""
        return TransactionSet(code="846", control_number=control_number, segments=self.to_segments())
