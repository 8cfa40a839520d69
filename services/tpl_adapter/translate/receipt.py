"""The 3PL's receipts as canonical RecordReceipt requests: a completed warehouse receiving order
(API), a completed return (`return.completed` webhook), an EDI 944.

Receipt ids and line ids (the SKU) are the same whichever way a receipt arrives, so a receipt seen
through the API and as a 944 applies once. Quantities are in units of any condition; damaged is
the part the warehouse set aside (a return's Quarantine action, a WRO's received minus stowed, a
944's W13 condition 01).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from libs.x12 import ReceiptAdvice
from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from services.tpl_adapter.translate.shipment import parse_time

TPL = common_pb2.SOURCE_SYSTEM_TPL


def _request(
    request_id: str, kind: int, receipt_id: str, name: str, location: str, number: str, at: datetime | None
) -> pb.RecordReceiptRequest:
    request = pb.RecordReceiptRequest(
        request_id=request_id,
        source_system=TPL,
        kind=kind,
        receipt=common_pb2.ExternalRef(system=TPL, id=receipt_id, name=name),
        document_number=number[:64],
        location_id=location,
    )
    if at is not None:
        request.occurred_at.FromDatetime(at)
    return request


def receipt_from_wro(wro: dict[str, Any]) -> pb.RecordReceiptRequest | None:
    """A completed WRO against its purchase order number; None when nothing was received."""
    at = parse_time(wro["last_updated_date"]) if wro.get("last_updated_date") else None
    request = _request(
        f"tpl-wro:{wro['id']}",
        pb.INBOUND_KIND_PURCHASE_ORDER,
        f"wro-{wro['id']}",
        str(wro["id"]),
        str(wro["fulfillment_center"]["name"]),
        str(wro.get("purchase_order_number") or ""),
        at,
    )
    for item in wro.get("inventory_quantities") or []:
        received = int(item.get("received_quantity") or 0)
        if received <= 0:
            continue
        stowed = int(item.get("stowed_quantity") if item.get("stowed_quantity") is not None else received)
        request.lines.add(
            line_id=str(item["sku"]),
            sku=str(item["sku"]),
            quantity=received,
            damaged=max(0, min(received, received - stowed)),
        )
    return request if request.lines else None


def receipt_from_return(payload: dict[str, Any]) -> pb.RecordReceiptRequest | None:
    """A completed return: restocked units back on hand, quarantined (damaged) ones aside."""
    at = parse_time(payload["completed_date"]) if payload.get("completed_date") else None
    request = _request(
        f"tpl-return:{payload['id']}",
        pb.INBOUND_KIND_RETURN,
        f"return-{payload['id']}",
        str(payload.get("reference_id") or payload["id"]),
        str(payload["fulfillment_center"]["name"]),
        "",
        at,
    )
    for item in payload.get("inventory") or []:
        received = int(item.get("quantity_received") or 0)
        if received <= 0:
            continue
        quarantined = sum(
            int(a.get("quantity") or 0)
            for a in item.get("action_taken") or []
            if a.get("action") in ("Quarantine", "Dispose")
        )
        damaged = max(int(item.get("quantity_damaged") or 0), quarantined)
        request.lines.add(
            line_id=str(item["sku"]),
            sku=str(item["sku"]),
            quantity=received,
            damaged=min(received, damaged),
        )
    return request if request.lines else None


def receipt_from_944(advice: ReceiptAdvice, *, control: str) -> pb.RecordReceiptRequest | None:
    """A 944: a purchase-order receipt when it quotes `N9*PO`, else a return receipt.

    The warehouse is the WH party (its name is the location); the receipt id is the 944's receipt
    number, so the same receipt reported by the API and by EDI applies once.
    """
    po = next((r.value for r in advice.references if r.qualifier == "PO"), "")
    location = next((p.id or p.name for p in advice.parties if p.code == "WH"), "")
    try:
        at = datetime.strptime(advice.date, "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        at = None
    if po:
        kind, receipt_id = pb.INBOUND_KIND_PURCHASE_ORDER, f"wro-{advice.receipt_number}"
    else:
        kind, receipt_id = pb.INBOUND_KIND_RETURN, f"return-{advice.receipt_number}"
    request = _request(
        f"edi-944:{control}", kind, receipt_id, advice.order_number or advice.receipt_number, location, po, at
    )
    for line in advice.lines:
        if line.quantity <= 0 or not line.sku:
            continue
        request.lines.add(
            line_id=line.sku,
            sku=line.sku,
            quantity=int(line.quantity),
            damaged=min(int(line.quantity), int(line.damaged)),
        )
    return request if request.lines and location else None
