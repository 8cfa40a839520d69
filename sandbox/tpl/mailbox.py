"""The EDI X12 drop folders, as a trading partner's SFTP mailbox would be.

    <edi-dir>/inbound/    mesh → 3PL: 940 shipping orders (the stand-in polls it)
    <edi-dir>/outbound/   3PL → mesh: 997, 945, 846, 944, 947 (the mesh polls it)
    <edi-dir>/archive/    inbound files once processed
    <edi-dir>/error/      inbound files that are not X12 at all, with a .reason.txt beside them

Files are written atomically: to a dot-file in the same folder, then renamed, so a poller that
skips dot-files never reads half a file. Names are unique: ``<set>_<ISA13>_<random>.x12``.
Inbound files whose name starts with a dot or ends in ``.part``/``.tmp`` are ignored (still being
written by the mesh).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from libs.x12 import (
    AdjustedLine,
    AdjustmentAdvice,
    DateReference,
    Interchange,
    InventoryAdvice,
    InventoryItem,
    Party,
    Quantity,
    ReceiptAdvice,
    ReceiptException,
    ReceivedLine,
    Reference,
    ShippedLine,
    ShippingAdvice,
    ShippingOrder,
    TransactionSet,
    X12Error,
    acknowledge,
    envelope,
    read,
    write,
)
from libs.x12 import adjustment_advice as x947
from libs.x12 import inventory_advice as x846
from libs.x12 import receipt_advice as x944
from libs.x12 import shipping_advice as x945
from libs.x12 import shipping_order as x940
from sandbox.tpl.state import Adjustment, Line, Order, Refused, Return, Shipment, TplState

EDI_CHANNEL_ID = 0  # orders from 940s live in their own channel: reference ids unique per channel


@dataclass
class PollResult:
    """What one poll of the inbound folder did."""

    processed: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)


class Mailbox:
    """Reads 940s from ``inbound/``, writes 997/945/846/944/947 to ``outbound/``.

    Args:
        root: the EDI folder.
        state: the warehouse.
        sender_id / receiver_id: the 3PL's and the mesh's interchange ids.
        record_create: called with ``(reference_id, created)`` for each 940 order create attempt.
        due_at: when a new order's first stage is due (the simulation's clock).
    """

    def __init__(
        self,
        root: Path,
        state: TplState,
        *,
        sender_id: str,
        receiver_id: str,
        record_create: Callable[[str, bool], None],
        due_at: Callable[[], float],
    ) -> None:
        self.root = root
        self.inbound = root / "inbound"
        self.outbound = root / "outbound"
        self.archive = root / "archive"
        self.error = root / "error"
        for folder in (self.inbound, self.outbound, self.archive, self.error):
            folder.mkdir(parents=True, exist_ok=True)
        self.state = state
        self.sender_id = sender_id
        self.receiver_id = receiver_id
        self.record_create = record_create
        self.due_at = due_at
        self._control = int(datetime.now(UTC).strftime("%H%M%S")) * 1000  # distinct across restarts

    # --- writing ------------------------------------------------------------------------------

    def _next_control(self) -> int:
        self._control = self._control % 999_999_999 + 1
        return self._control

    def write_transactions(self, transactions: list[TransactionSet], receiver: str | None = None) -> str:
        """Write ``transactions`` (all of one set) as one interchange to ``outbound/``; its name."""
        return self._write(transactions, receiver)

    def _write(self, transactions: list[TransactionSet], receiver: str | None = None) -> str:
        control = self._next_control()
        stamp = datetime.now(UTC)
        interchange: Interchange = envelope(
            transactions,
            sender_id=self.sender_id,
            receiver_id=receiver or self.receiver_id,
            control_number=control,
            date=stamp.strftime("%Y%m%d"),
            time=stamp.strftime("%H%M"),
        )
        name = f"{transactions[0].code}_{control:09d}_{secrets.token_hex(4)}.x12"
        temporary = self.outbound / f".{name}.part"
        with open(temporary, "wb") as out:
            out.write(write(interchange))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.outbound / name)
        return name

    def write_shipping_advice(self, order: Order, shipment: Shipment) -> str:
        """A 945 for one shipment; a partial one says so per line (W12 ``CP``, ordered vs shipped)."""
        earlier = [
            other
            for other in order.shipments
            if other is not shipment and other.shipped and other.ship_sequence < shipment.ship_sequence
        ]
        shipped_before: dict[int, int] = {}
        for other in earlier:
            for line in other.lines:
                shipped_before[line.line_id] = shipped_before.get(line.line_id, 0) + line.quantity
        ordered = {line.line_id: line.quantity for line in order.lines}
        lines = []
        for n, line in enumerate(shipment.lines, start=1):
            cumulative = shipped_before.get(line.line_id, 0) + line.quantity
            lines.append(
                ShippedLine(
                    line_number=str(n),
                    quantity_ordered=Decimal(ordered[line.line_id]),
                    quantity_shipped=Decimal(line.quantity),
                    status=x945.COMPLETE if cumulative >= ordered[line.line_id] else x945.PARTIAL,
                    product_ids={"SK": line.sku},
                    packages=[shipment.tracking_number],
                )
            )
        final = all(s is shipment or s in earlier or s.cancelled for s in order.shipments)
        center = self.state.centers[shipment.center_id]
        advice = ShippingAdvice(
            reporting_code="F" if final else "P",
            order_number=order.reference_id,
            ship_date=shipment.shipped_at[:10].replace("-", ""),
            shipment_id=str(shipment.id),
            purchase_order=order.order_number,
            parties=[
                Party(code="WH", name=center["name"], id_qualifier="92", id=center["name"]),
                *self._ship_to(order),
            ],
            transport_method="U",
            carrier="UPSN",
            routing=order.shipping_method,
            lines=lines,
        )
        advice.references.append(Reference(qualifier=x945.TRACKING_QUALIFIER, value=shipment.tracking_number))
        return self._write([advice.to_transaction("0001")], order.edi_sender or None)

    def _ship_to(self, order: Order) -> list[Party]:
        address = order.recipient.get("address") or {}
        if not order.recipient:
            return []
        return [
            Party(
                code="ST",
                name=str(order.recipient.get("name", "")),
                address=[v for v in (address.get("address1"), address.get("address2")) if v],
                city=str(address.get("city", "")),
                state=str(address.get("state", "")),
                postal_code=str(address.get("zip_code", "")),
                country=str(address.get("country", "")),
            )
        ]

    def write_inventory_advice(self) -> str:
        """An 846 with on hand, available (fulfillable) and damaged units per SKU and center."""
        stamp = datetime.now(UTC)
        items = []
        for n, sku in enumerate(self.state.inventory_ids, start=1):
            quantities = []
            for center in self.state.centers.values():
                stock = self.state.stock[(sku, center["id"])]
                for qualifier, value in (
                    (x846.ON_HAND, stock.on_hand),
                    (x846.AVAILABLE, stock.fulfillable),
                    (x846.DAMAGED, stock.damaged),
                ):
                    quantities.append(Quantity(qualifier, Decimal(value), "EA", center["name"]))
            items.append(InventoryItem(product_ids={"SK": sku}, line_id=str(n), quantities=quantities))
        advice = InventoryAdvice(
            reference=f"INV{self._control + 1}",
            date=stamp.strftime("%Y%m%d"),
            time=stamp.strftime("%H%M"),
            parties=[Party(code="WH", name="TPL SANDBOX", id_qualifier="92", id="ALL")],
            items=items,
        )
        return self._write([advice.to_transaction("0001")])

    def write_receipt_advice(self, ret: Return) -> str:
        """A 944 for a received return: W07 units received, W13 ``01`` for the damaged ones."""
        center = self.state.centers[ret.center_id]
        lines = [
            ReceivedLine(
                line_number=str(n),
                quantity=Decimal(item.received),
                product_ids={"SK": item.sku},
                exceptions=[ReceiptException(quantity=Decimal(item.damaged), condition=x944.DAMAGED)]
                if item.damaged
                else [],
            )
            for n, item in enumerate(ret.items, start=1)
        ]
        advice = ReceiptAdvice(
            receipt_number=str(ret.id),
            date=ret.completed_at[:10].replace("-", ""),
            order_number=ret.reference_id,
            reference_id=ret.tracking_number,
            parties=[Party(code="WH", name=center["name"], id_qualifier="92", id=center["name"])],
            lines=lines,
        )
        return self._write([advice.to_transaction("0001")])

    def write_adjustment_advice(self, adjustment: Adjustment) -> str:
        """A 947 for one stock adjustment: W15 with its date and number, the time in ``G62*07``,
        one W19 whose reason code says which way stock moved (``AU`` damaged, ``52`` repaired,
        ``06`` lost, ``51`` found, ``AA`` recount with a signed quantity)."""
        center = self.state.centers[adjustment.center_id]
        if adjustment.reason == "damaged":
            code = x947.DAMAGED_IN_FACILITY if adjustment.delta > 0 else x947.RECOUP_OF_DAMAGED_PRODUCT
        else:
            code = {
                "lost": x947.BOOK_ADJUSTMENT_DECREASE,
                "found": x947.UNABLE_TO_LOCATE_PRODUCT_LOCATED,
                "count": x947.PHYSICAL_COUNT,
            }[adjustment.reason]
        quantity = adjustment.delta if code == x947.PHYSICAL_COUNT else abs(adjustment.delta)
        date = adjustment.adjusted_at[:10].replace("-", "")
        advice = AdjustmentAdvice(
            adjustment_number=f"ADJ{adjustment.id}",
            date=date,
            parties=[Party(code="WH", name=center["name"], id_qualifier="92", id=center["name"])],
            dates=[
                DateReference(
                    x947.EFFECTIVE_DATE,
                    date,
                    adjustment.adjusted_at[11:19].replace(":", ""),
                )
            ],
            lines=[
                AdjustedLine(
                    reason_code=code,
                    quantity=Decimal(quantity),
                    line_number="1",
                    product_ids={"SK": adjustment.sku},
                )
            ],
        )
        return self._write([advice.to_transaction("0001")])

    # --- reading ----------------------------------------------------------------------------

    def pending(self) -> list[Path]:
        """Inbound files ready to read, oldest name first."""
        return sorted(
            p
            for p in self.inbound.iterdir()
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith((".part", ".tmp"))
        )

    def poll(self) -> PollResult:
        """Process every inbound file: a 997 per functional group, orders for accepted 940s."""
        result = PollResult()
        for path in self.pending():
            data = path.read_bytes()
            try:
                interchanges = read(data, strict=False)
            except X12Error as exc:
                self._move(path, self.error)
                (self.error / f"{path.name}.reason.txt").write_text(str(exc) + "\n")
                result.rejected.append(path.name)
                continue
            for interchange in interchanges:
                for group in interchange.groups:
                    if group.functional_id == "FA":
                        continue  # a 997 is never acknowledged
                    accepted: dict[str, ShippingOrder] = {}

                    def check(
                        transaction: TransactionSet, accepted: dict[str, ShippingOrder] = accepted
                    ) -> None:
                        if transaction.code != "940":
                            raise X12Error(
                                f"transaction set {transaction.code} is not supported here", tag="ST"
                            )
                        accepted[transaction.control_number] = ShippingOrder.from_transaction(transaction)

                    ack = acknowledge(group, check=check)
                    result.written.append(
                        self._write([ack.to_transaction("0001")], receiver=interchange.sender_id or None)
                    )
                    group_ok = not group.errors
                    for t_ack in ack.transactions:
                        order = accepted.get(t_ack.control_number)
                        if group_ok and t_ack.status == "A" and order is not None:
                            placed = self._apply(order, interchange.sender_id)
                            if placed is not None:
                                result.orders.append(placed)
            self._move(path, self.archive)
            result.processed.append(path.name)
        return result

    def _apply(self, order: ShippingOrder, sender: str) -> int | None:
        if order.status == x940.CANCEL:
            existing = self.state.order_by_reference(EDI_CHANNEL_ID, order.order_number)
            if existing is not None:
                try:
                    self.state.cancel_order(existing.id)
                except Refused:
                    pass  # already shipped: the 945 that follows tells the depositor
            return None
        ship_to = order.ship_to
        recipient = {}
        if ship_to is not None:
            recipient = {
                "name": ship_to.name,
                "address": {
                    "address1": ship_to.address[0] if ship_to.address else "",
                    "address2": ship_to.address[1] if len(ship_to.address) > 1 else "",
                    "city": ship_to.city,
                    "state": ship_to.state,
                    "zip_code": ship_to.postal_code,
                    "country": ship_to.country or "US",
                },
            }
        lines = [Line(line.sku or line.upc, int(line.quantity)) for line in order.lines]
        try:
            placed = self.state.create_order(
                channel_id=EDI_CHANNEL_ID,
                reference_id=order.order_number,
                order_number=order.purchase_order or order.order_number,
                lines=lines,
                recipient=recipient,
                shipping_method=order.carrier_routing or "Standard",
                source="edi",
                due_at=self.due_at(),
                edi_sender=sender,
            )
        except Refused:
            self.record_create(order.order_number, False)
            return None
        self.record_create(order.order_number, True)
        return placed.id

    def _move(self, path: Path, folder: Path) -> None:
        target = folder / path.name
        if target.exists():
            target = folder / f"{path.stem}_{secrets.token_hex(4)}{path.suffix}"
        os.replace(path, target)
