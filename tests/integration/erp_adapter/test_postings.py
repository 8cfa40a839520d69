"""Shipment and invoice posting (O6, F1): ShipmentConfirmed → shipAndInvoice in the Business
Central stand-in → ErpShipmentPosted and ErpInvoicePosted, once per shipment."""

from __future__ import annotations

from retail.orders.v1 import events_pb2 as order_events
from retail.shipments.v1 import events_pb2 as shipment_events
from tests.integration.erp_adapter.conftest import Erp, accepted, sales_order, shipment_confirmed


async def _created(erp: Erp, order_id: str, name: str) -> None:
    await erp.publish(accepted(sales_order(order_id, name)), key=order_id)
    await erp.wait_for(order_events.ErpSalesOrderCreated, order_id=order_id)


async def test_two_partial_shipments_post_twice_and_the_last_invoice_is_final(erp: Erp) -> None:
    await _created(erp, "O-20", "#2001")

    await erp.publish(shipment_confirmed("SH-1", "O-20", [("L1", "SKU-1001", 1)], partial=True), key="O-20")
    [first] = await erp.wait_for(order_events.ErpInvoicePosted, order_id="O-20")
    await erp.publish(
        shipment_confirmed("SH-2", "O-20", [("L1", "SKU-1001", 1), ("L2", "SKU-1002", 1)], partial=False),
        key="O-20",
    )

    invoices = await erp.wait_for(order_events.ErpInvoicePosted, count=2, order_id="O-20")
    shipments = await erp.wait_for(shipment_events.ErpShipmentPosted, count=2, order_id="O-20")
    assert [list(i.shipment_ids) for i in invoices] == [["SH-1"], ["SH-2"]]
    assert [i.final for i in invoices] == [False, True]
    assert first.total.minor_units > 1000 and first.total.currency == "USD"  # 10.00 plus tax
    assert {s.shipment_id for s in shipments} == {"SH-1", "SH-2"}
    state = await erp.state()
    assert len([s for s in state["salesShipments"] if s["externalDocumentNumber"] == "#2001"]) == 2
    assert not [o for o in state["salesOrders"] if o["externalDocumentNumber"] == "#2001"]  # fully posted


async def test_redelivered_shipment_is_posted_once(erp: Erp) -> None:
    await _created(erp, "O-21", "#2002")
    event = shipment_confirmed("SH-3", "O-21", [("L1", "SKU-1001", 2), ("L2", "SKU-1002", 1)], partial=False)

    await erp.publish(event, key="O-21")
    await erp.wait_for(order_events.ErpInvoicePosted, order_id="O-21")
    again = shipment_confirmed("SH-3", "O-21", [("L1", "SKU-1001", 2), ("L2", "SKU-1002", 1)], partial=False)
    await erp.publish(again, key="O-21")  # a new event id for the same shipment (a replay upstream)
    await erp.publish(
        _marker := shipment_confirmed("SH-4", "O-404", [("L1", "SKU-1001", 1)], partial=False), key="x"
    )

    state = await erp.state()
    assert len([s for s in state["salesShipments"] if s["externalDocumentNumber"] == "#2002"]) == 1
    assert len([i for i in state["salesInvoices"] if i["externalDocumentNumber"] == "#2002"]) == 1


async def test_lost_answer_of_the_posting_is_adopted_not_posted_again(erp: Erp) -> None:
    await _created(erp, "O-22", "#2003")
    await erp.control.put(
        "/_sandbox/faults", json={"operation": "shipAndInvoice", "fault": {"drop_response_rate": 1.0}}
    )

    await erp.publish(shipment_confirmed("SH-5", "O-22", [("L1", "SKU-1001", 1)], partial=True), key="O-22")

    [invoice] = await erp.wait_for(order_events.ErpInvoicePosted, order_id="O-22")
    assert not invoice.final
    state = await erp.state()
    assert len([s for s in state["salesShipments"] if s["externalDocumentNumber"] == "#2003"]) == 1
