"""A "delivered" report that overtook its shipment's (NOT_FOUND from the shipments service) is
transient and asks to be tried again soon; other refusals keep the inbox's own back-off."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from services.tpl_adapter.webhooks.reporter import OVERTAKEN_RETRY_S, ReportFailed, ShipmentReporter


class Shipments:
    """The ShipmentsService stub, answering GetShipment with the given status."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code

    async def GetShipment(self, request, timeout=None):
        raise grpc.aio.AioRpcError(
            self.code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="no such shipment"
        )


async def _delivered(code: grpc.StatusCode) -> ReportFailed:
    reporter = ShipmentReporter(db=None, shipments=Shipments(code))  # type: ignore[arg-type]
    with pytest.raises(ReportFailed) as failed:
        await reporter.delivered("tpl-delivered:21", "21", datetime(2026, 11, 29, tzinfo=UTC))
    return failed.value


async def test_a_delivery_that_overtook_its_shipment_is_tried_again_soon():
    failure = await _delivered(grpc.StatusCode.NOT_FOUND)
    assert (failure.transient, failure.retry_s) == (True, OVERTAKEN_RETRY_S)


async def test_other_failures_keep_the_inbox_s_back_off():
    unavailable = await _delivered(grpc.StatusCode.UNAVAILABLE)
    refused = await _delivered(grpc.StatusCode.INVALID_ARGUMENT)
    assert (unavailable.transient, unavailable.retry_s) == (True, None)
    assert (refused.transient, refused.retry_s) == (False, None)
