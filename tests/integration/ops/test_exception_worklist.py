"""The business-exception worklists (V3) on a real nats-server and database (SQLite and PostgreSQL):
events published as their producers publish them open, count and clear exceptions, and operators
work them over the real gRPC server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import func, select

from libs.bus.tables import HopRow
from retail.common.v1 import common_pb2
from retail.inventory.v1 import events_pb2 as inventory_events
from retail.inventory.v1 import inventory_pb2
from retail.ops.v1 import events_pb2 as ops_events
from retail.ops.v1 import ops_pb2
from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2
from tests.integration.ops.harness import open_count, ops_stack, pb, until

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def drift(
    observed: int, *, repaired: bool = False, sku: str = "SKU-1010"
) -> inventory_events.InventoryDriftDetected:
    return inventory_events.InventoryDriftDetected(
        sku=sku,
        location_id="EAST",
        compared_system=common_pb2.SOURCE_SYSTEM_TPL,
        bucket=inventory_pb2.INVENTORY_BUCKET_ON_HAND,
        expected=40,
        observed=observed,
        auto_repaired=repaired,
        evidence=f"snapshot snap-{observed}: counted {observed}, in flight none",
    )


def held(
    order_id: str, hold_id: str = "h1", reason=orders_pb2.HOLD_REASON_FRAUD_REVIEW
) -> order_events.OrderHeld:
    return order_events.OrderHeld(
        order_id=order_id,
        hold=orders_pb2.Hold(
            hold_id=hold_id, reason=reason, note="flagged", placed_by=common_pb2.SOURCE_SYSTEM_SHOPIFY
        ),
    )


def rejected(order_id: str, reason: int) -> order_events.OrderRejected:
    return order_events.OrderRejected(order_id=order_id, reason=reason, detail="refused")


async def test_a_drift_beyond_bounds_is_one_exception_however_often_found_and_clears_when_repaired(
    database_url, nats_server
):
    async with ops_stack(database_url, nats_server.url) as ops:
        first = await ops.publish(drift(31))
        # The same event again after the server's duplicate window: only the inbox can tell.
        await ops.publish(drift(31), event_id=first, msg_id=f"{first}:again")
        listed = await until(ops.exceptions, "the drift exception")
        await ops.publish(drift(29))  # found again by a later count, other figures
        again = await until(
            lambda: _where(ops.exceptions(), lambda e: e[0].occurrences == 2), "the second occurrence"
        )
        await ops.publish(drift(40, repaired=True))
        await until(lambda: _none_open(ops), "the repaired drift resolved")
        resolved = await ops.exceptions(states=[ops_pb2.EXCEPTION_STATE_RESOLVED])
        raised = await ops.ops_events(ops_events.ExceptionRaised)
        closed = await until(lambda: ops.ops_events(ops_events.ExceptionResolved), "ExceptionResolved")
        rows_open = await open_count(ops.app.db)

    (exception,) = listed
    assert exception.worklist == ops_pb2.WORKLIST_WAREHOUSE
    assert (exception.reason.code, exception.key) == ("INVENTORY_MISMATCH", "SKU-1010@EAST")
    assert exception.evidence == "snapshot snap-31: counted 31, in flight none"
    assert exception.occurrences == 1 and exception.source_event_id == first
    assert [e.occurrences for e in again] == [2]
    assert again[0].evidence == "snapshot snap-29: counted 29, in flight none"
    (done,) = resolved
    assert done.exception_id == exception.exception_id
    assert (done.resolution, done.resolved_by) == (ops_pb2.RESOLUTION_NO_ACTION_NEEDED, "mesh")
    assert done.occurrences == 2  # the redelivered copy counted nothing
    assert [e.exception.exception_id for e in raised] == [exception.exception_id]
    assert [(e.exception.exception_id, e.operator) for e in closed] == [(exception.exception_id, "mesh")]
    assert rows_open == 0


async def test_operators_assign_and_resolve_once_per_request_id_and_a_resolved_exception_stays_resolved(
    database_url, nats_server
):
    async with ops_stack(database_url, nats_server.url) as ops:
        await ops.publish(held("shp-41"), source=common_pb2.SOURCE_SYSTEM_SHOPIFY)
        (exception,) = await until(ops.exceptions, "the hold exception")
        xid = exception.exception_id
        assigned = await ops.stub.AssignException(
            pb.AssignExceptionRequest(request_id="as-1", exception_id=xid, assignee="ana"), timeout=10
        )
        repeat = await ops.stub.AssignException(
            pb.AssignExceptionRequest(request_id="as-1", exception_id=xid, assignee="bob"), timeout=10
        )
        mine = await ops.exceptions(assignee="ana")
        resolved = await ops.stub.ResolveException(
            pb.ResolveExceptionRequest(
                request_id="rs-1",
                exception_id=xid,
                resolution=ops_pb2.RESOLUTION_HANDLED_MANUALLY,
                note="called the customer; fraud check passed",
            ),
            timeout=10,
        )
        replayed = await ops.stub.ResolveException(
            pb.ResolveExceptionRequest(
                request_id="rs-1", exception_id=xid, resolution=ops_pb2.RESOLUTION_NO_ACTION_NEEDED, note="x"
            ),
            timeout=10,
        )
        errors = {}
        for name, call in {
            "resolve again": ops.stub.ResolveException(
                pb.ResolveExceptionRequest(
                    request_id="rs-2",
                    exception_id=xid,
                    resolution=ops_pb2.RESOLUTION_NO_ACTION_NEEDED,
                    note="x",
                ),
                timeout=10,
            ),
            "assign resolved": ops.stub.AssignException(
                pb.AssignExceptionRequest(request_id="as-2", exception_id=xid, assignee="bob"), timeout=10
            ),
            "unknown": ops.stub.AssignException(
                pb.AssignExceptionRequest(request_id="as-3", exception_id="nope", assignee="bob"), timeout=10
            ),
            "no note": ops.stub.ResolveException(
                pb.ResolveExceptionRequest(
                    request_id="rs-3", exception_id=xid, resolution=ops_pb2.RESOLUTION_NO_ACTION_NEEDED
                ),
                timeout=10,
            ),
        }.items():
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await call
            errors[name] = failed.value.code()
        # The hold's release arriving afterwards changes nothing about the resolved exception.
        await ops.publish(
            order_events.OrderHoldReleased(
                order_id="shp-41", hold_id="h1", resumed_status=orders_pb2.ORDER_STATUS_RECEIVED
            ),
            source=common_pb2.SOURCE_SYSTEM_SHOPIFY,
        )
        audit_assigned = await until(
            lambda: ops.ops_events(ops_events.ExceptionAssigned), "ExceptionAssigned"
        )
        audit_resolved = await until(
            lambda: ops.ops_events(ops_events.ExceptionResolved), "ExceptionResolved"
        )
        await until(lambda: _consumed(ops, "ops.orders", 2), "the release consumed")
        after = await ops.exceptions(order_id="shp-41", states=[ops_pb2.EXCEPTION_STATE_RESOLVED])

    assert (exception.worklist, exception.reason.code) == (ops_pb2.WORKLIST_CUSTOMER_SERVICE, "FRAUD_REVIEW")
    assert assigned.exception.state == ops_pb2.EXCEPTION_STATE_ASSIGNED
    assert assigned.exception.assignee == repeat.exception.assignee == "ana"
    assert [e.exception_id for e in mine] == [xid]
    assert resolved == replayed
    assert resolved.exception.state == ops_pb2.EXCEPTION_STATE_RESOLVED
    assert resolved.exception.resolution_note == "called the customer; fraud check passed"
    assert resolved.exception.resolved_by == "unauthenticated"
    assert errors == {
        "resolve again": grpc.StatusCode.FAILED_PRECONDITION,
        "assign resolved": grpc.StatusCode.FAILED_PRECONDITION,
        "unknown": grpc.StatusCode.NOT_FOUND,
        "no note": grpc.StatusCode.INVALID_ARGUMENT,
    }
    assert [(e.exception_id, e.assignee) for e in audit_assigned] == [(xid, "ana")]
    assert [(e.exception.exception_id, e.operator) for e in audit_resolved] == [(xid, "unauthenticated")]
    assert audit_resolved[0].meta.source_system == common_pb2.SOURCE_SYSTEM_OPERATOR
    (unchanged,) = after
    assert (unchanged.resolution, unchanged.resolved_by) == (
        ops_pb2.RESOLUTION_HANDLED_MANUALLY,
        "unauthenticated",
    )


async def test_lists_filter_and_page_and_the_summary_counts_open_exceptions_per_cause(
    database_url, nats_server
):
    R = orders_pb2
    async with ops_stack(database_url, nats_server.url) as ops:
        for i, reason in enumerate(
            [
                R.REJECTION_REASON_TAX_REJECTED,
                R.REJECTION_REASON_TAX_REJECTED,
                R.REJECTION_REASON_TAX_REJECTED,
                R.REJECTION_REASON_CREDIT_LIMIT_EXCEEDED,
                R.REJECTION_REASON_INVALID_SKU,
            ]
        ):
            await ops.publish(rejected(f"shp-5{i}", reason), source=common_pb2.SOURCE_SYSTEM_ERP)
        await ops.publish(held("shp-59", reason=R.HOLD_REASON_PAYMENT_PENDING))
        everything = await until(lambda: _where(ops.exceptions(), lambda e: len(e) == 6), "six exceptions")
        pages = []
        token = ""
        while True:
            reply = await ops.stub.ListExceptions(
                pb.ListExceptionsRequest(
                    worklist=ops_pb2.WORKLIST_FINANCE, page={"page_size": 2, "page_token": token}
                ),
                timeout=10,
            )
            pages.append([e.order_id for e in reply.exceptions])
            token = reply.page.next_page_token
            if not token:
                break
        taxes = await ops.exceptions(reason_codes=["TAX_REJECTED"])
        one_order = await ops.exceptions(order_id="shp-53")
        summary = await ops.stub.SummarizeExceptions(pb.SummarizeExceptionsRequest(), timeout=10)
        finance = await ops.stub.SummarizeExceptions(
            pb.SummarizeExceptionsRequest(worklist=ops_pb2.WORKLIST_FINANCE), timeout=10
        )
        with pytest.raises(grpc.aio.AioRpcError) as bad_token:
            await ops.stub.ListExceptions(
                pb.ListExceptionsRequest(page={"page_token": "bm90LWEtdG9rZW4="}), timeout=10
            )

    opened = [e.opened_at.ToDatetime() for e in everything]
    assert opened == sorted(opened)
    assert pages == [["shp-50", "shp-51"], ["shp-52", "shp-53"], ["shp-59"]]
    assert [e.order_id for e in taxes] == ["shp-50", "shp-51", "shp-52"]
    assert [(e.reason.code, e.worklist) for e in one_order] == [
        ("CREDIT_LIMIT_EXCEEDED", ops_pb2.WORKLIST_FINANCE)
    ]
    assert [(g.worklist, g.reason_code, g.open_count) for g in summary.groups] == [
        (ops_pb2.WORKLIST_FINANCE, "TAX_REJECTED", 3),
        (ops_pb2.WORKLIST_FINANCE, "CREDIT_LIMIT_EXCEEDED", 1),
        (ops_pb2.WORKLIST_CATALOG, "INVALID_SKU", 1),
        (ops_pb2.WORKLIST_FINANCE, "PAYMENT_PENDING", 1),
    ]
    assert summary.groups[0].oldest_opened_at == everything[0].opened_at
    assert [g.reason_code for g in finance.groups] == [
        "TAX_REJECTED",
        "CREDIT_LIMIT_EXCEEDED",
        "PAYMENT_PENDING",
    ]
    assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_hold_delivered_late_after_its_release_opens_nothing_and_a_cancellation_clears_an_order(
    database_url, nats_server
):
    async with ops_stack(database_url, nats_server.url) as ops:
        await ops.publish(
            order_events.OrderHoldReleased(
                order_id="shp-61", hold_id="h1", resumed_status=orders_pb2.ORDER_STATUS_RECEIVED
            ),
            occurred_at=T0 + timedelta(minutes=1),
        )
        await ops.publish(held("shp-61"), occurred_at=T0)
        await ops.publish(
            order_events.WarehouseCancellationRejected(
                order_id="shp-62",
                release_id="shp-62:EAST:1",
                reason=common_pb2.Reason(code="ALREADY_PICKED", message="picked at 10:02"),
            ),
            source=common_pb2.SOURCE_SYSTEM_TPL,
        )
        await ops.publish(held("shp-62", hold_id="h1"))
        await until(lambda: _where(ops.exceptions(), lambda e: len(e) == 2), "two exceptions of shp-62")
        await ops.publish(
            order_events.OrderStatusChanged(
                order_id="shp-62",
                change=orders_pb2.StatusChange(
                    from_status=orders_pb2.ORDER_STATUS_RELEASED, to_status=orders_pb2.ORDER_STATUS_CANCELLED
                ),
            )
        )
        await until(lambda: _none_open(ops), "shp-62's exceptions resolved")
        late = await ops.exceptions(order_id="shp-61", states=list(ops_pb2.ExceptionState.values())[1:])
        cleared = await ops.exceptions(order_id="shp-62", states=[ops_pb2.EXCEPTION_STATE_RESOLVED])

    assert late == []
    assert sorted(e.reason.code for e in cleared) == ["ALREADY_PICKED", "FRAUD_REVIEW"]
    assert {(e.resolution, e.resolution_note) for e in cleared} == {
        (ops_pb2.RESOLUTION_NO_ACTION_NEEDED, "the order was cancelled")
    }


async def test_status_changes_of_orders_without_exceptions_are_acknowledged_without_a_transaction(
    database_url, nats_server
):
    def status(order_id: str, to: int) -> order_events.OrderStatusChanged:
        return order_events.OrderStatusChanged(
            order_id=order_id,
            change=orders_pb2.StatusChange(from_status=orders_pb2.ORDER_STATUS_RELEASED, to_status=to),
        )

    async with ops_stack(database_url, nats_server.url) as ops:
        consumer = next(c for c in ops.app.bus.consumers if c.hop == "ops.orders")
        for n in range(3):
            await ops.publish(status(f"shp-8{n}", orders_pb2.ORDER_STATUS_SHIPPED))
        await until(lambda: _skipped(consumer, 3), "three skipped")
        await ops.publish(held("shp-90"))
        await until(ops.exceptions, "the hold exception")
        await ops.publish(status("shp-90", orders_pb2.ORDER_STATUS_CANCELLED))
        await until(lambda: _none_open(ops), "shp-90's exception resolved by its status")
        await until(lambda: _consumed(ops, "ops.orders", 2), "the hold and its status consumed")
        async with ops.app.db.read() as session:
            hops = await session.scalar(
                select(func.count()).select_from(HopRow).where(HopRow.hop == "ops.orders")
            )

    assert consumer.stats.counts.get("irrelevant") == 3
    assert hops == 2  # the skipped three left no transaction behind


async def _skipped(consumer, n: int) -> bool:
    return consumer.stats.counts.get("irrelevant", 0) >= n


async def _where(listing, condition):
    found = await listing
    return found if condition(found) else None


async def _none_open(ops) -> bool:
    return await ops.exceptions() == [] and await open_count(ops.app.db) == 0


async def _consumed(ops, hop: str, n: int) -> bool:
    async with ops.app.db.read() as session:
        done = await session.scalar(select(func.count()).select_from(HopRow).where(HopRow.hop == hop))
    return done >= n


async def test_the_dead_letter_rpcs_answer_unimplemented_never_a_fake_success(database_url, nats_server):
    async with ops_stack(database_url, nats_server.url) as ops:
        with pytest.raises(grpc.aio.AioRpcError) as listed:
            await ops.stub.ListDeadLetters(pb.ListDeadLettersRequest(), timeout=10)

    assert listed.value.code() == grpc.StatusCode.UNIMPLEMENTED
