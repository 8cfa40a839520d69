"""945 Warehouse Shipping Advice (warehouse → depositor) to and from plain dataclasses."""

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

# W12-01 shipment/order status codes.
COMPLETE = "CC"
PARTIAL = "CP"
# N9 qualifier of a carrier tracking number, MAN qualifier of a carrier-assigned package id.
TRACKING_QUALIFIER = "2I"
PACKAGE_QUALIFIER = "CP"


@dataclass
class ShippedLine:
    """One LX loop: W12 ordered vs shipped quantities, MAN package marks, N9 references."""

    line_number: str
    quantity_ordered: Decimal
    quantity_shipped: Decimal
    status: str = COMPLETE
    unit: str = "EA"
    upc: str = ""
    product_ids: dict[str, str] = field(default_factory=dict)
    lot: str = ""
    packages: list[str] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)

    @property
    def sku(self) -> str:
        """The SKU (``SK``, else the vendor's or buyer's item number)."""
        return sku_of(self.product_ids)

    @property
    def quantity_difference(self) -> Decimal:
        """Ordered minus shipped (W12-04)."""
        return self.quantity_ordered - self.quantity_shipped

    @property
    def tracking_numbers(self) -> list[str]:
        """Package ids (MAN) and N9*2I tracking numbers of the line."""
        return self.packages + [r.value for r in self.references if r.qualifier == TRACKING_QUALIFIER]


@dataclass
class ShippingAdvice:
    """A 945: what the warehouse shipped for one depositor order, in one shipment."""

    order_number: str
    ship_date: str
    shipment_id: str = ""
    purchase_order: str = ""
    reporting_code: str = "F"
    parties: list[Party] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    dates: list[DateReference] = field(default_factory=list)
    transport_method: str = ""
    carrier: str = ""
    routing: str = ""
    lines: list[ShippedLine] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """True when any line is reported partially shipped (W12-01 ``CP``)."""
        return any(line.status == PARTIAL for line in self.lines)

    @property
    def tracking_numbers(self) -> list[str]:
        """Every tracking number in the advice, header first, in order, without repeats."""
        found = [r.value for r in self.references if r.qualifier == TRACKING_QUALIFIER]
        for line in self.lines:
            found.extend(line.tracking_numbers)
        return list(dict.fromkeys(found))

    @classmethod
    def from_transaction(cls, transaction: TransactionSet) -> ShippingAdvice:
        """Map a 945 transaction set.

        Raises:
            X12Error: not a 945, no W06, a bad quantity, or a malformed segment.
        """
        expect_set(transaction, "945")
        walk = Walker(transaction.segments)
        w06 = walk.take_if("W06")
        if w06 is None:
            raise X12Error("a 945 must start with W06", tag="ST", index=transaction.index)
        advice = cls(
            reporting_code=w06.get(1),
            order_number=w06.get(2),
            ship_date=w06.get(3),
            shipment_id=w06.get(4),
            purchase_order=w06.get(6),
        )
        line: ShippedLine | None = None
        pending_packages: list[str] = []
        pending_refs: list[Reference] = []
        in_lx = False
        while (segment := walk.peek()) is not None:
            walk.take()
            if segment.tag == "N1" and not in_lx:
                advice.parties.append(walk.party(segment))
            elif segment.tag == "N9":
                if in_lx:
                    (line.references if line is not None else pending_refs).append(reference(segment))
                else:
                    advice.references.append(reference(segment))
            elif segment.tag == "G62" and not in_lx:
                advice.dates.append(date_reference(segment))
            elif segment.tag == "W27":
                advice.transport_method, advice.carrier, advice.routing = (
                    segment.get(1),
                    segment.get(2),
                    segment.get(3),
                )
            elif segment.tag == "LX":
                in_lx, line = True, None
                pending_packages, pending_refs = [], []
                lx_number = segment.get(1)
            elif segment.tag == "MAN" and in_lx:
                (line.packages if line is not None else pending_packages).append(segment.get(2))
            elif segment.tag == "W12":
                if not in_lx:
                    raise X12Error("W12 outside an LX loop", tag="W12", index=segment.index)
                ordered = number(segment, 2)
                shipped = required_number(segment, 3)
                line = ShippedLine(
                    line_number=lx_number,
                    status=segment.get(1),
                    quantity_ordered=ordered if ordered is not None else shipped,
                    quantity_shipped=shipped,
                    unit=segment.get(5),
                    upc=segment.get(6),
                    product_ids=product_ids(segment, 7, 9),
                    lot=segment.get(9),
                    packages=pending_packages,
                    references=pending_refs,
                )
                pending_packages, pending_refs = [], []
                advice.lines.append(line)
            elif segment.tag == "W03":
                number(segment, 1)  # checked, the total is recomputed when writing
        return advice

    def to_segments(self) -> list[Segment]:
        """The 945 body (between ST and SE): header, then per line LX, MAN, W12, N9."""
        out = [
            Segment(
                "W06",
                [
                    self.reporting_code,
                    self.order_number,
                    self.ship_date,
                    self.shipment_id,
                    "",
                    self.purchase_order,
                ],
            )
        ]
        for party in self.parties:
            out.extend(party.segments())
        out.extend(r.segment() for r in self.references)
        out.extend(d.segment() for d in self.dates)
        if self.transport_method or self.carrier or self.routing:
            out.append(Segment("W27", [self.transport_method, self.carrier, self.routing]))
        for line in self.lines:
            out.append(Segment("LX", [line.line_number]))
            out.extend(Segment("MAN", [PACKAGE_QUALIFIER, package]) for package in line.packages)
            # W12-07/08 carry one qualifier/id pair; further ids go into N9 references.
            ids = list(line.product_ids.items())
            first = product_elements(dict(ids[:1])) or ["", ""]
            out.append(
                Segment(
                    "W12",
                    [
                        line.status,
                        text_number(line.quantity_ordered),
                        text_number(line.quantity_shipped),
                        text_number(line.quantity_difference),
                        line.unit,
                        line.upc,
                        *first,
                        line.lot,
                    ],
                )
            )
            out.extend(r.segment() for r in line.references)
        if self.lines:
            out.append(
                Segment("W03", [text_number(sum((x.quantity_shipped for x in self.lines), Decimal(0)))])
            )
        return out

    def to_transaction(self, control_number: str) -> TransactionSet:
        """As a 945 transaction set."""
        return TransactionSet(code="945", control_number=control_number, segments=self.to_segments())
