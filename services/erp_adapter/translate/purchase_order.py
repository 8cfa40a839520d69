"""Business Central purchase orders (API v2.0 `purchaseOrders` with `purchaseOrderLines`) as
canonical RecordInbound requests (I5): each item line's ordered and received quantity at its
location; what is outstanding counts as incoming in the inventory service."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb

ERP = common_pb2.SOURCE_SYSTEM_ERP


def inbound_from_purchase_order(
    order: dict[str, Any], location_codes: dict[str, str]
) -> pb.RecordInboundRequest:
    """One purchase order with its lines (`$expand=purchaseOrderLines`).

    Args:
        order: the purchaseOrder JSON.
        location_codes: BC location systemId (lower case) → location code (`EAST`), the mesh's
            location id.

    Lines that are not items, or whose location is not one of the mesh's, are left out. The
    request id carries a digest of the lines, so reading an unchanged order again is a replay.
    """
    lines = []
    for line in order.get("purchaseOrderLines") or []:
        if line.get("lineType") != "Item" or not line.get("lineObjectNumber"):
            continue
        location = location_codes.get(str(line.get("locationId") or "").lower())
        if not location:
            continue
        entry = pb.InboundLine(
            line_id=str(line["id"]),
            sku=str(line["lineObjectNumber"]),
            location_id=location,
            quantity=max(0, int(float(line.get("quantity") or 0))),
        )
        entry.received = min(entry.quantity, max(0, int(float(line.get("receivedQuantity") or 0))))
        expected = _date(line.get("expectedReceiptDate"))
        if expected is not None:
            entry.expected_at.FromDatetime(expected)
        lines.append(entry)
    request = pb.RecordInboundRequest(
        source_system=ERP,
        kind=pb.INBOUND_KIND_PURCHASE_ORDER,
        document=common_pb2.ExternalRef(system=ERP, id=str(order["id"]), name=str(order.get("number") or "")),
        lines=lines,
    )
    request.request_id = f"bc-po:{order['id']}:{digest(request)}"
    return request


def closed_purchase_order(document_id: str, number: str) -> pb.RecordInboundRequest:
    """A purchase order that left BC (fully received and deleted, or deleted): nothing comes."""
    return pb.RecordInboundRequest(
        request_id=f"bc-po:{document_id}:closed",
        source_system=ERP,
        kind=pb.INBOUND_KIND_PURCHASE_ORDER,
        document=common_pb2.ExternalRef(system=ERP, id=document_id, name=number),
        closed=True,
    )


def digest(request: pb.RecordInboundRequest) -> str:
    """A short digest of what the request says about the document's lines."""
    lines = sorted(
        (x.line_id, x.sku, x.location_id, x.quantity, x.received, x.expected_at.seconds)
        for x in request.lines
    )
    data = json.dumps([request.document.name, request.closed, lines]).encode()
    return hashlib.sha256(data).hexdigest()[:24]


def _date(value: Any) -> datetime | None:
    if not value or str(value).startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(str(value)[:10]).replace(tzinfo=UTC)
    except ValueError:
        return None
