"""A small X12 reader and writer, and typed mappings of the warehouse sets (940, 944, 945, 846, 947, 997).

No maintained PyPI library fits (see README.md): pyx12 crashes on byte-order marks and ships no
maps for the warehouse sets; the newer structural parsers reject BOMs and unterminated last
segments. So this is ours, kept small and fuzzed.

    interchanges = read(data)                       # raises X12Error naming the segment
    order = ShippingOrder.from_transaction(interchanges[0].groups[0].transactions[0])
    data = write(envelope(["945"], [advice.to_transaction("0001")], ...))
"""

from __future__ import annotations

from collections.abc import Sequence

from libs.x12.acknowledgment import FunctionalAck, SegmentError, TransactionAck, acknowledge
from libs.x12.adjustment_advice import AdjustedLine, AdjustmentAdvice
from libs.x12.envelope import Delimiters, FunctionalGroup, Interchange, Segment, TransactionSet
from libs.x12.error import X12Error
from libs.x12.inventory_advice import InventoryAdvice, InventoryItem, Quantity
from libs.x12.mapping import DateReference, Party, Reference
from libs.x12.reader import read, read_one
from libs.x12.receipt_advice import ReceiptAdvice, ReceiptException, ReceivedLine
from libs.x12.shipping_advice import ShippedLine, ShippingAdvice
from libs.x12.shipping_order import OrderLine, ShippingOrder
from libs.x12.writer import write

# GS01 functional identifier of each set we write.
FUNCTIONAL_IDS = {"940": "OW", "945": "SW", "846": "IB", "944": "RE", "947": "AW", "997": "FA", "856": "SH"}

Document = ShippingOrder | ShippingAdvice | InventoryAdvice | ReceiptAdvice | AdjustmentAdvice | FunctionalAck
_MAPPERS = {
    "940": ShippingOrder,
    "945": ShippingAdvice,
    "846": InventoryAdvice,
    "944": ReceiptAdvice,
    "947": AdjustmentAdvice,
    "997": FunctionalAck,
}


def document(transaction: TransactionSet) -> Document:
    """Map a transaction set to its typed dataclass.

    Raises:
        X12Error: a set we do not map, or a malformed one.
    """
    mapper = _MAPPERS.get(transaction.code)
    if mapper is None:
        raise X12Error(
            f"no mapping for transaction set {transaction.code}", tag="ST", index=transaction.index
        )
    return mapper.from_transaction(transaction)


def envelope(
    transactions: Sequence[TransactionSet],
    *,
    sender_id: str,
    receiver_id: str,
    control_number: int,
    date: str,
    time: str,
    usage: str = "P",
    delimiters: Delimiters | None = None,
) -> Interchange:
    """One interchange holding one group of ``transactions`` (all of one set).

    ``control_number`` is used for both ISA13 and GS06; ``date`` is CCYYMMDD, ``time`` HHMM.
    """
    if not transactions:
        raise X12Error("an interchange needs at least one transaction set")
    code = transactions[0].code
    if any(t.code != code for t in transactions):
        raise X12Error("one functional group holds transaction sets of one kind")
    group = FunctionalGroup(
        functional_id=FUNCTIONAL_IDS.get(code, "ZZ"),
        sender=sender_id,
        receiver=receiver_id,
        date=date,
        time=time,
        control_number=str(control_number),
        transactions=list(transactions),
    )
    return Interchange(
        sender_id=sender_id,
        receiver_id=receiver_id,
        date=date[2:],
        time=time,
        control_number=f"{control_number:09d}",
        usage=usage,
        delimiters=delimiters or Delimiters(),
        groups=[group],
    )


__all__ = [
    "FUNCTIONAL_IDS",
    "AdjustedLine",
    "AdjustmentAdvice",
    "DateReference",
    "Delimiters",
    "Document",
    "FunctionalAck",
    "FunctionalGroup",
    "Interchange",
    "InventoryAdvice",
    "InventoryItem",
    "OrderLine",
    "Party",
    "Quantity",
    "ReceiptAdvice",
    "ReceiptException",
    "ReceivedLine",
    "Reference",
    "Segment",
    "SegmentError",
    "ShippedLine",
    "ShippingAdvice",
    "ShippingOrder",
    "TransactionAck",
    "TransactionSet",
    "X12Error",
    "acknowledge",
    "document",
    "envelope",
    "read",
    "read_one",
    "write",
]
