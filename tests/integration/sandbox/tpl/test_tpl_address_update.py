"""ShipBob's `PUT /shipment/{id}:updateAddress` on the 3PL stand-in over real HTTP: allowed until
the shipment is picked, refused with a clear 422 after, announced by `order.shipment.address.updated`."""

from __future__ import annotations

from tests.integration.sandbox.tpl.conftest import wait_until

NEW_ADDRESS = {
    "street_address1": "42 Harbour Rd",
    "street_address2": "Unit 7",
    "city": "Portland",
    "state": "ME",
    "zip_code": "04101",
    "country_code": "US",
}


def test_an_unpicked_shipment_takes_the_new_address_and_its_order_shows_it(tpl) -> None:
    order = tpl.create_order("SO-ADDR", [("SKU-1001", 1)]).json()
    shipment_id = order["shipments"][0]["id"]

    updated = tpl.client.put(tpl.api(f"/shipment/{shipment_id}:updateAddress"), json=NEW_ADDRESS)

    assert updated.status_code == 200, updated.text
    assert updated.json()["recipient"]["address"]["address1"] == "42 Harbour Rd"
    after = tpl.client.get(tpl.api(f"/order/{order['id']}")).json()
    assert after["recipient"]["name"] == "Ada Lovelace"
    assert after["recipient"]["address"] == {
        "address1": "42 Harbour Rd",
        "address2": "Unit 7",
        "city": "Portland",
        "state": "ME",
        "zip_code": "04101",
        "country": "US",
    }
    assert after["shipments"][0]["recipient"]["address"]["city"] == "Portland"


def test_a_picked_shipment_keeps_its_address_and_the_refusal_says_why(tpl) -> None:
    order = tpl.create_order("SO-PICKED", [("SKU-1002", 1)]).json()
    shipment_id = order["shipments"][0]["id"]
    tpl.client.post("/_sandbox/advance", json={"steps": 1})

    refused = tpl.client.put(tpl.api(f"/shipment/{shipment_id}:updateAddress"), json=NEW_ADDRESS)

    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "ShipmentAlreadyPicked"
    assert "before it is picked" in refused.json()["error"]["message"]
    after = tpl.client.get(tpl.api(f"/order/{order['id']}")).json()
    assert after["recipient"]["address"]["address1"] == "1 Main St"


def test_a_shipped_or_cancelled_shipment_cannot_change_address(tpl) -> None:
    shipped = tpl.create_order("SO-GONE", [("SKU-1003", 1)]).json()
    tpl.client.post(f"/_sandbox/orders/{shipped['id']}/ship")
    cancelled = tpl.create_order("SO-OFF", [("SKU-1003", 1)]).json()
    tpl.client.post(tpl.api(f"/order/{cancelled['id']}:cancel"))

    late = tpl.client.put(
        tpl.api(f"/shipment/{shipped['shipments'][0]['id']}:updateAddress"), json=NEW_ADDRESS
    )
    off = tpl.client.put(
        tpl.api(f"/shipment/{cancelled['shipments'][0]['id']}:updateAddress"), json=NEW_ADDRESS
    )

    assert (late.status_code, late.json()["error"]["code"]) == (422, "ShipmentAlreadyShipped")
    assert "already shipped" in late.json()["error"]["message"]
    assert (off.status_code, off.json()["error"]["code"]) == (422, "ShipmentCancelled")


def test_an_address_without_street_or_an_unknown_shipment_is_refused(tpl) -> None:
    order = tpl.create_order("SO-BAD", [("SKU-1004", 1)]).json()

    no_street = tpl.client.put(
        tpl.api(f"/shipment/{order['shipments'][0]['id']}:updateAddress"), json={"city": "Portland"}
    )
    unknown = tpl.client.put(tpl.api("/shipment/999:updateAddress"), json=NEW_ADDRESS)

    assert no_street.status_code == 400
    assert "street_address1" in no_street.json()["error"]["message"]
    assert unknown.status_code == 404


def test_subscribers_hear_order_shipment_address_updated(tpl, receiver) -> None:
    tpl.client.post(
        tpl.api("/webhook"),
        json={"topic": "order.shipment.address.updated", "subscription_url": receiver.url},
    )
    order = tpl.create_order("SO-HOOK", [("SKU-1005", 1)]).json()

    tpl.client.put(tpl.api(f"/shipment/{order['shipments'][0]['id']}:updateAddress"), json=NEW_ADDRESS)

    (body,) = wait_until(lambda: receiver.bodies("order.shipment.address.updated"), what="the webhook")
    assert body["id"] == order["shipments"][0]["id"]
    assert body["recipient"]["address"]["zip_code"] == "04101"
    assert body["order"]["reference_id"] == "SO-HOOK"
