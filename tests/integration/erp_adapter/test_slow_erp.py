"""A slow Business Central on SQLite (docs/decisions/0027-prepare-phase-outside-the-transaction.md):
the erp-adapter calls the ERP before the bus transaction, so orders are worked at the same time
instead of one by one behind the SQLite writer, and an order cancelled while its sales order is
being created is left with no sales order in Business Central."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from libs.bus.tables import OutboxRow
from libs.http.answer import Answer
from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2
from sandbox.business_central.app import create_app
from sandbox.business_central.config import BusinessCentralSettings
from sandbox.common.server import serve_in_thread
from services.erp_adapter.store.tables import CANCELLED, ErpSalesOrderRow
from tests.integration.erp_adapter.conftest import Erp, accepted, sales_order
from tests.support.inflight import InFlight

#: What every look-up and create of a sales order costs at the slowed Business Central.
LATENCY_MS = 1000
ORDERS = 8
_EXTERNAL = re.compile(r"externalDocumentNumber eq '(.*)'")


def _external_number(query: dict[str, list[str]]) -> str:
    found = _EXTERNAL.search(query.get("$filter", [""])[0])
    return found.group(1) if found else ""


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: its single writer is what made a slow ERP serialize the adapter."""
    return sqlite_url


@pytest.fixture
def bc_settings() -> dict[str, Any]:
    """Business Central answers every sales order look-up and create a second late."""
    slow = {"latency_ms": LATENCY_MS}
    return {"faults": {"salesOrders.list": slow, "salesOrders.create": slow}}


@pytest.fixture
def stand_in(bc_settings: dict[str, Any]) -> InFlight:
    """The Business Central stand-in behind a recorder of its sales order requests."""
    return InFlight(
        create_app(BusinessCentralSettings(**bc_settings)),
        path_suffix="/salesOrders",
        key_from_query=_external_number,
        body_key="externalDocumentNumber",
    )


@pytest.fixture
def bc_url(stand_in: InFlight) -> Iterator[str]:
    """The recorded stand-in on a free loopback port."""
    server = serve_in_thread(stand_in)
    yield server.__enter__()
    server.__exit__(None, None, None)


async def test_orders_accepted_together_are_created_in_business_central_at_the_same_time(
    erp: Erp, stand_in: InFlight
) -> None:
    names = {f"O-5{i}": f"#15{i}" for i in range(ORDERS)}

    for order_id, name in names.items():
        await erp.publish(accepted(sales_order(order_id, name)), key=order_id)

    created = await erp.wait_for(order_events.ErpSalesOrderCreated, count=ORDERS)
    assert {c.order_id for c in created} == set(names)
    assert [await erp.created(name) for name in names.values()] == [1] * ORDERS
    # One at a time behind the SQLite writer, no two orders would ever be at the ERP together.
    assert stand_in.most_keys_in_flight() >= ORDERS // 2


async def test_an_order_cancelled_while_its_sales_order_is_created_keeps_no_sales_order(
    erp: Erp, stand_in: InFlight
) -> None:
    await erp.control.put(
        "/_sandbox/faults", json={"operation": "salesOrders.create", "fault": {"latency_ms": 3 * LATENCY_MS}}
    )
    await erp.publish(accepted(sales_order("O-61", "#1061")), key="O-61")
    await _until(lambda: bool(stand_in.creates("#1061")), "the create sent")

    cancel_id = await erp.publish(
        order_events.OrderCancelled(order_id="O-61", reason=orders_pb2.CANCELLATION_REASON_CUSTOMER_REQUEST),
        key="O-61",
    )
    published = time.monotonic()
    await erp.handled(cancel_id)

    [create] = stand_in.creates("#1061")
    assert create.ended is not None and published < create.ended  # cancelled while being created
    assert not [o for o in (await erp.state())["salesOrders"] if o["externalDocumentNumber"] == "#1061"]
    assert await erp.created("#1061") == 1
    assert (await _row(erp, "O-61")).status == CANCELLED


async def test_a_sales_order_created_for_an_order_cancelled_before_the_commit_is_cancelled_in_bc(
    erp: Erp,
) -> None:
    await _cancel_by_another_replica_when_created(erp, "O-62")

    event_id = await erp.publish(accepted(sales_order("O-62", "#1062")), key="O-62")
    await erp.handled(event_id)

    assert await erp.created("#1062") == 1
    assert not [o for o in (await erp.state())["salesOrders"] if o["externalDocumentNumber"] == "#1062"]
    row = await _row(erp, "O-62")
    assert row.status == CANCELLED and row.bc_id  # the tombstone names what was cancelled
    assert await _outbox_keys(erp) == []  # no ErpSalesOrderCreated for a cancelled order


async def test_when_cancelling_such_a_sales_order_fails_the_retry_cancels_it(erp: Erp) -> None:
    await erp.control.put(
        "/_sandbox/faults",
        json={"operation": "salesOrders.delete", "fault": {"error_rate": 1.0, "error_status": 503}},
    )
    await _cancel_by_another_replica_when_created(erp, "O-63")

    event_id = await erp.publish(accepted(sales_order("O-63", "#1063")), key="O-63")
    await _until(
        lambda: any(x.method == "DELETE" and x.status == 503 for x in erp.exchanges), "the delete refused"
    )
    await erp.control.delete("/_sandbox/faults", params={"operation": "salesOrders.delete"})
    await erp.handled(event_id)

    assert await erp.created("#1063") == 1
    assert not [o for o in (await erp.state())["salesOrders"] if o["externalDocumentNumber"] == "#1063"]
    assert (await _row(erp, "O-63")).status == CANCELLED
    assert await _outbox_keys(erp) == []


async def _cancel_by_another_replica_when_created(erp: Erp, order_id: str) -> None:
    """Right after Business Central answers the create of `order_id`'s sales order, commit what
    another replica handling OrderCancelled leaves for an order it has no row of: a cancelled row
    without BC id."""
    db = erp.inbox.db

    async def cancel(response: Answer) -> None:
        if response.method == "POST" and response.path.endswith("/salesOrders") and response.is_success:
            now = datetime.now(UTC)
            async with db.transaction() as session:
                if await session.get(ErpSalesOrderRow, order_id) is None:
                    session.add(
                        ErpSalesOrderRow(
                            order_id=order_id,
                            external_document_number="",
                            currency="USD",
                            status=CANCELLED,
                            lines={},
                            created_at=now,
                            updated_at=now,
                        )
                    )

    erp.handlers.client.on_response.append(cancel)


async def _row(erp: Erp, order_id: str) -> ErpSalesOrderRow:
    async with erp.inbox.db.read() as session:
        row = await session.get(ErpSalesOrderRow, order_id)
        assert row is not None
        return row


async def _outbox_keys(erp: Erp) -> list[str]:
    """Keys of the events the adapter has written to its outbox."""
    async with erp.inbox.db.read() as session:
        return list((await session.execute(select(OutboxRow.key))).scalars())


async def _until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
