"""Real BC answers most refusals with the generic Application_DialogException: the adapter still
publishes the right reason, read from the message."""

from __future__ import annotations

from typing import Any

import pytest

from retail.orders.v1 import events_pb2 as order_events
from retail.orders.v1 import orders_pb2
from tests.integration.erp_adapter.conftest import Erp, accepted, sales_order

R = orders_pb2.RejectionReason


@pytest.fixture
def bc_settings() -> dict[str, Any]:
    """A stand-in answering business errors as real BC does, with the generic code."""
    return {"generic_error_codes": True}


async def test_generic_dialog_exceptions_still_give_the_right_rejection_reasons(erp: Erp) -> None:
    await erp.publish(accepted(sales_order("G-1", "#3001", customer="C50000")), key="G-1")
    await erp.publish(accepted(sales_order("G-2", "#3002", lines=[("L1", "SKU-0000", 1)])), key="G-2")
    await erp.publish(accepted(sales_order("G-3", "#3003", customer="C30000")), key="G-3")

    [tax] = await erp.wait_for(order_events.ErpOrderRejected, order_id="G-1")
    [sku] = await erp.wait_for(order_events.ErpOrderRejected, order_id="G-2")
    [blocked] = await erp.wait_for(order_events.ErpOrderRejected, order_id="G-3")
    assert tax.reason == R.REJECTION_REASON_TAX_REJECTED
    assert sku.reason == R.REJECTION_REASON_INVALID_SKU
    assert blocked.reason == R.REJECTION_REASON_CUSTOMER_BLOCKED
    assert tax.erp_reason.external_code == "Application_DialogException"
