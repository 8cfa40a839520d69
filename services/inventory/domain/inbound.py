"""Expected inbound stock (MISSION I1 incoming, I5): what an inbound document still brings.

Pure rules, no storage. The ERP says what a purchase or transfer order line ordered and how much
it has posted as received; the warehouse says what it physically received against the document's
number. Both describe the same goods, so they are never added: per line, received is the larger
of the two, and the warehouse's receipts for a document, SKU and location are spread over its
lines in line order. A closed document brings nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExpectedLine:
    """One inbound document line as last read from the ERP."""

    key: str
    quantity: int
    erp_received: int = 0
    closed: bool = False


@dataclass(frozen=True)
class LineStatus:
    """What a line counts now: `received` (ERP or warehouse, whichever is larger) and
    `outstanding` (still incoming)."""

    received: int
    outstanding: int


def outstanding(lines: list[ExpectedLine], warehouse_received: int) -> dict[str, LineStatus]:
    """Per line key, what is received and what is still incoming.

    Args:
        lines: the lines of one document for one SKU at one location.
        warehouse_received: units the warehouse reported received against that document, SKU and
            location (receipts); spread over the open lines in key order, each up to its quantity.
    """
    left = max(0, warehouse_received)
    result: dict[str, LineStatus] = {}
    for line in sorted(lines, key=lambda x: x.key):
        if line.closed:
            result[line.key] = LineStatus(min(line.quantity, line.erp_received), 0)
            continue
        taken = min(left, line.quantity)
        left -= taken
        received = max(line.erp_received, taken)
        result[line.key] = LineStatus(received, max(0, line.quantity - received))
    return result
