"""A slow 3PL on SQLite (docs/decisions/0027-prepare-phase-outside-the-transaction.md): the
tpl-adapter calls the 3PL before the bus transaction, so releases reach the warehouse at the same
time instead of one by one behind the SQLite writer, and a cancellation racing a release leaves
the release's one 3PL order cancelled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from retail.orders.v1 import events_pb2 as order_events
from sandbox.common.server import serve_in_thread
from sandbox.tpl.app import create_app
from sandbox.tpl.config import TplSettings
from services.tpl_adapter.store import ReleaseRow
from tests.integration.tpl_adapter.conftest import Mesh, release, wait_until
from tests.support.inflight import InFlight

#: What every order create costs at the slowed 3PL.
LATENCY_MS = 1000
RELEASES = 8


@pytest.fixture
def stand_in(tmp_path: Path) -> InFlight:
    """The 3PL stand-in, answering every order create a second late, behind a request recorder."""
    settings = TplSettings(
        simulate=False,
        edi_dir=tmp_path / "edi",
        webhook_backoff_s=0.2,
        time_scale=1.0,
        faults={"order.create": {"latency_ms": LATENCY_MS}},
    )
    return InFlight(
        create_app(settings),
        path_suffix="/order",
        key_from_query=lambda query: query.get("ReferenceIds", [""])[0],
        body_key="reference_id",
    )


@pytest.fixture
def tpl_sandbox(stand_in: InFlight) -> Iterator[str]:
    """The recorded, slowed stand-in on a free loopback port (the adapter's store is SQLite)."""
    with serve_in_thread(stand_in) as url:
        yield url


async def test_releases_sent_together_are_created_at_the_3pl_at_the_same_time(
    mesh: Mesh, stand_in: InFlight
) -> None:
    events = [release(f"ord-slow-{i}") for i in range(RELEASES)]

    for event in events:
        await mesh.observer.publish(event, key=event.order_id)

    accepted = await wait_until(
        lambda: _now(
            len(mesh.observer.of(order_events.WarehouseReleaseAccepted)) >= RELEASES
            and mesh.observer.of(order_events.WarehouseReleaseAccepted)
        ),
        within=60.0,
        what=f"{RELEASES} WarehouseReleaseAccepted",
    )
    assert sorted(e.release_id for e in accepted) == sorted(e.release_id for e in events)
    assert (await mesh.counts())["created"]["orders"] == {e.release_id: 1 for e in events}
    # One at a time behind the SQLite writer, no two releases would ever be at the 3PL together.
    assert stand_in.most_keys_in_flight() >= RELEASES // 2


async def test_a_release_cancelled_while_its_3pl_order_is_created_leaves_it_cancelled(
    mesh: Mesh, stand_in: InFlight
) -> None:
    await mesh.tpl_http.put(
        "/_sandbox/faults", json={"operation": "order.create", "fault": {"latency_ms": 3 * LATENCY_MS}}
    )
    event = release("ord-race")
    await mesh.observer.publish(event, key=event.order_id)
    await wait_until(lambda: _now(stand_in.creates(event.release_id)), what="the create sent")

    await mesh.observer.publish(
        order_events.OrderCancellationRequested(
            order_id=event.order_id, release_id=event.release_id, whole_release=True
        ),
        key=event.order_id,
    )
    published = time.monotonic()
    (done,) = await wait_until(
        lambda: _now(mesh.observer.of(order_events.WarehouseCancellationAccepted)),
        within=30.0,
        what="WarehouseCancellationAccepted",
    )

    [create] = stand_in.creates(event.release_id)
    assert create.ended is not None and published < create.ended  # cancelled while being created
    [tpl_order] = await mesh.tpl_orders(event.release_id)
    assert tpl_order["status"] == "Cancelled"
    assert (await mesh.counts())["created"]["orders"] == {event.release_id: 1}
    assert done.release_id == event.release_id
    assert (await _row(mesh, event.release_id)).status == "cancelled"


async def test_a_release_answered_by_another_replica_before_the_commit_is_answered_once(
    mesh: Mesh,
) -> None:
    event = release("ord-replica")
    await _answer_by_another_replica_when_created(mesh, event)

    await mesh.observer.publish(event, key=event.order_id)
    await wait_until(
        lambda: mesh.adapter.events.inbox.seen("tpl-adapter", event.meta.event_id), what="handled"
    )

    [tpl_order] = await mesh.tpl_orders(event.release_id)
    assert (await mesh.counts())["created"]["orders"] == {event.release_id: 1}
    row = await _row(mesh, event.release_id)
    assert (row.status, row.warehouse_order_id) == ("accepted", str(tpl_order["id"]))
    await asyncio.sleep(0.5)  # the relay would have published an acceptance by now
    assert mesh.observer.of(order_events.WarehouseReleaseAccepted) == []  # the other replica's to send


async def _answer_by_another_replica_when_created(mesh: Mesh, event: Any) -> None:
    """Right after the 3PL answers the create of `event`'s order, commit the accepted row another
    replica that adopted the same 3PL order (by its reference id) leaves."""
    db = mesh.adapter.db

    async def answer(response: httpx.Response) -> None:
        request = response.request
        if request.method == "POST" and request.url.path.endswith("/order") and response.is_success:
            await response.aread()
            now = datetime.now(UTC)
            async with db.transaction() as session:
                if await session.get(ReleaseRow, event.release_id) is None:
                    session.add(
                        ReleaseRow(
                            release_id=event.release_id,
                            order_id=event.order_id,
                            location_id=event.location_id,
                            lines=[],
                            mode="api",
                            status="accepted",
                            warehouse_order_id=str(response.json()["id"]),
                            shipped=False,
                            created_at=now,
                            updated_at=now,
                        )
                    )

    mesh.adapter.api._http.event_hooks["response"].append(answer)


async def _row(mesh: Mesh, release_id: str) -> ReleaseRow:
    async with mesh.adapter.db.read() as session:
        row = await session.get(ReleaseRow, release_id)
        assert row is not None
        return row


async def _now(value: Any) -> Any:
    return value
