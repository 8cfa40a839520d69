"""The inventory servicer stack on port 0 over a real database: every RPC, validation naming the
field, request_id replay, and the published events parsing as their declared types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import symbol_database
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from libs import bus
from libs.bus.outbox import Outbox
from libs.bus.tables import OutboxRow
from libs.rpc import RpcServer
from libs.store import Database, migrated
from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_pb2, inventory_service_pb2_grpc
from retail.inventory.v1 import inventory_service_pb2 as pb
from services.inventory.api.servicer import InventoryServiceServicer
from services.inventory.app import SERVICE
from services.inventory.config import DEFAULT_POLICY, InventorySettings
from services.inventory.domain.policy import load_policy
from services.inventory.ledger import Ledger
from services.inventory.store import MIGRATIONS

TPL = common_pb2.SOURCE_SYSTEM_TPL


@dataclass
class Served:
    """The inventory stub and its database."""

    stub: inventory_service_pb2_grpc.InventoryServiceStub
    db: Database


@pytest.fixture
async def served(database_url: str) -> AsyncIterator[Served]:
    """The real servicer and interceptors on a free port over a migrated database."""
    async with migrated(database_url, [bus.MIGRATIONS, MIGRATIONS]) as db:
        ledger = Ledger(db, Outbox(producer="inventory"), load_policy(DEFAULT_POLICY))
        server = RpcServer(
            InventorySettings(grpc_port=0, metrics_port=0),
            servicers=[
                (
                    inventory_service_pb2_grpc.add_InventoryServiceServicer_to_server,
                    InventoryServiceServicer(ledger),
                )
            ],
            service_names=[SERVICE],
        )
        port = await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            yield Served(inventory_service_pb2_grpc.InventoryServiceStub(channel), db)
        finally:
            await channel.close()
            await server.stop(0)


def ts(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


async def snapshot(stub, request_id: str, location: str, as_of: int, **on_hand: int):
    return await stub.ApplySnapshot(
        pb.ApplySnapshotRequest(
            request_id=request_id,
            location_id=location,
            source_system=TPL,
            as_of=ts(as_of),
            lines=[pb.SnapshotLine(sku=sku.replace("_", "-"), on_hand=q) for sku, q in on_hand.items()],
        )
    )


async def events(db: Database) -> list:
    async with db.read() as session:
        rows = (await session.execute(select(OutboxRow).order_by(OutboxRow.id))).scalars().all()
    parsed = []
    for row in rows:
        cls = symbol_database.Default().GetSymbol(row.event_type)
        parsed.append(cls.FromString(row.payload))
    return parsed


def reserve(request_id: str, order_id: str, *lines: tuple[str, str, int], location: str = "", partial=False):
    return pb.ReserveRequest(
        request_id=request_id,
        order_id=order_id,
        channel="online-store",
        lines=[
            pb.ReserveLine(line_id=lid, sku=sku, quantity=q, location_id=location) for lid, sku, q in lines
        ],
        allow_partial=partial,
    )


async def test_a_snapshot_creates_positions_and_availability_is_on_hand_minus_claims(served: Served):
    applied = await snapshot(served.stub, "snap-1", "EAST", 100, SKU_1001=10, SKU_1002=4)

    reply = await served.stub.GetPosition(pb.GetPositionRequest(sku="SKU-1001", location_id="EAST"))

    assert applied.applied and applied.positions_changed == 2
    assert reply.position.on_hand == 10 and reply.position.available_to_sell == 10
    assert {c.channel: c.available for c in reply.position.channels}["b2b"] == 8


async def test_an_older_snapshot_is_ignored_and_never_touches_reservations(served: Served):
    await snapshot(served.stub, "snap-1", "EAST", 100, SKU_1001=10)
    await served.stub.Reserve(reserve("r-1", "o-1", ("1", "SKU-1001", 3)))

    newer = await snapshot(served.stub, "snap-2", "EAST", 200, SKU_1001=8)
    older = await snapshot(served.stub, "snap-0", "EAST", 50, SKU_1001=99)
    position = (
        await served.stub.GetPosition(pb.GetPositionRequest(sku="SKU-1001", location_id="EAST"))
    ).position

    assert newer.applied and not older.applied
    assert (position.on_hand, position.reserved, position.available_to_sell) == (8, 3, 5)
    assert [(d.sku, d.expected, d.observed) for d in newer.drifts] == [("SKU-1001", 10, 8)]


async def test_reserve_routes_lines_and_reports_short_lines_with_a_reason(served: Served):
    await snapshot(served.stub, "snap-1", "EAST", 100, SKU_1001=5)

    ok = await served.stub.Reserve(reserve("r-1", "o-1", ("1", "SKU-1001", 2)))
    short = await served.stub.Reserve(
        reserve("r-2", "o-2", ("1", "SKU-1001", 2), ("2", "SKU-1001", 9), ("3", "SKU-1009", 1))
    )

    assert ok.outcome == pb.RESERVE_OUTCOME_RESERVED
    assert [(r.line_id, r.location_id, r.quantity) for r in ok.reservations] == [("1", "EAST", 2)]
    assert short.outcome == pb.RESERVE_OUTCOME_REJECTED and not short.reservations
    assert {(s.line_id, s.reason.code) for s in short.shortages} == {
        ("2", "OUT_OF_STOCK"),
        ("3", "UNKNOWN_SKU"),
    }
    position = (
        await served.stub.GetPosition(pb.GetPositionRequest(sku="SKU-1001", location_id="EAST"))
    ).position
    assert position.reserved == 2


async def test_partial_reserve_keeps_what_fits_for_backorders(served: Served):
    await snapshot(served.stub, "snap-1", "EAST", 100, SKU_1001=5)

    reply = await served.stub.Reserve(
        reserve("r-1", "o-1", ("1", "SKU-1001", 2), ("2", "SKU-1002", 1), partial=True)
    )

    assert reply.outcome == pb.RESERVE_OUTCOME_PARTIALLY_RESERVED
    assert [r.line_id for r in reply.reservations] == ["1"]
    assert [s.line_id for s in reply.shortages] == ["2"]


async def test_a_partly_reserved_line_gets_the_rest_when_stock_arrives_and_never_more(served: Served):
    await snapshot(served.stub, "snap-1", "EAST", 100, SKU_1001=1)
    first = await served.stub.Reserve(reserve("r-1", "o-1", ("1", "SKU-1001", 3), partial=True))
    assert first.outcome == pb.RESERVE_OUTCOME_PARTIALLY_RESERVED
    assert [(s.line_id, s.shortfall) for s in first.shortages] == [("1", 2)]

    await snapshot(served.stub, "snap-2", "EAST", 200, SKU_1001=5)
    second = await served.stub.Reserve(reserve("r-2", "o-1", ("1", "SKU-1001", 3), partial=True))
    third = await served.stub.Reserve(reserve("r-3", "o-1", ("1", "SKU-1001", 3), partial=True))

    assert second.outcome == third.outcome == pb.RESERVE_OUTCOME_RESERVED
    assert [(r.line_id, r.location_id, r.quantity) for r in third.reservations] == [("1", "EAST", 3)]
    position = (
        await served.stub.GetPosition(pb.GetPositionRequest(sku="SKU-1001", location_id="EAST"))
    ).position
    assert position.reserved == 3


async def test_repeating_a_request_id_returns_the_first_result_and_changes_nothing(served: Served):
    await snapshot(served.stub, "snap-1", "EAST", 100, SKU_1001=5)

    first = await served.stub.Reserve(reserve("r-1", "o-1", ("1", "SKU-1001", 2)))
    await snapshot(served.stub, "snap-2", "EAST", 200, SKU_1001=0)
    again = await served.stub.Reserve(reserve("r-1", "o-1", ("1", "SKU-1001", 2)))
    other_id = await served.stub.Reserve(reserve("r-9", "o-1", ("1", "SKU-1001", 2)))

    assert again == first
    assert other_id.outcome == pb.RESERVE_OUTCOME_RESERVED  # the line was already reserved
    position = (
        await served.stub.GetPosition(pb.GetPositionRequest(sku="SKU-1001", location_id="EAST"))
    ).position
    assert position.reserved == 2


async def test_a_request_id_reused_for_another_request_is_refused(served: Served):
    await served.stub.Reserve(reserve("r-1", "o-1", ("1", "SKU-1001", 2)))

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await served.stub.Reserve(reserve("r-1", "o-2", ("1", "SKU-1001", 2)))

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith("request_id:")


async def test_commit_release_and_list_reservations_follow_the_order(served: Served):
    await snapshot(served.stub, "snap-1", "EAST", 100, SKU_1001=5, SKU_1002=5)
    await served.stub.Reserve(reserve("r-1", "o-1", ("1", "SKU-1001", 2), ("2", "SKU-1002", 1)))

    committed = await served.stub.Commit(
        pb.CommitRequest(
            request_id="c-1", order_id="o-1", release_id="o-1:EAST:1", location_id="EAST", line_ids=["1"]
        )
    )
    released = await served.stub.Release(
        pb.ReleaseRequest(request_id="x-1", order_id="o-1", reason=pb.RELEASE_REASON_ORDER_CANCELLED)
    )
    listed = await served.stub.ListReservations(
        pb.ListReservationsRequest(order_id="o-1", include_closed=True)
    )
    p1 = (await served.stub.GetPosition(pb.GetPositionRequest(sku="SKU-1001", location_id="EAST"))).position

    assert [r.line_id for r in committed.committed] == ["1"]
    assert sorted(r.line_id for r in released.released) == ["1", "2"]
    assert {r.state for r in listed.reservations} == {inventory_pb2.RESERVATION_STATE_RELEASED}
    assert (p1.reserved, p1.committed, p1.available_to_sell) == (0, 0, 5)


async def test_a_released_order_reserved_again_after_a_replay_holds_its_lines_once_more(served: Served):
    await snapshot(served.stub, "snap-1", "EAST", 100, SKU_1001=5)
    await served.stub.Reserve(reserve("r-1", "o-1", ("1", "SKU-1001", 2)))
    await served.stub.Release(
        pb.ReleaseRequest(request_id="x-1", order_id="o-1", reason=pb.RELEASE_REASON_ORDER_REJECTED)
    )

    again = await served.stub.Reserve(reserve("r-2", "o-1", ("1", "SKU-1001", 2)))

    listed = await served.stub.ListReservations(
        pb.ListReservationsRequest(order_id="o-1", include_closed=True)
    )
    p1 = (await served.stub.GetPosition(pb.GetPositionRequest(sku="SKU-1001", location_id="EAST"))).position
    assert again.outcome == pb.RESERVE_OUTCOME_RESERVED
    assert [r.state for r in listed.reservations] == [inventory_pb2.RESERVATION_STATE_ACTIVE]
    assert (p1.reserved, p1.available_to_sell) == (2, 3)


async def test_adjust_changes_buckets_and_refuses_a_negative_bucket_naming_the_field(served: Served):
    adjusted = await served.stub.Adjust(
        pb.AdjustRequest(
            request_id="a-1",
            sku="SKU-1003",
            location_id="WEST",
            changes=[
                inventory_pb2.BucketDelta(bucket=inventory_pb2.INVENTORY_BUCKET_ON_HAND, delta=6),
                inventory_pb2.BucketDelta(bucket=inventory_pb2.INVENTORY_BUCKET_DAMAGED, delta=1),
            ],
            reason=inventory_pb2.ADJUSTMENT_REASON_RECEIPT,
            source_system=TPL,
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await served.stub.Adjust(
            pb.AdjustRequest(
                request_id="a-2",
                sku="SKU-1003",
                location_id="WEST",
                changes=[inventory_pb2.BucketDelta(bucket=inventory_pb2.INVENTORY_BUCKET_ON_HAND, delta=-7)],
                reason=inventory_pb2.ADJUSTMENT_REASON_CYCLE_COUNT,
                source_system=TPL,
            )
        )

    assert adjusted.position.available_to_sell == 5
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith("changes[0].delta:")


async def test_route_order_ships_from_one_location_when_it_can(served: Served):
    await snapshot(served.stub, "s-e", "EAST", 100, SKU_1001=5)
    await snapshot(served.stub, "s-w", "WEST", 100, SKU_1001=5, SKU_1002=5)
    destination = common_pb2.Destination(country_code="US", province_code="NY")

    reply = await served.stub.RouteOrder(
        pb.RouteOrderRequest(
            channel="online-store",
            destination=destination,
            lines=[
                pb.RouteLine(line_id="1", sku="SKU-1001", quantity=2),
                pb.RouteLine(line_id="2", sku="SKU-1002", quantity=1),
            ],
        )
    )
    near = await served.stub.RouteOrder(
        pb.RouteOrderRequest(
            channel="online-store",
            destination=destination,
            lines=[pb.RouteLine(line_id="1", sku="SKU-1001", quantity=2)],
        )
    )

    assert {a.location_id for a in reply.assignments} == {"WEST"}
    assert [a.location_id for a in near.assignments] == ["EAST"]
    assert reply.rule_set_version == load_policy(DEFAULT_POLICY).version


async def test_check_availability_answers_per_location_for_a_cart(served: Served):
    await snapshot(served.stub, "s-e", "EAST", 100, SKU_1001=1)
    await snapshot(served.stub, "s-w", "WEST", 100, SKU_1001=2)

    reply = await served.stub.CheckAvailability(
        pb.CheckAvailabilityRequest(channel="online-store", items=[pb.CartItem(sku="SKU-1001", quantity=3)])
    )

    assert reply.fulfillable and not reply.single_location
    assert reply.items[0].available == 3
    assert sorted(a.quantity for a in reply.suggested_assignments) == [1, 2]


async def test_list_positions_pages_in_sku_then_location_order(served: Served):
    await snapshot(served.stub, "s-e", "EAST", 100, SKU_1001=1, SKU_1002=1)
    await snapshot(served.stub, "s-w", "WEST", 100, SKU_1001=2)

    first = await served.stub.ListPositions(pb.ListPositionsRequest(page=common_pb2.PageRequest(page_size=2)))
    second = await served.stub.ListPositions(
        pb.ListPositionsRequest(
            page=common_pb2.PageRequest(page_size=2, page_token=first.page.next_page_token)
        )
    )

    assert [(p.sku, p.location_id) for p in first.positions] == [("SKU-1001", "EAST"), ("SKU-1001", "WEST")]
    assert [(p.sku, p.location_id) for p in second.positions] == [("SKU-1002", "EAST")]
    assert second.page.next_page_token == ""


@pytest.mark.parametrize(
    ("call", "request_", "field"),
    [
        (
            "Reserve",
            pb.ReserveRequest(
                order_id="o-1",
                channel="online-store",
                lines=[pb.ReserveLine(line_id="1", sku="S", quantity=1)],
            ),
            "request_id",
        ),
        ("Reserve", reserve("r-1", "o-1", ("1", "SKU-1001", 1), ("1", "SKU-1002", 1)), "lines[1].line_id"),
        ("Reserve", reserve("r-1", "o-1", ("1", "bad sku", 1)), "lines[0].sku"),
        ("GetPosition", pb.GetPositionRequest(sku="SKU-1001"), "location_id"),
        (
            "ApplySnapshot",
            pb.ApplySnapshotRequest(
                request_id="s",
                location_id="EAST",
                source_system=TPL,
                as_of=ts(1),
                lines=[pb.SnapshotLine(sku="A", on_hand=1, damaged=2)],
            ),
            "lines[0].on_hand",
        ),
    ],
)
async def test_invalid_requests_are_refused_naming_the_field(served: Served, call, request_, field):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await getattr(served.stub, call)(request_)

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(field), error.value.details()


async def test_every_change_publishes_events_that_parse_as_their_declared_types(served: Served):
    await snapshot(served.stub, "snap-1", "EAST", 100, SKU_1001=5)
    await served.stub.Reserve(reserve("r-1", "o-1", ("1", "SKU-1001", 2)))
    await served.stub.Reserve(reserve("r-2", "o-2", ("1", "SKU-1001", 9)))
    await served.stub.Release(
        pb.ReleaseRequest(request_id="x-1", order_id="o-1", reason=pb.RELEASE_REASON_ORDER_REJECTED)
    )

    published = await events(served.db)

    names = [type(e).__name__ for e in published]
    assert names == [
        "SnapshotApplied",
        "AvailabilityChanged",
        "StockReserved",
        "AvailabilityChanged",
        "ReservationRejected",
        "StockReleased",
        "AvailabilityChanged",
    ]
    assert all(e.meta.event_id and e.meta.correlation_id for e in published)
    changed = [e for e in published if type(e).__name__ == "AvailabilityChanged"]
    assert [(e.available_to_sell, e.meta.key) for e in changed] == [
        (5, "SKU-1001@EAST"),
        (3, "SKU-1001@EAST"),
        (5, "SKU-1001@EAST"),
    ]
    assert changed[1].position_version < changed[2].position_version
