"""Sales orders exactly once (M2), business rejections (O4) and transient failures (M3), end to
end: OrderAccepted on NATS → erp-adapter → Business Central stand-in over HTTP → facts on NATS."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from libs.http.budget import Lane
from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2
from tests.integration.erp_adapter.conftest import Erp, accepted, sales_order

R = orders_pb2.RejectionReason


async def test_accepted_order_creates_one_sales_order_and_publishes_it(erp: Erp) -> None:
    order = sales_order("O-1", "#1001")

    await erp.publish(accepted(order), key="O-1")

    [created] = await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-1")
    assert created.erp_sales_order.name  # the BC number, e.g. "101001"
    assert created.erp_customer_number == "C10000"
    assert created.tax_total.currency == "USD" and created.tax_total.minor_units > 0
    assert await erp.created("#1001") == 1
    bc_orders = [o for o in (await erp.state())["salesOrders"] if o["externalDocumentNumber"] == "#1001"]
    assert [o["id"] for o in bc_orders] == [created.erp_sales_order.id]


async def test_same_order_accepted_twice_creates_one_sales_order(erp: Erp) -> None:
    order = sales_order("O-2", "#1002")

    await erp.publish(accepted(order), key="O-2")
    await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-2")
    await erp.publish(accepted(order), key="O-2")

    both = await erp.wait_for(order_events.ErpSalesOrderCreated, count=2, order_id="O-2")
    assert both[0].erp_sales_order.id == both[1].erp_sales_order.id
    assert await erp.created("#1002") == 1


async def test_create_answer_lost_after_commit_still_creates_one_sales_order(erp: Erp) -> None:
    await erp.control.put(
        "/_sandbox/faults", json={"operation": "salesOrders.create", "fault": {"drop_response_rate": 1.0}}
    )

    await erp.publish(accepted(sales_order("O-3", "#1003")), key="O-3")

    await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-3")
    assert await erp.created("#1003") == 1
    assert any(x.status == 504 and x.method == "POST" for x in erp.exchanges)


async def test_429_storm_is_waited_out_honouring_retry_after(erp: Erp) -> None:
    await erp.control.put(
        "/_sandbox/faults",
        json={
            "operation": "salesOrders.create",
            "fault": {"error_rate": 1.0, "error_status": 429, "retry_after_s": 1},
        },
    )

    await erp.publish(accepted(sales_order("O-4", "#1004")), key="O-4")
    await _until_exchanges(erp, lambda xs: sum(x.status == 429 for x in xs) >= 2)
    await erp.control.delete("/_sandbox/faults")

    await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-4")
    creates = [x for x in erp.exchanges if x.method == "POST" and x.path.endswith("/salesOrders")]
    for refused, following in itertools.pairwise(creates):
        if refused.status == 429:
            assert following.at - refused.at >= refused.retry_after
    assert await erp.created("#1004") == 1


async def test_server_errors_are_retried_until_the_order_is_created(erp: Erp) -> None:
    await erp.control.put(
        "/_sandbox/faults",
        json={"operation": "salesOrders.create", "fault": {"error_rate": 1.0, "error_status": 503}},
    )
    await erp.publish(accepted(sales_order("O-5", "#1005")), key="O-5")
    await _until_exchanges(erp, lambda xs: sum(x.status == 503 for x in xs) >= 2)

    await erp.control.delete("/_sandbox/faults")

    await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-5")
    assert await erp.created("#1005") == 1
    assert not [e for e in erp.events if isinstance(e, order_events.ErpOrderRejected)]


async def test_credit_hold_rejects_the_order_and_a_replay_after_the_fix_creates_it(erp: Erp) -> None:
    order = sales_order("O-6", "#1006", customer="C40000", lines=[("L1", "SKU-1001", 10)])

    await erp.publish(accepted(order), key="O-6")

    [rejected] = await erp.wait_for(order_events.ErpOrderRejected, order_id="O-6")
    assert rejected.reason == R.REJECTION_REASON_CREDIT_LIMIT_EXCEEDED
    assert rejected.erp_reason.code == "CREDIT_LIMIT_EXCEEDED"
    assert rejected.erp_reason.external_code == "Application_CreditLimitExceeded"
    assert await erp.created("#1006") == 0

    customers = {c["number"]: c for c in (await erp.state())["customers"]}
    await _patch_customer(erp, customers["C40000"]["id"], {"creditLimit": 0})
    await erp.publish(accepted(order), key="O-6")

    await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-6")
    assert await erp.created("#1006") == 1


async def test_missing_tax_area_rejects_the_order_as_tax_rejected(erp: Erp) -> None:
    await erp.publish(accepted(sales_order("O-7", "#1007", customer="C50000")), key="O-7")

    [rejected] = await erp.wait_for(order_events.ErpOrderRejected, order_id="O-7")
    assert rejected.reason == R.REJECTION_REASON_TAX_REJECTED
    assert await erp.created("#1007") == 0


async def test_unknown_sku_rejects_the_order_as_invalid_sku(erp: Erp) -> None:
    order = sales_order("O-8", "#1008", lines=[("L1", "SKU-1001", 1), ("L2", "SKU-9999", 1)])

    await erp.publish(accepted(order), key="O-8")

    [rejected] = await erp.wait_for(order_events.ErpOrderRejected, order_id="O-8")
    assert rejected.reason == R.REJECTION_REASON_INVALID_SKU
    assert "SKU-9999" in rejected.erp_reason.message
    assert await erp.created("#1008") == 0


async def test_blocked_customer_rejects_the_order(erp: Erp) -> None:
    await erp.publish(accepted(sales_order("O-9", "#1009", customer="C30000")), key="O-9")

    [rejected] = await erp.wait_for(order_events.ErpOrderRejected, order_id="O-9")
    assert rejected.reason == R.REJECTION_REASON_CUSTOMER_BLOCKED


async def test_payment_and_fraud_holds_reject_and_removing_the_hold_lets_a_replay_through(erp: Erp) -> None:
    await erp.control.put(
        "/_sandbox/holds", json={"externalDocumentNumber": "#1010", "paymentNotAuthorized": True}
    )
    await erp.control.put("/_sandbox/holds", json={"externalDocumentNumber": "#1011", "fraudHold": True})
    order = sales_order("O-10", "#1010")

    await erp.publish(accepted(order), key="O-10")
    await erp.publish(accepted(sales_order("O-11", "#1011")), key="O-11")

    [payment] = await erp.wait_for(order_events.ErpOrderRejected, order_id="O-10")
    [fraud] = await erp.wait_for(order_events.ErpOrderRejected, order_id="O-11")
    assert payment.reason == R.REJECTION_REASON_PAYMENT_NOT_AUTHORIZED
    assert fraud.reason == R.REJECTION_REASON_FRAUD_SUSPECTED

    await erp.control.delete("/_sandbox/holds", params={"externalDocumentNumber": "#1010"})
    await erp.publish(accepted(order), key="O-10")

    await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-10")
    assert await erp.created("#1010") == 1


async def test_cancelled_order_deletes_its_sales_order(erp: Erp) -> None:
    await erp.publish(accepted(sales_order("O-12", "#1012")), key="O-12")
    [created] = await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-12")

    await erp.publish(
        order_events.OrderCancelled(
            order_id="O-12",
            reason=orders_pb2.CANCELLATION_REASON_CUSTOMER_REQUEST,
            erp_sales_order=created.erp_sales_order,
        ),
        key="O-12",
    )

    await _until(erp, lambda s: all(o["id"] != created.erp_sales_order.id for o in s["salesOrders"]))


async def test_a_line_cancellation_that_overtakes_the_creation_is_applied_right_after_it(erp: Erp) -> None:
    # The OrderAccepted is being retried (a 429, say) when the customer cancels one unit: the
    # adapter handles the cancellation first, then creates the order as accepted, then reduces it.
    cancel_id = await erp.publish(
        order_events.OrderLinesCancelled(
            order_id="O-13",
            lines=[orders_pb2.LineQuantity(line_id="L1", sku="SKU-1001", quantity=1)],
            reason=orders_pb2.CANCELLATION_REASON_CUSTOMER_REQUEST,
        ),
        key="O-13",
    )
    await erp.handled(cancel_id)

    await erp.publish(accepted(sales_order("O-13", "#1013")), key="O-13")

    [created] = await erp.wait_for(order_events.ErpSalesOrderCreated, order_id="O-13")
    lines = [
        x for x in (await erp.state())["salesOrderLines"] if x["documentId"] == created.erp_sales_order.id
    ]
    assert sorted((line["lineObjectNumber"], line["quantity"]) for line in lines) == [
        ("SKU-1001", 1),
        ("SKU-1002", 1),
    ]
    assert await erp.created("#1013") == 1


async def _patch_customer(erp: Erp, customer_id: str, body: dict) -> None:
    """Fix the customer in BC, as a finance user would (through the API, with its ETag)."""
    handlers = erp.handlers
    path = f"customers({customer_id})"

    current = await handlers.client.request("GET", path, lane=Lane.BULK)
    await handlers.client.request("PATCH", path, lane=Lane.BULK, json=body, if_match=current["@odata.etag"])


async def _until_exchanges(erp: Erp, condition: Callable[[list[Any]], bool], timeout: float = 20.0) -> None:

    deadline = time.monotonic() + timeout
    while not condition(list(erp.exchanges)):
        assert time.monotonic() < deadline, "ERP exchanges not seen before the deadline"
        await asyncio.sleep(0.02)


async def _until(erp: Erp, condition: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> None:

    deadline = time.monotonic() + timeout
    while not condition(await erp.state()):
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.05)
