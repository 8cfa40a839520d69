"""3PL stock adjustments into inventory (MISSION I5, issue 5): the 3PL stand-in (real HTTP, real EDI
folders) adjusts its stock and writes a 947; the tpl-adapter's EDI poller reads it, calls Adjust on
a real inventory servicer (its outbox relayed to a real nats-server) once per W19 line, and answers
with our 997."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from libs import bus
from libs.store import migrated
from libs.x12 import FunctionalAck, read_one
from retail.inventory.v1 import inventory_pb2
from sandbox.common.server import serve_in_thread
from sandbox.tpl.app import create_app
from sandbox.tpl.config import TplSettings
from services.tpl_adapter import store
from services.tpl_adapter.clients.mailbox import EdiMailbox
from services.tpl_adapter.edi.poller import EdiPoller
from services.tpl_adapter.webhooks.reporter import ShipmentReporter
from tests.integration.inventory import test_reconciliation as reconciliation
from tests.integration.inventory.test_reconciliation import Mesh, count, position, stock_adjusted

mesh = reconciliation.mesh  # the fixture: inventory servicer, outbox relayed to a real nats-server


@pytest.fixture
def tpl(tmp_path: Path) -> Iterator[httpx.Client]:
    """The 3PL stand-in (EDI folders under tmp_path/edi, simulation off), a client for it."""
    with (
        serve_in_thread(create_app(TplSettings(simulate=False, edi_dir=tmp_path / "edi"))) as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        yield client


@pytest.fixture
async def poller(mesh: Mesh, tmp_path: Path) -> AsyncIterator[EdiPoller]:
    """The tpl-adapter's EDI poller on its own database, reading the stand-in's folders on demand."""
    async with migrated(
        f"sqlite+aiosqlite:///{tmp_path / 'tpl.db'}", [bus.MIGRATIONS, store.MIGRATIONS]
    ) as db:
        yield EdiPoller(
            db,
            bus.Outbox(producer="tpl-adapter"),
            EdiMailbox(tmp_path / "edi"),
            ShipmentReporter(db, None),  # no 945 here
            mesh.stub,
            sender_id="RETAILMESH",
            receiver_id="TPLSANDBOX",
            interval_s=60,
        )


def adjust(tpl: httpx.Client, sku: str, delta: int, reason: str) -> dict:
    reply = tpl.post(
        "/_sandbox/inventory/adjust", json={"sku": sku, "location": "EAST", "delta": delta, "reason": reason}
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_units_found_damaged_move_to_damaged_once_and_our_997_accepts_the_947(
    mesh: Mesh, tpl: httpx.Client, poller: EdiPoller, tmp_path: Path
):
    await count(mesh, "snap-1", 0, SKU_1003=50)
    adjust(tpl, "SKU-1003", 3, "damaged")
    (written,) = (tmp_path / "edi" / "outbound").glob("947_*.x12")
    again = tmp_path / "947_copy.x12"
    shutil.copy(written, again)

    applied = await poller.poll()
    shutil.move(again, tmp_path / "edi" / "outbound" / "947_000000001_resent.x12")
    applied_again = await poller.poll()

    after = await position(mesh, "SKU-1003")
    assert (applied, applied_again) == ([written.name], ["947_000000001_resent.x12"])
    assert (after.on_hand, after.damaged, after.available_to_sell) == (50, 3, 47)
    adjusted = [e for e in await stock_adjusted(mesh) if e.reason == inventory_pb2.ADJUSTMENT_REASON_DAMAGE]
    assert len(adjusted) == 1
    assert [(c.bucket, c.delta) for c in adjusted[0].changes] == [(inventory_pb2.INVENTORY_BUCKET_DAMAGED, 3)]
    assert adjusted[0].reference.name.startswith("947 ADJ")
    acks = [
        FunctionalAck.from_transaction(read_one(p.read_bytes()).groups[0].transactions[0])
        for p in sorted((tmp_path / "edi" / "inbound").glob("997_*.x12"))
    ]
    assert [(a.functional_id, a.status) for a in acks] == [("AW", "A"), ("AW", "A")]


async def test_lost_and_found_units_move_on_hand_and_repaired_ones_leave_damaged(
    mesh: Mesh, tpl: httpx.Client, poller: EdiPoller
):
    await count(mesh, "snap-1", 0, SKU_1004=40, SKU_1005=20)
    adjust(tpl, "SKU-1004", -5, "lost")
    adjust(tpl, "SKU-1004", 2, "found")
    adjust(tpl, "SKU-1005", 4, "damaged")
    adjust(tpl, "SKU-1005", -1, "damaged")

    assert len(await poller.poll()) == 4

    lost_found = await position(mesh, "SKU-1004")
    damaged = await position(mesh, "SKU-1005")
    assert (lost_found.on_hand, lost_found.available_to_sell) == (37, 37)
    assert (damaged.on_hand, damaged.damaged, damaged.available_to_sell) == (20, 3, 17)


async def test_a_count_taken_before_a_947_loss_does_not_undo_the_loss(
    mesh: Mesh, tpl: httpx.Client, poller: EdiPoller
):
    await count(mesh, "snap-1", 0, SKU_1006=30)
    adjust(tpl, "SKU-1006", -2, "lost")  # now: after both counts' as_of
    await poller.poll()

    await count(mesh, "snap-2", 60, SKU_1006=30)  # the warehouse's count from before the loss

    assert (await position(mesh, "SKU-1006")).on_hand == 28
