"""Address corrections reach the 3PL through real parts: an unpicked 3PL order takes the new
address (ShipBob's updateAddress), a picked or shipped one refuses and the refusal is published."""

from __future__ import annotations

from retail.common.v1 import common_pb2
from retail.orders.v1 import events_pb2 as order_events
from tests.integration.tpl_adapter.conftest import Mesh, release, wait_until
from tests.integration.tpl_adapter.test_release_and_shipment import _async, accepted

CORRECTED = common_pb2.Address(
    name="Ada Lovelace",
    lines=["42 Harbour Rd", "Unit 7"],
    city="Portland",
    province_code="ME",
    postal_code="04101",
    country_code="US",
)


def corrected(event: order_events.OrderReleasedToWarehouse) -> order_events.OrderAddressCorrected:
    return order_events.OrderAddressCorrected(
        order_id=event.order_id, shipping_address=CORRECTED, release_ids=[event.release_id]
    )


async def test_a_corrected_address_updates_the_unpicked_3pl_order(mesh: Mesh):
    event = release("ord-addr")
    await mesh.observer.publish(event, key=event.order_id)
    await accepted(mesh, event.release_id)

    await mesh.observer.publish(corrected(event), key=event.order_id)

    (done,) = await wait_until(
        lambda: _async(mesh.observer.of(order_events.WarehouseAddressUpdated)), what="address updated"
    )
    (tpl_order,) = await mesh.tpl_orders(event.release_id)
    assert done.release_id == event.release_id
    assert [ref.id for ref in done.warehouse_shipments] == [str(tpl_order["shipments"][0]["id"])]
    assert tpl_order["recipient"]["address"] == {
        "address1": "42 Harbour Rd",
        "address2": "Unit 7",
        "city": "Portland",
        "state": "ME",
        "zip_code": "04101",
        "country": "US",
    }
    assert tpl_order["recipient"]["name"] == "Ada Lovelace"


async def test_a_correction_of_a_picked_3pl_order_is_refused_as_already_picked(mesh: Mesh):
    event = release("ord-picked")
    await mesh.observer.publish(event, key=event.order_id)
    await accepted(mesh, event.release_id)
    await mesh.tpl_http.post("/_sandbox/advance", json={"steps": 1})

    await mesh.observer.publish(corrected(event), key=event.order_id)

    (rejected,) = await wait_until(
        lambda: _async(mesh.observer.of(order_events.WarehouseAddressUpdateRejected)), what="refused"
    )
    assert rejected.reason.code == "ALREADY_PICKED"
    assert rejected.reason.external_code == "ShipmentAlreadyPicked"
    assert "before it is picked" in rejected.reason.message
    assert (await mesh.tpl_orders(event.release_id))[0]["recipient"]["address"]["city"] == "Springfield"


async def test_a_correction_of_a_shipped_3pl_order_is_refused_as_already_shipped(mesh: Mesh):
    event = release("ord-gone")
    await mesh.observer.publish(event, key=event.order_id)
    order = await accepted(mesh, event.release_id)
    await mesh.ship(order.warehouse_order.id)

    await mesh.observer.publish(corrected(event), key=event.order_id)

    (rejected,) = await wait_until(
        lambda: _async(mesh.observer.of(order_events.WarehouseAddressUpdateRejected)), what="refused"
    )
    assert rejected.reason.code == "ALREADY_SHIPPED"
    assert rejected.release_id == event.release_id
