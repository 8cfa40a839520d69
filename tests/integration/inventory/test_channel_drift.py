"""Shopify's availability against the mesh's (MISSION I5, issue 5: "compares ERP, 3PL and Shopify"):
ReportChannelCount records a drift with evidence, readable with ListDrifts and published as
InventoryDriftDetected, and says whether the mesh's figure goes back to Shopify. The inventory
servicer over SQLite and PostgreSQL with its outbox relayed to a real nats-server (fixture `mesh`
of test_reconciliation)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from tests.integration.inventory import test_reconciliation as reconciliation
from tests.integration.inventory.test_reconciliation import T0, Mesh, count, published_drifts

mesh = reconciliation.mesh  # the fixture: inventory servicer, outbox relayed to a real nats-server
SHOPIFY = common_pb2.SOURCE_SYSTEM_SHOPIFY
CHANNEL = inventory_pb2.INVENTORY_BUCKET_CHANNEL_AVAILABLE


def report(
    request_id: str, sku: str, observed: int, pushed: int, version: int = 1
) -> pb.ReportChannelCountRequest:
    """Shopify shows `observed` at EAST where the adapter last pushed `pushed` (position `version`)."""
    return pb.ReportChannelCountRequest(
        request_id=request_id,
        source_system=SHOPIFY,
        channel="online-store",
        sku=sku,
        location_id="EAST",
        observed=observed,
        pushed=pushed,
        pushed_version=version,
        observed_at=Timestamp(seconds=T0 + 600),
    )


async def test_a_small_shopify_difference_is_recorded_with_evidence_and_repaired(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1001=20)

    reply = await mesh.stub.ReportChannelCount(report("verify-1", "SKU-1001", 18, 20))

    assert (reply.drifted, reply.outcome, reply.channel_available) == (True, pb.DRIFT_OUTCOME_REPAIRED, 20)
    listed = (await mesh.stub.ListDrifts(pb.ListDriftsRequest(skus=["SKU-1001"]))).drifts
    assert [(d.bucket, d.compared_system, d.expected, d.observed, d.result) for d in listed] == [
        (CHANNEL, SHOPIFY, 20, 18, 20)
    ]
    assert listed[0].drift_id == reply.drift_id
    assert "SHOPIFY shows 18, the mesh offers 20" in listed[0].evidence
    assert "on_hand 20, reserved 0" in listed[0].evidence
    events = [e for e in await published_drifts(mesh) if e.bucket == CHANNEL]
    assert [(e.compared_system, e.expected, e.observed, e.auto_repaired, e.channel) for e in events] == [
        (SHOPIFY, 20, 18, True, "online-store")
    ]
    assert events[0].meta.event_id == listed[0].event_id


async def test_shopify_showing_far_more_is_overwritten_at_once_and_raised_to_people(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1002=10)

    reply = await mesh.stub.ReportChannelCount(report("verify-1", "SKU-1002", 50, 10))

    assert (reply.drifted, reply.outcome, reply.channel_available) == (
        True,
        pb.DRIFT_OUTCOME_ESCALATED_APPLIED,
        10,
    )
    events = [e for e in await published_drifts(mesh) if e.bucket == CHANNEL]
    assert [(e.expected, e.observed, e.auto_repaired) for e in events] == [(10, 50, False)]
    assert "set to the mesh's lower 10 at once" in events[0].evidence


async def test_shopify_showing_far_less_is_held_once_not_reported_again_and_the_position_stays(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1003=40)

    first = await mesh.stub.ReportChannelCount(report("verify-1", "SKU-1003", 0, 40))
    again = await mesh.stub.ReportChannelCount(report("verify-2", "SKU-1003", 0, 40))

    assert (first.outcome, first.channel_available) == (pb.DRIFT_OUTCOME_ESCALATED_HELD, 40)
    assert (again.drifted, again.outcome, again.drift_id) == (True, pb.DRIFT_OUTCOME_ESCALATED_HELD, "")
    held = await mesh.stub.ListDrifts(pb.ListDriftsRequest(outcomes=[pb.DRIFT_OUTCOME_ESCALATED_HELD]))
    assert [(d.sku, d.expected, d.observed, d.result) for d in held.drifts] == [("SKU-1003", 40, 0, 0)]
    events = [e for e in await published_drifts(mesh) if e.bucket == CHANNEL]
    assert [(e.expected, e.observed, e.auto_repaired) for e in events] == [(40, 0, False)]
    position = await mesh.stub.GetPosition(pb.GetPositionRequest(sku="SKU-1003", location_id="EAST"))
    assert (position.position.on_hand, position.position.available_to_sell) == (40, 40)


async def test_a_difference_a_later_position_change_explains_is_no_drift(mesh: Mesh):
    await count(mesh, "snap-1", 0, SKU_1004=10)
    await mesh.stub.Reserve(
        pb.ReserveRequest(
            request_id="r-1",
            order_id="o-1",
            channel="online-store",
            lines=[pb.ReserveLine(line_id="1", sku="SKU-1004", quantity=3, location_id="EAST")],
        )
    )

    reply = await mesh.stub.ReportChannelCount(report("verify-1", "SKU-1004", 7, 10))
    repeated = await mesh.stub.ReportChannelCount(report("verify-1", "SKU-1004", 7, 10))

    assert (reply.drifted, reply.outcome, reply.channel_available, reply.drift_id) == (
        False,
        pb.DRIFT_OUTCOME_UNSPECIFIED,
        7,
        "",
    )
    assert repeated == reply
    assert (await mesh.stub.ListDrifts(pb.ListDriftsRequest(skus=["SKU-1004"]))).drifts == []
