"""Shipment and invoice posting (O6, F1): ShipmentConfirmed → shipAndInvoice in the Business
Central stand-in → ErpShipmentPosted and ErpInvoicePosted, once per shipment."""

from __future__ import annotations

import asyncio
import re
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.bus import MessageContext, Outbox, PrepareContext, Retryable
from libs.store import Database
from retail.orders.v1 import events_pb2 as order_events
from retail.shipments.v1 import events_pb2 as shipment_events
from services.erp_adapter.events import ErpHandlers
from services.erp_adapter.events.handlers import PostingPrepared
from services.erp_adapter.store.tables import ErpShipmentPostingRow
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


async def test_two_shipments_of_one_order_confirmed_at_once_are_posted_twice_and_the_last_is_final(
    erp: Erp,
) -> None:
    await _created(erp, "O-23", "#2004")
    first = shipment_confirmed("SH-6", "O-23", [("L1", "SKU-1001", 2)], partial=True)
    second = shipment_confirmed("SH-7", "O-23", [("L2", "SKU-1002", 1)], partial=False)

    # One commit, so one relay batch and one fetch: the adapter handles both side by side (an
    # order split over two warehouses). Neither may take the other's posting as its own.
    async with erp.publisher.db.transaction() as session:
        for event in (first, second):
            await erp.publisher.outbox.add(session, event, key="O-23")

    invoices = await erp.wait_for(order_events.ErpInvoicePosted, count=2, order_id="O-23")
    shipments = await erp.wait_for(shipment_events.ErpShipmentPosted, count=2, order_id="O-23")
    assert len({i.erp_invoice.id for i in invoices}) == 2, invoices
    assert len({s.erp_shipment.id for s in shipments}) == 2, shipments
    assert sorted(i.final for i in invoices) == [False, True]
    state = await erp.state()
    assert len([s for s in state["salesShipments"] if s["externalDocumentNumber"] == "#2004"]) == 2
    assert not [o for o in state["salesOrders"] if o["externalDocumentNumber"] == "#2004"]  # fully posted


async def _prepare(
    replica: ErpHandlers, db: Database, event: shipment_events.ShipmentConfirmed
) -> PostingPrepared:
    """One replica's prepare step of a ShipmentConfirmed, as its consumer runs it."""
    async with AsyncExitStack() as held:
        pctx = PrepareContext(
            db=db,
            event_id=f"ev-{event.shipment.shipment_id}",
            event_type=event.DESCRIPTOR.full_name,
            subject="",
            headers={},
            correlation_id="c",
            causation_id=None,
            delivery=1,
            stream_seq=1,
            consumer="erp-adapter",
            _held=held,
        )
        return await replica.prepare_shipment_confirmed(event, pctx)


def _context(
    session: AsyncSession, event: shipment_events.ShipmentConfirmed, prepared: PostingPrepared
) -> MessageContext:
    """The handler's context in `session`, with the adapter's outbox."""
    return MessageContext(
        session=session,
        event_id=f"ev-{event.shipment.shipment_id}",
        event_type=event.DESCRIPTOR.full_name,
        subject="",
        headers={},
        correlation_id="c",
        causation_id=None,
        delivery=1,
        stream_seq=1,
        consumer="erp-adapter",
        outbox=Outbox(producer="erp-adapter"),
        prepared=prepared,
    )


async def test_a_posting_found_by_two_replicas_is_recorded_for_one_shipment_only(
    erp: Erp, database_url: str
) -> None:
    await _created(erp, "O-24", "#2005")
    first = shipment_confirmed("SH-8", "O-24", [("L1", "SKU-1001", 2)], partial=True)
    second = shipment_confirmed("SH-9", "O-24", [("L2", "SKU-1002", 1)], partial=False)
    one, other = erp.handlers, ErpHandlers(erp.handlers.client, transient_retry_s=0.2)
    db = Database(database_url)
    try:
        # Both replicas prepare before either commits: the other finds the first's posting
        # in BC, not yet recorded by anyone, and takes it for its own shipment's.
        mine = await _prepare(one, db, first)
        theirs = await _prepare(other, db, second)
        assert mine.posted is not None and theirs.posted is not None
        assert theirs.posted["id"] == mine.posted["id"]

        async def other_records() -> None:
            async with db.transaction() as session:
                await other.on_shipment_confirmed(second, _context(session, second, theirs))

        async with db.transaction() as session:
            await one.on_shipment_confirmed(first, _context(session, first, mine))
            await session.flush()
            racing = asyncio.create_task(other_records())
            await asyncio.sleep(0.5)  # the other replica's transaction runs while this one is open
        with pytest.raises(Retryable):
            await racing

        async with db.read() as session:
            query = select(ErpShipmentPostingRow.shipment_id).where(
                ErpShipmentPostingRow.bc_shipment_id == str(mine.posted["id"])
            )
            assert list(await session.scalars(query)) == ["SH-8"]
    finally:
        await db.dispose()


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


async def test_lost_answer_of_the_posting_that_completed_the_order_is_adopted_as_final(erp: Erp) -> None:
    await _created(erp, "O-26", "#2007")
    await erp.control.put(
        "/_sandbox/faults", json={"operation": "shipAndInvoice", "fault": {"drop_response_rate": 1.0}}
    )

    # BC posts everything and deletes the order, but the answer is lost: the retry finds no order.
    await erp.publish(
        shipment_confirmed("SH-14", "O-26", [("L1", "SKU-1001", 2), ("L2", "SKU-1002", 1)], partial=False),
        key="O-26",
    )

    [invoice] = await erp.wait_for(order_events.ErpInvoicePosted, order_id="O-26")
    assert invoice.final
    state = await erp.state()
    assert len([s for s in state["salesShipments"] if s["externalDocumentNumber"] == "#2007"]) == 1
    assert len([i for i in state["salesInvoices"] if i["externalDocumentNumber"] == "#2007"]) == 1


_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _requests(erp: Erp, since: int) -> list[str]:
    """The adapter's requests to BC after the first `since`: method and resource, ids as {id}."""
    return [
        f"{e.method} {_GUID.sub('{id}', e.path.split(')/', 1)[-1])} {e.status}" for e in erp.exchanges[since:]
    ]


async def test_an_order_shipped_in_one_go_costs_seven_requests_of_the_erp_window(erp: Erp) -> None:
    await _created(erp, "O-27", "#2008")  # the token, the company and the locations, read once
    since = len(erp.exchanges)

    await _created(erp, "O-28", "#2009")
    await erp.publish(
        shipment_confirmed("SH-15", "O-28", [("L1", "SKU-1001", 2), ("L2", "SKU-1002", 1)], partial=False),
        key="O-28",
    )

    [invoice] = await erp.wait_for(order_events.ErpInvoicePosted, order_id="O-28")
    assert invoice.final
    assert _requests(erp, since) == [
        "GET salesOrders 200",  # M2: the look-up by external document number
        "POST salesOrders 201",
        "GET salesOrders({id}) 200",  # nothing shipped yet: no earlier posting to adopt
        "POST salesOrders({id})/Microsoft.NAV.shipAndInvoice 204",
        "GET salesShipments 200",
        "GET salesOrders({id}) 404",  # fully posted: BC deleted it, the invoice is final
        "GET salesInvoices 200",
    ]


async def test_one_bc_posting_can_be_recorded_for_one_shipment_only(erp: Erp, database_url: str) -> None:
    # The database's own guard (migration 0003), beneath the handler's checks.
    db = Database(database_url)
    row = dict(order_id="O-25", bc_shipment_number="102009", final=False, posted_at=datetime.now(UTC))
    try:
        async with db.transaction() as session:
            session.add(ErpShipmentPostingRow(shipment_id="SH-10", bc_shipment_id="bc-s-1", **row))
        with pytest.raises(IntegrityError):
            async with db.transaction() as session:
                session.add(ErpShipmentPostingRow(shipment_id="SH-11", bc_shipment_id="bc-s-1", **row))
        async with db.transaction() as session:  # no invoice yet: NULLs never collide
            session.add(ErpShipmentPostingRow(shipment_id="SH-12", bc_shipment_id="bc-s-2", **row))
            session.add(ErpShipmentPostingRow(shipment_id="SH-13", bc_shipment_id="bc-s-3", **row))
    finally:
        await db.dispose()
