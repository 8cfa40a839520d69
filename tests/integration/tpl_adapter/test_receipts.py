"""3PL receipts into inventory (MISSION I5, issue 5): a warehouse receiving order completed at the
3PL stand-in (real HTTP) is polled, recorded with a real inventory servicer once, and marked synced;
the 944 the stand-in writes for the same receipt applies nothing twice; a completed return puts
good units back on hand and damaged ones aside."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from libs.x12 import ReceiptAdvice, read
from sandbox.common.server import serve_in_thread
from sandbox.tpl.app import create_app
from sandbox.tpl.config import API_VERSION, DEFAULT_TOKEN, TplSettings
from services.tpl_adapter.clients.tpl_api import TplApi
from services.tpl_adapter.receipts import ReceiptReporter, ReceivingPuller
from services.tpl_adapter.translate.receipt import receipt_from_944, receipt_from_return
from tests.integration.inventory import test_reconciliation as reconciliation
from tests.integration.inventory.test_reconciliation import Mesh, count, position

HEADERS = {"Authorization": f"Bearer {DEFAULT_TOKEN}", "shipbob_channel_id": "1001"}

mesh = reconciliation.mesh  # the fixture: inventory servicer, outbox relayed to a real nats-server


@pytest.fixture
def tpl_url(tmp_path: Path) -> Iterator[str]:
    """The 3PL stand-in (EDI folders on, simulation off) on a free loopback port."""
    server = serve_in_thread(create_app(TplSettings(simulate=False, edi_dir=tmp_path / "edi")))
    yield server.__enter__()
    server.__exit__(None, None, None)


@pytest.fixture
async def tpl(tpl_url: str) -> AsyncIterator[tuple[TplApi, httpx.AsyncClient]]:
    """The adapter's 3PL client and a plain client for the stand-in."""
    api = TplApi(tpl_url, DEFAULT_TOKEN, channel_id="1001", version=API_VERSION)
    async with httpx.AsyncClient(base_url=tpl_url, headers=HEADERS, timeout=10) as http:
        yield api, http
    await api.aclose()


async def test_a_completed_receiving_order_raises_on_hand_once_and_is_marked_synced(
    mesh: Mesh,
    tpl: tuple[TplApi, httpx.AsyncClient],
    tmp_path: Path,
):
    api, http = tpl
    await count(mesh, "snap-1", 0, SKU_1002=10)
    puller = ReceivingPuller(api, ReceiptReporter(mesh.stub))
    created = await http.post(
        f"/{API_VERSION}/receiving",
        json={
            "fulfillment_center": {"id": 1},
            "purchase_order_number": "106042",
            "boxes": [{"box_items": [{"sku": "SKU-1002", "quantity": 8}]}],
        },
    )
    wro = created.json()
    assert await puller.pull() == []  # awaiting arrival: nothing received yet

    await http.post(f"/_sandbox/receiving/{wro['id']}/receive", json={"damaged": {"SKU-1002": 2}})
    first = await puller.pull()
    second = await puller.pull()

    after = await position(mesh, "SKU-1002")
    assert (first, second) == ([wro["id"]], [])
    assert (after.on_hand, after.damaged, after.available_to_sell) == (18, 2, 16)
    synced = (await http.get(f"/{API_VERSION}/receiving/{wro['id']}")).json()
    assert synced["external_sync_timestamp"]

    [name] = [p for p in (tmp_path / "edi" / "outbound").iterdir() if p.name.startswith("944")]
    [interchange] = read((tmp_path / "edi" / "outbound" / name).read_bytes())
    advice = ReceiptAdvice.from_transaction(interchange.groups[0].transactions[0])
    request = receipt_from_944(advice, control="1:0001")
    assert (request.receipt.id, request.document_number, request.location_id) == (
        f"wro-{wro['id']}",
        "106042",
        "EAST",
    )
    assert await ReceiptReporter(mesh.stub).record(request) == 0
    assert (await position(mesh, "SKU-1002")).on_hand == 18


async def test_a_completed_return_restocks_good_units_and_sets_damaged_ones_aside(
    mesh: Mesh,
    tpl: tuple[TplApi, httpx.AsyncClient],
):
    _, http = tpl
    await count(mesh, "snap-1", 0, SKU_1002=10)
    created = await http.post(
        f"/{API_VERSION}/return",
        json={
            "reference_id": "rma-1",
            "fulfillment_center": {"id": 1},
            "inventory": [{"sku": "SKU-1002", "quantity": 4}],
        },
    )
    received = await http.post(
        f"/_sandbox/returns/{created.json()['id']}/receive", json={"damaged": {"SKU-1002": 1}}
    )
    [event] = received.json()["events"]
    payload = (await http.get(f"/{API_VERSION}/return/{event['id']}")).json()

    applied = await ReceiptReporter(mesh.stub).record(receipt_from_return(payload))
    await ReceiptReporter(mesh.stub).record(receipt_from_return(payload))  # a redelivered webhook

    after = await position(mesh, "SKU-1002")
    assert applied == 1
    assert (after.on_hand, after.damaged, after.available_to_sell) == (14, 1, 13)
