"""Domain facts to retail.orders.v1 events, and consumed events to the order actor's inputs."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from retail.common.v1 import common_pb2
from retail.orders.v1 import events_pb2 as ev
from retail.orders.v1 import orders_pb2
from services.orders.api.mapping import (
    change_to_proto,
    from_dict,
    hold_to_proto,
    order_to_proto,
    system_value,
)
from services.orders.domain.machine import Fact
from services.orders.domain.order import Order


def _lines(items: list[dict[str, Any]]) -> list[orders_pb2.LineQuantity]:
    return [
        orders_pb2.LineQuantity(line_id=i["line_id"], sku=i["sku"], quantity=i["quantity"])
        for i in items
        if i["quantity"] > 0
    ]


def _cancel_reason(name: str) -> int:
    return orders_pb2.CancellationReason.Value(f"CANCELLATION_REASON_{name}")


def _ref(data: dict[str, Any] | None) -> common_pb2.ExternalRef | None:
    # The constructor takes the enum's name as `to_dict` wrote it; ParseDict costs 20 times more.
    if not data:
        return None
    return common_pb2.ExternalRef(
        system=data.get("system", 0), id=data.get("id", ""), name=data.get("name", "")
    )


def to_event(order: Order, fact: Fact) -> Message:
    """The protobuf event for a domain fact, its meta's source system set to the fact's owner."""
    oid, d = order.order_id, fact.data
    channel_order = _ref(order.channel_order)
    erp = _ref(order.erp_sales_order)
    t = fact.type
    if t == "OrderReceived":
        msg = order_to_proto(order)
        event = ev.OrderReceived(
            order_id=oid,
            channel=order.channel,
            channel_order=channel_order,
            lines=msg.lines,
            totals=msg.totals,
        )
        if msg.HasField("placed_at"):
            event.placed_at.CopyFrom(msg.placed_at)
        if msg.HasField("channel_updated_at"):
            event.channel_updated_at.CopyFrom(msg.channel_updated_at)
    elif t == "OrderUpdated":
        event = ev.OrderUpdated(order_id=oid, changed_fields=d["changed_fields"], version=order.version)
        if order.channel_updated_at:
            event.channel_updated_at.FromDatetime(order.channel_updated_at)
    elif t == "OrderAccepted":
        event = ev.OrderAccepted(order=order_to_proto(order))
    elif t == "OrderBackordered":
        msg = order_to_proto(order)
        event = ev.OrderBackordered(
            order_id=oid, lines=[ln for ln in msg.lines if ln.line_id in d["line_ids"]]
        )
    elif t == "OrderRejected":
        event = ev.OrderRejected(
            order_id=oid,
            reason=orders_pb2.RejectionReason.Value(f"REJECTION_REASON_{d['reason']}"),
            detail=d["detail"][:2000],
            line_ids=d["line_ids"],
            channel_order=channel_order,
        )
    elif t == "OrderHeld":
        hold = next(h for h in order.holds if h.hold_id == d["hold_id"])
        event = ev.OrderHeld(order_id=oid, hold=hold_to_proto(hold))
    elif t == "OrderHoldReleased":
        event = ev.OrderHoldReleased(
            order_id=oid,
            hold_id=d["hold_id"],
            resumed_status=orders_pb2.OrderStatus.Value(f"ORDER_STATUS_{order.status}"),
        )
    elif t == "OrderReleasedToWarehouse":
        rel = next(r for r in order.releases if r.release_id == d["release_id"])
        event = ev.OrderReleasedToWarehouse(
            order_id=oid,
            release_id=rel.release_id,
            location_id=rel.location_id,
            lines=_lines(
                [{"line_id": k, "sku": order.line(k).sku, "quantity": q} for k, q in rel.lines.items()]
            ),
            shipping_method=order.shipping_method,
            channel_order=channel_order,
        )
        from_dict(order.shipping_address, event.shipping_address)
        if erp is not None:
            event.erp_sales_order.CopyFrom(erp)
    elif t == "OrderLinesCancelled":
        event = ev.OrderLinesCancelled(
            order_id=oid, lines=_lines(d["lines"]), reason=_cancel_reason(d["reason"])
        )
    elif t == "OrderCancellationRequested":
        event = ev.OrderCancellationRequested(
            order_id=oid,
            release_id=d["release_id"],
            lines=_lines(d["lines"]),
            whole_release=d["whole_release"],
            reason=_cancel_reason(d["reason"]),
        )
    elif t == "OrderCancelled":
        event = ev.OrderCancelled(
            order_id=oid, reason=_cancel_reason(d["reason"]), channel_order=channel_order
        )
        if erp is not None:
            event.erp_sales_order.CopyFrom(erp)
    elif t == "OrderAddressCorrected":
        event = ev.OrderAddressCorrected(order_id=oid, release_ids=d["release_ids"])
        from_dict(order.shipping_address, event.shipping_address)
    elif t == "OrderPartiallyShipped":
        event = ev.OrderPartiallyShipped(order_id=oid, shipment_id=d["shipment_id"], lines=_lines(d["lines"]))
    elif t == "OrderShipped":
        event = ev.OrderShipped(order_id=oid, shipment_id=d["shipment_id"], lines=_lines(d["lines"]))
    elif t == "OrderInvoiced":
        event = ev.OrderInvoiced(
            order_id=oid, erp_invoices=[from_dict(i, common_pb2.ExternalRef()) for i in order.invoices]
        )
        if order.invoice_total:
            from_dict(order.invoice_total, event.total)
    elif t == "OrderReplacementCreated":
        event = ev.OrderReplacementCreated(
            order_id=oid,
            replacement_of_order_id=order.replacement_of_order_id,
            lines=_lines(
                [{"line_id": ln.line_id, "sku": ln.sku, "quantity": ln.quantity} for ln in order.lines]
            ),
        )
    elif t == "OrderReplayed":
        event = ev.OrderReplayed(order_id=oid, step=d["step"], note=d["note"][:2000])
    elif t == "OrderStatusChanged":
        event = ev.OrderStatusChanged(
            order_id=oid,
            change=change_to_proto(d["change"]),
            version=order.version,
            channel_order=channel_order,
        )
    else:  # pragma: no cover - a new Fact type without a mapping is a defect caught by the tests
        raise ValueError(f"no event for fact {t}")
    event.meta.source_system = system_value(fact.source)
    return event
