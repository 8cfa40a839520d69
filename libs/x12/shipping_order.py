"""940 Warehouse Shipping Order (depositor → warehouse) to and from plain dataclasses."""

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
    number,
    product_elements,
    product_ids,
    reference,
    required_number,
    sku_of,
    text_number,
)

# W05-01 order status codes the sandbox acts on.
ORIGINAL = "N"
CANCEL = "C"


@dataclass
class OrderLine:
    """One LX loop: W01 quantity and item, G69 description, N9 line references."""

    line_number: str
    quantity: Decimal
    unit: str = "EA"
    upc: str = ""
    product_ids: dict[str, str] = field(default_factory=dict)
    description: str = ""
    references: list[Reference] = field(default_factory=list)

    @property
    def sku(self) -> str:
        """The SKU (``SK``, else the vendor's or buyer's item number)."""
        return sku_of(self.product_ids)


@dataclass
class ShippingOrder:
    """A 940: the order the warehouse is to pick, pack and ship."""

    order_number: str
    purchase_order: str = ""
    status: str = ORIGINAL
    parties: list[Party] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    dates: list[DateReference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    carrier_routing: str = ""
    lines: list[OrderLine] = field(default_factory=list)

    @property
    def ship_to(self) -> Party | None:
        """The N1*ST party."""
        return next((p for p in self.parties if p.code == "ST"), None)

    @classmethod
    def from_transaction(cls, transaction: TransactionSet) -> ShippingOrder:
        """Map a 940 transaction set.

        Raises:
            X12Error: not a 940, no W05, a non-numeric quantity, or a malformed segment.
        """
        expect_set(transaction, "940")
        walk = Walker(transaction.segments)
        w05 = walk.take_if("W05")
        if w05 is None:
            raise X12Error("a 940 must start with W05", tag="ST", index=transaction.index)
        order = cls(order_number=w05.get(2), purchase_order=w05.get(3), status=w05.get(1))
        line: OrderLine | None = None
        while (segment := walk.peek()) is not None:
            walk.take()
            if segment.tag == "N1" and line is None:
                order.parties.append(walk.party(segment))
            elif segment.tag == "N9":
                (line.references if line is not None else order.references).append(reference(segment))
            elif segment.tag == "G62" and line is None:
                order.dates.append(date_reference(segment))
            elif segment.tag == "NTE" and line is None:
                order.notes.append(segment.get(2))
            elif segment.tag == "W66" and line is None:
                order.carrier_routing = segment.get(5)
            elif segment.tag == "LX":
                line = None
                nxt = walk.peek()
                if nxt is None or nxt.tag != "W01":
                    raise X12Error("LX must be followed by W01", tag="LX", index=segment.index)
                w01 = walk.take()
                line = OrderLine(
                    line_number=segment.get(1),
                    quantity=required_number(w01, 1),
                    unit=w01.get(2),
                    upc=w01.get(3),
                    product_ids=product_ids(w01, 4, 16),
                )
                order.lines.append(line)
            elif segment.tag == "G69" and line is not None:
                line.description = segment.get(1)
            elif segment.tag == "W01":
                raise X12Error("W01 outside an LX loop", tag="W01", index=segment.index)
            elif segment.tag == "W76":
                number(segment, 1)  # checked, the total is recomputed when writing
        return order

    def to_segments(self) -> list[Segment]:
        """The 940 body (between ST and SE)."""
        out = [Segment("W05", [self.status, self.order_number, self.purchase_order])]
        for party in self.parties:
            out.extend(party.segments())
        out.extend(r.segment() for r in self.references)
        out.extend(d.segment() for d in self.dates)
        out.extend(Segment("NTE", ["GEN", n]) for n in self.notes)
        if self.carrier_routing:
            out.append(Segment("W66", ["PP", "M", "", "", self.carrier_routing]))
        for line in self.lines:
            out.append(Segment("LX", [line.line_number]))
            out.append(
                Segment(
                    "W01",
                    [text_number(line.quantity), line.unit, line.upc, *product_elements(line.product_ids)],
                )
            )
            if line.description:
                out.append(Segment("G69", [line.description]))
            out.extend(r.segment() for r in line.references)
        if self.lines:
            out.append(Segment("W76", [text_number(sum((x.quantity for x in self.lines), Decimal(0)))]))
        return out

    def to_transaction(self, control_number: str) -> TransactionSet:
        """As a 940 transaction set."""
        return TransactionSet(code="940", control_number=control_number, segments=self.to_segments())
