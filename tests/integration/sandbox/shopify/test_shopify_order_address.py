"""A merchant corrects an order's shipping address in the Shopify stand-in's admin: the order and
its `orders/updated` webhook show the new address; a cancelled order's address cannot change."""

from __future__ import annotations


def test_an_address_edited_in_admin_is_announced_by_orders_updated(shopify, receiver, wait):
    shopify.subscribe("ORDERS_UPDATED", receiver.url("updated"))
    order = shopify.checkout(("SKU-1001", 1))

    response = shopify.http.post(
        f"/_sandbox/orders/{order['id']}/update",
        json={"shipping_address": {"address1": "42 Harbour Rd", "city": "Portland", "zip": "04101"}},
    )

    assert response.status_code == 200, response.text
    body = wait(lambda: receiver.on("updated"), what="orders/updated")[0].json()
    address = body["shipping_address"]
    assert (address["address1"], address["city"], address["zip"]) == ("42 Harbour Rd", "Portland", "04101")
    assert address["name"] == order["shipping_address"]["name"]
    assert address["country_code"] == order["shipping_address"]["country_code"]
    assert body["updated_at"] >= order["updated_at"]


def test_a_cancelled_orders_address_cannot_be_edited(shopify):
    order = shopify.checkout(("SKU-1002", 1))
    shopify.http.post(f"/_sandbox/orders/{order['id']}/cancel", json={"reason": "CUSTOMER"})

    response = shopify.http.post(
        f"/_sandbox/orders/{order['id']}/update", json={"shipping_address": {"address1": "1 Late St"}}
    )

    assert response.status_code == 422
    assert "cancelled" in response.json()["errors"][0]["message"]
