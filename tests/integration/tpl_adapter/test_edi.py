"""The EDI X12 path against the 3PL stand-in's drop folders: a release becomes a 940 with a
persisted control number, the partner's 997 accepts it, its 945 becomes one ShipmentConfirmed
(also when the same shipment arrives by webhook), and its 846 reaches ApplySnapshot."""

from __future__ import annotations

import pytest

from libs.x12 import ShippingOrder, read_one
from retail.orders.v1 import events_pb2 as order_events
from retail.shipments.v1 import events_pb2 as shipment_events
from tests.integration.tpl_adapter.conftest import Mesh, release, wait_until

pytestmark = pytest.mark.parametrize("tpl_mode", ["edi"], indirect=True)


async def _async(value):
    return value


async def test_a_release_becomes_a_940_the_997_accepts_and_the_945_confirms_one_shipment(mesh: Mesh):
    event = release("ord-edi", lines=(("L1", "SKU-1006", 1),))
    await mesh.observer.publish(event, key=event.order_id)

    files = await wait_until(lambda: _async(sorted((mesh.edi_dir / "inbound").glob("940_*.x12"))), what="940")
    order = ShippingOrder.from_transaction(read_one(files[0].read_bytes()).groups[0].transactions[0])
    await mesh.tpl_http.post("/_sandbox/edi/poll")
    (accepted,) = await wait_until(
        lambda: _async(mesh.observer.of(order_events.WarehouseReleaseAccepted)), what="997"
    )
    (tpl_order,) = await mesh.tpl_orders(event.release_id)
    await mesh.ship(tpl_order["id"])
    (confirmed,) = await wait_until(
        lambda: _async(mesh.observer.of(shipment_events.ShipmentConfirmed)), what="945"
    )
    await wait_until(lambda: _async(any((mesh.edi_dir / "received").glob("945_*.x12"))), what="945 read")

    assert order.order_number == event.release_id
    assert [(x.sku, int(x.quantity)) for x in order.lines] == [("SKU-1006", 1)]
    assert accepted.release_id == event.release_id
    assert (await mesh.counts())["created"]["edi_orders"] == {event.release_id: 1}
    assert confirmed.shipment.warehouse_shipment.id == str(tpl_order["shipments"][0]["id"])
    assert confirmed.shipment.packages[0].tracking_number.startswith("1Z")
    assert len(mesh.observer.of(shipment_events.ShipmentConfirmed)) == 1


async def test_control_numbers_of_written_interchanges_increase(mesh: Mesh):
    for n in range(3):
        event = release(f"ord-ctl{n}")
        await mesh.observer.publish(event, key=event.order_id)

    files = await wait_until(
        lambda: _async(
            len(list((mesh.edi_dir / "inbound").glob("940_*.x12"))) >= 3
            and list((mesh.edi_dir / "inbound").glob("940_*.x12"))
        ),
        what="three 940s",
    )

    controls = sorted(int(read_one(f.read_bytes()).control_number) for f in files)
    assert controls == list(range(controls[0], controls[0] + 3))


async def test_an_846_applies_one_snapshot_per_center_through_the_inventory_api(mesh: Mesh):
    await mesh.tpl_http.post("/_sandbox/edi/inventory-advice")

    await wait_until(
        lambda: _async(len([s for s in mesh.inventory.snapshots if s.request_id.startswith("edi-846")]) == 2),
        what="846",
    )

    edi = [s for s in mesh.inventory.snapshots if s.request_id.startswith("edi-846")]
    assert sorted(s.location_id for s in edi) == ["EAST", "WEST"]
    assert all(len(s.lines) == 10 for s in edi)
    # Our 997 is written after the snapshots are applied, so it may land a moment later.
    await wait_until(lambda: _async(any((mesh.edi_dir / "inbound").glob("997_*.x12"))), what="our 997")
