"""Signals in (MISSION I5, issue 5): ERP inbound documents raise incoming, warehouse receipts raise
on_hand and lower incoming, returns go back to stock or to damaged, and drifts are readable over
gRPC. The inventory servicer over SQLite and PostgreSQL with its outbox relayed to a real
nats-server (fixture `mesh` of test_reconciliation)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from tests.integration.inventory import test_reconciliation as reconciliation
from tests.integration.inventory.test_reconciliation import T0, TPL, Mesh, count, position, stock_adjusted

mesh = reconciliation.mesh  # the fixture: inventory servicer, outbox relayed to a real nats-server
ERP = common_pb2.SOURCE_SYSTEM_ERP
PO = pb.INBOUND_KIND_PURCHASE_ORDER


def purchase_order(request_id: str, *lines: tuple[str, str, int, int], closed: bool = False):
    """PO 106001 (id po-1) with lines (line id, sku, ordered, received) at EAST."""
    return pb.RecordInboundRequest(
        request_id=request_id,
        source_system=ERP,
        kind=PO,
        document=common_pb2.ExternalRef(system=ERP, id="po-1", name="106001"),
        lines=[
            pb.InboundLine(line_id=line_id, sku=sku, location_id="EAST", quantity=ordered, received=received)
            for line_id, sku, ordered, received in lines
        ],
        closed=closed,
    )


def receipt(request_id: str, receipt_id: str, *lines: tuple[str, int, int], kind=PO, number="106001", at=60):
    """A 3PL receipt at EAST of (sku, quantity, damaged) lines at T0 + `at`."""
    return pb.RecordReceiptRequest(
        request_id=request_id,
        source_system=TPL,
        kind=kind,
        receipt=common_pb2.ExternalRef(system=TPL, id=receipt_id),
        document_number=number,
        location_id="EAST",
        lines=[
            pb.ReceiptLine(line_id=str(n), sku=sku, quantity=q, damaged=d)
            for n, (sku, q, d) in enumerate(lines, start=1)
        ],
        occurred_at=Timestamp(seconds=T0 + at),
    )


def channel(p: inventory_pb2.InventoryPosition, name: str) -> int:
    return next(c.available for c in p.channels if c.channel == name)


async def test_an_open_purchase_order_raises_incoming_sold_only_by_the_channel_that_sells_incoming(
    mesh: Mesh,
):
    await count(mesh, "snap-1", 0, SKU_1001=10)

    reply = await mesh.stub.RecordInbound(purchase_order("po-1@a", ("l1", "SKU-1001", 40, 0)))

    after = await position(mesh, "SKU-1001")
    assert (after.on_hand, after.incoming, after.available_to_sell) == (10, 40, 10)
    assert channel(after, "online-store") == 10  # policy.yaml: the web store does not sell incoming
    assert channel(after, "pos") == 50  # pos: sell_incoming: true
    assert [(x.line_id, x.outstanding) for x in reply.lines] == [("l1", 40)]
    [adjusted] = [
        a for a in await stock_adjusted(mesh) if a.reason == inventory_pb2.ADJUSTMENT_REASON_EXPECTED_INBOUND
    ]
    assert adjusted.reference.name == "106001"
    assert [(c.bucket, c.delta) for c in adjusted.changes] == [(inventory_pb2.INVENTORY_BUCKET_INCOMING, 40)]


async def test_the_same_purchase_order_read_twice_changes_nothing(mesh: Mesh):
    await mesh.stub.RecordInbound(purchase_order("po-1@a", ("l1", "SKU-1001", 40, 0)))
    version = (await position(mesh, "SKU-1001")).version

    await mesh.stub.RecordInbound(purchase_order("po-1@a", ("l1", "SKU-1001", 40, 0)))
    await mesh.stub.RecordInbound(purchase_order("po-1@again", ("l1", "SKU-1001", 40, 0)))

    after = await position(mesh, "SKU-1001")
    assert (after.incoming, after.version) == (40, version)


async def test_a_line_changed_removed_or_received_in_the_erp_moves_incoming_by_the_difference(mesh: Mesh):
    await mesh.stub.RecordInbound(purchase_order("v1", ("l1", "SKU-1001", 40, 0), ("l2", "SKU-1002", 10, 0)))

    await mesh.stub.RecordInbound(purchase_order("v2", ("l1", "SKU-1001", 30, 5)))

    assert (await position(mesh, "SKU-1001")).incoming == 25
    assert (await position(mesh, "SKU-1002")).incoming == 0

    await mesh.stub.RecordInbound(purchase_order("v3", closed=True))

    assert (await position(mesh, "SKU-1001")).incoming == 0


async def test_a_receipt_raises_on_hand_lowers_incoming_and_the_erp_posting_it_later_lowers_nothing_twice(
    mesh: Mesh,
):
    await count(mesh, "snap-1", 0, SKU_1001=10)
    await mesh.stub.RecordInbound(purchase_order("v1", ("l1", "SKU-1001", 40, 0)))

    reply = await mesh.stub.RecordReceipt(receipt("wro-1", "wro-1", ("SKU-1001", 25, 1)))

    after = await position(mesh, "SKU-1001")
    assert reply.lines_applied == 1
    assert (after.on_hand, after.damaged, after.incoming, after.available_to_sell) == (35, 1, 15, 34)

    await mesh.stub.RecordInbound(purchase_order("v2", ("l1", "SKU-1001", 40, 25)))

    assert (await position(mesh, "SKU-1001")).incoming == 15


async def test_a_receipt_line_applies_once_even_under_a_new_request_id(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1001=10)

    await mesh.stub.RecordReceipt(receipt("a", "wro-1", ("SKU-1001", 5, 0)))
    again = await mesh.stub.RecordReceipt(receipt("b", "wro-1", ("SKU-1001", 5, 0)))
    replay = await mesh.stub.RecordReceipt(receipt("a", "wro-1", ("SKU-1001", 5, 0)))

    assert (again.lines_applied, replay.lines_applied) == (0, 1)
    assert (await position(mesh, "SKU-1001")).on_hand == 15


async def test_a_receipt_before_the_purchase_order_is_read_still_counts_against_it(mesh: Mesh):
    await mesh.stub.RecordReceipt(receipt("wro-1", "wro-1", ("SKU-1001", 30, 0)))

    await mesh.stub.RecordInbound(purchase_order("v1", ("l1", "SKU-1001", 40, 0)))

    after = await position(mesh, "SKU-1001")
    assert (after.on_hand, after.incoming) == (30, 10)


async def test_a_receipt_the_warehouse_counted_already_does_not_raise_on_hand_twice(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1001=10)
    await count(mesh, "snap-2", 3600, SKU_1001=15)  # the count already holds the received units

    await mesh.stub.RecordReceipt(receipt("wro-1", "wro-1", ("SKU-1001", 5, 0), at=1800))

    assert (await position(mesh, "SKU-1001")).on_hand == 15


async def test_a_return_puts_good_units_back_to_stock_and_damaged_ones_aside(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1001=10)

    await mesh.stub.RecordReceipt(
        receipt("ret-1", "ret-1", ("SKU-1001", 3, 1), kind=pb.INBOUND_KIND_RETURN, number="")
    )

    after = await position(mesh, "SKU-1001")
    assert (after.on_hand, after.damaged, after.available_to_sell) == (13, 1, 12)
    [adjusted] = [a for a in await stock_adjusted(mesh) if a.reference.id == "ret-1"]
    assert adjusted.reason == inventory_pb2.ADJUSTMENT_REASON_RETURN_RESTOCK


async def test_a_receipt_with_more_damaged_than_received_is_refused(mesh: Mesh):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await mesh.stub.RecordReceipt(receipt("x", "x", ("SKU-1001", 1, 2)))

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "damaged" in refused.value.details()


async def test_drifts_are_listed_with_their_evidence_filtered_and_paged(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1001=100, SKU_1002=20)
    await count(mesh, "snap-2", 3600, SKU_1001=97, SKU_1002=40)  # repaired; held (beyond bound)

    everything = await mesh.stub.ListDrifts(pb.ListDriftsRequest())
    held = await mesh.stub.ListDrifts(pb.ListDriftsRequest(outcomes=[pb.DRIFT_OUTCOME_ESCALATED_HELD]))
    first = await mesh.stub.ListDrifts(pb.ListDriftsRequest(page=common_pb2.PageRequest(page_size=1)))
    second = await mesh.stub.ListDrifts(
        pb.ListDriftsRequest(page=common_pb2.PageRequest(page_size=1, page_token=first.page.next_page_token))
    )

    assert sorted((d.sku, d.outcome) for d in everything.drifts) == [
        ("SKU-1001", pb.DRIFT_OUTCOME_REPAIRED),
        ("SKU-1002", pb.DRIFT_OUTCOME_ESCALATED_HELD),
    ]
    [drift] = held.drifts
    assert (drift.sku, drift.location_id, drift.bucket) == (
        "SKU-1002",
        "EAST",
        inventory_pb2.INVENTORY_BUCKET_ON_HAND,
    )
    assert (drift.compared_system, drift.snapshot_id, drift.expected, drift.observed, drift.result) == (
        TPL,
        "snap-2",
        20,
        40,
        20,
    )
    assert drift.as_of.seconds == T0 + 3600 and drift.event_id and "held" in drift.evidence
    assert {first.drifts[0].drift_id, second.drifts[0].drift_id} == {d.drift_id for d in everything.drifts}
    assert first.page.next_page_token and not second.page.next_page_token
    only_1001 = await mesh.stub.ListDrifts(pb.ListDriftsRequest(skus=["SKU-1001"], location_ids=["EAST"]))
    assert [d.sku for d in only_1001.drifts] == ["SKU-1001"]
