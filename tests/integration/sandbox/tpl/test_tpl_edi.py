"""EDI X12 mode through the drop folders: 940 in; 997, 945, 846 and 944 out, parsed back by libs.x12."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx

from libs.x12 import (
    FunctionalAck,
    InventoryAdvice,
    OrderLine,
    Party,
    ReceiptAdvice,
    ShippingAdvice,
    ShippingOrder,
    envelope,
    read,
    read_one,
    write,
)
from sandbox.tpl.mailbox import EDI_CHANNEL_ID
from tests.integration.sandbox.tpl.conftest import HEADERS, wait_until

ROOT = Path(__file__).resolve().parents[4]


def order_940(number: str, lines: list[tuple[str, int]], status: str = "N") -> ShippingOrder:
    return ShippingOrder(
        order_number=number,
        purchase_order=f"PO-{number}",
        status=status,
        parties=[
            Party(
                code="ST",
                name="Grace Hopper",
                address=["2 Elm St"],
                city="Arlington",
                state="VA",
                postal_code="22201",
                country="US",
            )
        ],
        lines=[
            OrderLine(line_number=str(n), quantity=Decimal(q), unit="EA", product_ids={"SK": sku})
            for n, (sku, q) in enumerate(lines, start=1)
        ],
    )


def drop(tpl, name: str, *orders: ShippingOrder, control: int = 1) -> Path:
    transactions = [o.to_transaction(f"{n:04d}") for n, o in enumerate(orders, start=1)]
    data = write(
        envelope(
            transactions,
            sender_id="RETAILMESH",
            receiver_id="TPLSANDBOX",
            control_number=control,
            date="20260101",
            time="1200",
        )
    )
    path = tpl.edi_dir / "inbound" / name
    temporary = path.with_name(f".{name}.part")
    temporary.write_bytes(data)
    os.replace(temporary, path)
    return path


def only_document(path: Path):
    interchange = read_one(path.read_bytes())
    (group,) = interchange.groups
    (transaction,) = group.transactions
    return interchange, transaction


def test_940_is_acknowledged_with_a_997_and_becomes_an_order(tpl) -> None:
    drop(tpl, "order1.x12", order_940("EDI-1", [("SKU-1001", 2)]), order_940("EDI-2", [("SKU-1002", 1)]))

    result = tpl.client.post("/_sandbox/edi/poll").json()

    assert result["processed"] == ["order1.x12"]
    (ack_file,) = tpl.outbound("997")
    interchange, transaction = only_document(ack_file)
    ack = FunctionalAck.from_transaction(transaction)
    assert (ack.functional_id, ack.group_control_number, ack.status, ack.accepted) == ("OW", "1", "A", 2)
    assert [(t.control_number, t.status) for t in ack.transactions] == [("0001", "A"), ("0002", "A")]
    assert interchange.receiver_id == "RETAILMESH"
    orders = tpl.client.get(tpl.api("/order"), params={"ReferenceIds": "EDI-1,EDI-2"}).json()
    assert sorted(o["reference_id"] for o in orders) == ["EDI-1", "EDI-2"]
    assert {o["channel"]["name"] for o in orders} == {"EDI"}
    assert (tpl.edi_dir / "archive" / "order1.x12").exists()
    assert not list((tpl.edi_dir / "inbound").iterdir())


def test_shipping_an_edi_order_writes_a_945_with_tracking(tpl) -> None:
    drop(tpl, "order.x12", order_940("EDI-SHIP", [("SKU-1003", 2), ("SKU-1004", 1)]))
    (order_id,) = tpl.client.post("/_sandbox/edi/poll").json()["orders"]

    shipped = tpl.client.post(f"/_sandbox/orders/{order_id}/ship").json()["order"]

    (advice_file,) = tpl.outbound("945")
    _, transaction = only_document(advice_file)
    advice = ShippingAdvice.from_transaction(transaction)
    tracking = shipped["shipments"][0]["tracking"]["tracking_number"]
    assert (advice.order_number, advice.purchase_order, advice.reporting_code) == (
        "EDI-SHIP",
        "PO-EDI-SHIP",
        "F",
    )
    assert [
        (line.sku, line.quantity_ordered, line.quantity_shipped, line.status) for line in advice.lines
    ] == [
        ("SKU-1003", 2, 2, "CC"),
        ("SKU-1004", 1, 1, "CC"),
    ]
    assert advice.tracking_numbers == [tracking]
    assert next(p for p in advice.parties if p.code == "ST").city == "Arlington"


def test_partial_edi_shipment_writes_two_945s_partial_then_complete(tpl) -> None:
    drop(tpl, "split.x12", order_940("EDI-SPLIT", [("SKU-1005", 3)]))
    (order_id,) = tpl.client.post("/_sandbox/edi/poll").json()["orders"]

    shipped = tpl.client.post(f"/_sandbox/orders/{order_id}/ship", json={"split": True}).json()["order"]

    advices = [ShippingAdvice.from_transaction(only_document(p)[1]) for p in tpl.outbound("945")]
    advices.sort(key=lambda a: a.shipment_id)
    assert [(a.reporting_code, a.partial) for a in advices] == [("P", True), ("F", False)]
    assert [
        [(line.quantity_ordered, line.quantity_shipped, line.status) for line in a.lines] for a in advices
    ] == [
        [(3, 2, "CP")],
        [(3, 1, "CC")],
    ]
    assert [a.tracking_numbers[0] for a in advices] == [
        s["tracking"]["tracking_number"] for s in shipped["shipments"]
    ]


def test_malformed_940_is_rejected_in_the_997_and_creates_no_order(tpl) -> None:
    good = write(
        envelope(
            [order_940("EDI-BAD", [("SKU-1001", 1)]).to_transaction("0001")],
            sender_id="RETAILMESH",
            receiver_id="TPLSANDBOX",
            control_number=5,
            date="20260101",
            time="1200",
        )
    )
    broken = good.replace(b"SE*", b"SE*9", 1)  # SE01 now counts too many segments
    (tpl.edi_dir / "inbound" / "bad.x12").write_bytes(broken)

    tpl.client.post("/_sandbox/edi/poll")

    (ack_file,) = tpl.outbound("997")
    ack = FunctionalAck.from_transaction(only_document(ack_file)[1])
    assert ack.status == "R"
    assert [(t.status, t.errors) for t in ack.transactions] == [("R", ["4"])]
    assert tpl.client.get(tpl.api("/order"), params={"ReferenceIds": "EDI-BAD"}).json() == []


def test_940_with_an_unknown_sku_is_accepted_by_997_but_counted_as_a_refused_create(tpl) -> None:
    drop(tpl, "unknown.x12", order_940("EDI-UNK", [("NOPE", 1)]))

    tpl.client.post("/_sandbox/edi/poll")

    counts = tpl.client.get("/_sandbox/counts").json()
    assert counts["attempts"]["edi_orders"] == {"EDI-UNK": 1}
    assert counts["created"].get("edi_orders", {}) == {}


def test_resent_940_creates_the_order_once(tpl) -> None:
    drop(tpl, "a.x12", order_940("EDI-TWICE", [("SKU-1001", 1)]), control=10)
    drop(tpl, "b.x12", order_940("EDI-TWICE", [("SKU-1001", 1)]), control=11)

    tpl.client.post("/_sandbox/edi/poll")

    assert len(tpl.outbound("997")) == 2
    counts = tpl.client.get("/_sandbox/counts").json()
    assert counts["attempts"]["edi_orders"]["EDI-TWICE"] == 2
    assert counts["created"]["edi_orders"]["EDI-TWICE"] == 1
    assert tpl.warehouse.state.order_by_reference(EDI_CHANNEL_ID, "EDI-TWICE") is not None


def test_cancel_940_cancels_an_unshipped_order(tpl) -> None:
    drop(tpl, "new.x12", order_940("EDI-CXL", [("SKU-1001", 1)]), control=20)
    (order_id,) = tpl.client.post("/_sandbox/edi/poll").json()["orders"]
    drop(tpl, "cancel.x12", order_940("EDI-CXL", [("SKU-1001", 1)], status="C"), control=21)

    tpl.client.post("/_sandbox/edi/poll")

    assert tpl.client.get(tpl.api(f"/order/{order_id}")).json()["status"] == "Cancelled"


def test_file_that_is_not_x12_goes_to_the_error_folder_with_a_reason(tpl) -> None:
    (tpl.edi_dir / "inbound" / "junk.x12").write_bytes(b"\xef\xbb\xbfhello")
    (tpl.edi_dir / "inbound" / ".partial.x12.part").write_bytes(b"ISA")

    result = tpl.client.post("/_sandbox/edi/poll").json()

    assert result["rejected"] == ["junk.x12"]
    assert "ISA" in (tpl.edi_dir / "error" / "junk.x12.reason.txt").read_text()
    assert (tpl.edi_dir / "inbound" / ".partial.x12.part").exists()
    assert tpl.outbound("997") == []


def test_846_inventory_advice_matches_the_api_per_center(tpl) -> None:
    order = tpl.create_order("SO-846", [("SKU-1002", 3)]).json()
    center = order["shipments"][0]["location"]["name"]

    (name,) = tpl.client.post("/_sandbox/edi/inventory-advice").json()["written"]

    advice = InventoryAdvice.from_transaction(only_document(tpl.edi_dir / "outbound" / name)[1])
    item = next(i for i in advice.items if i.sku == "SKU-1002")
    api = tpl.inventory("SKU-1002")
    for location in ("EAST", "WEST"):
        assert item.quantity("17", location) == api[location]["on_hand_quantity"]
        assert item.quantity("33", location) == api[location]["fulfillable_quantity"]
    assert item.quantity("33", center) == api[center]["on_hand_quantity"] - 3
    assert len(advice.items) == 10


def test_periodic_846_is_written_by_the_background_loop(tpl_factory) -> None:
    with tpl_factory(simulate=True, edi_inventory_advice_s=20.0, time_scale=0.001) as tpl:
        files = wait_until(lambda: tpl.outbound("846"), what="a periodic 846")

    assert read(files[0].read_bytes())[0].groups[0].functional_id == "IB"


def test_received_return_writes_a_944_with_damaged_units(tpl) -> None:
    created = tpl.client.post(
        tpl.api("/return"),
        json={
            "reference_id": "RMA-944",
            "fulfillment_center": {"name": "WEST"},
            "inventory": [{"sku": "SKU-1010", "quantity": 4}],
        },
    ).json()

    tpl.client.post(f"/_sandbox/returns/{created['id']}/receive", json={"damaged": {"SKU-1010": 1}})

    (path,) = tpl.outbound("944")
    receipt = ReceiptAdvice.from_transaction(only_document(path)[1])
    assert (receipt.receipt_number, receipt.order_number) == (str(created["id"]), "RMA-944")
    (line,) = receipt.lines
    assert (line.sku, line.quantity, line.damaged) == ("SKU-1010", 4, 1)
    assert [p.name for p in receipt.parties] == ["WEST"]


def test_outbound_files_never_appear_half_written(tpl) -> None:
    for n in range(5):
        drop(tpl, f"o{n}.x12", order_940(f"EDI-ATOM-{n}", [("SKU-1001", 1)]), control=30 + n)

    tpl.client.post("/_sandbox/edi/poll")

    names = [p.name for p in (tpl.edi_dir / "outbound").iterdir()]
    assert len(names) == 5 and len(set(names)) == 5
    assert not [n for n in names if n.startswith(".") or n.endswith(".part")]
    for path in tpl.outbound("997"):
        assert FunctionalAck.from_transaction(only_document(path)[1]).status == "A"


def test_poll_fault_leaves_the_940_in_the_mailbox_for_the_next_poll(tpl_factory) -> None:
    with tpl_factory(simulate=True, edi_poll_s=10.0, tick_s=1000.0) as tpl:
        tpl.client.put("/_sandbox/faults", json={"operation": "edi.poll", "fault": {"error_rate": 1.0}})
        drop(tpl, "later.x12", order_940("EDI-LATER", [("SKU-1001", 1)]))
        wait_until(lambda: tpl.client.get("/_sandbox/faults").json()["faults"], what="fault set")
        assert (tpl.edi_dir / "inbound" / "later.x12").exists()

        tpl.client.delete("/_sandbox/faults")

        wait_until(lambda: tpl.outbound("997"), what="the 997 after the fault is cleared")
    assert not (tpl.edi_dir / "inbound" / "later.x12").exists()


def test_python_dash_m_sandbox_tpl_serves_with_edi_folders(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    edi = tmp_path / "edi"
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.tpl", "--port", str(port), "--seed", "0", "--edi-dir", str(edi)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def up() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/2026-07/location", headers=HEADERS, timeout=1)
            except httpx.HTTPError:
                assert process.poll() is None, "the stand-in exited"
                return None

        response = wait_until(up, timeout_s=20, what="the stand-in to listen")
        assert [c["name"] for c in response.json()] == ["EAST", "WEST"]
        assert (edi / "inbound").is_dir() and (edi / "outbound").is_dir()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
