"""Business validation on the Business Central stand-in: refusals with an error code and message."""

import pytest


@pytest.mark.parametrize(
    ("customer", "lines", "code"),
    [
        ("C30000", None, "Application_CustomerBlocked"),
        ("C40000", [{"lineObjectNumber": "SKU-1010", "quantity": 3}], "Application_CreditLimitExceeded"),
        ("C50000", None, "Application_TaxAreaMissing"),
        ("C99999", None, "Application_CustomerNotFound"),
        ("C10000", [{"lineObjectNumber": "SKU-9999", "quantity": 1}], "Application_ItemNotFound"),
    ],
)
def test_create_is_refused_and_nothing_is_created(bc, customer, lines, code):
    response = bc.create_order("#V-1", lines, customer=customer)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert bc.api.get(bc.url("salesOrders")).json()["value"] == []
    counts = bc.raw.get("/_sandbox/counts").json()
    assert counts["attempts"] == {"salesOrders": {"#V-1": 1}}
    assert counts["created"] == {}


def test_credit_hold_customer_may_still_place_a_small_order(bc):
    response = bc.create_order("#V-2", [{"lineObjectNumber": "SKU-1001", "quantity": 1}], customer="C40000")

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("hold", "code"),
    [
        ({"paymentNotAuthorized": True}, "Application_PaymentNotAuthorized"),
        ({"fraudHold": True}, "Application_FraudHold"),
    ],
)
def test_holds_refuse_the_order_at_create(bc, hold, code):
    bc.raw.put("/_sandbox/holds", json={"externalDocumentNumber": "#V-3", **hold})

    response = bc.create_order("#V-3")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("hold", "code"),
    [
        ({"paymentNotAuthorized": True}, "Application_PaymentNotAuthorized"),
        ({"fraudHold": True}, "Application_FraudHold"),
    ],
)
def test_holds_set_after_create_refuse_ship_and_invoice(bc, hold, code):
    order = bc.create_order("#V-4").json()
    bc.raw.put("/_sandbox/holds", json={"externalDocumentNumber": "#V-4", **hold})

    refused = bc.api.post(bc.url(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice"))
    bc.raw.delete("/_sandbox/holds", params={"externalDocumentNumber": "#V-4"})
    released = bc.api.post(bc.url(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice"))

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == code
    assert released.status_code == 204


def test_ship_blocked_customer_can_order_but_not_ship(bc):
    order = bc.create_order("#V-5", customer="C60000")

    refused = bc.api.post(bc.url(f"salesOrders({order.json()['id']})/Microsoft.NAV.shipAndInvoice"))

    assert order.status_code == 201
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Application_CustomerBlocked"


def test_insufficient_inventory_refuses_posting_and_changes_nothing(bc):
    order = bc.create_order("#V-6", [{"lineObjectNumber": "SKU-1008", "quantity": 1}]).json()

    refused = bc.api.post(bc.url(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice"))

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Application_InsufficientInventory"
    assert bc.api.get(bc.url("salesShipments")).json()["value"] == []
    assert bc.api.get(bc.url(f"salesOrders({order['id']})")).json()["status"] == "Draft"


def test_generic_error_codes_mode_answers_like_al_errors(make_bc):
    bc = make_bc(generic_error_codes=True)

    response = bc.create_order("#V-7", customer="C30000")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Application_DialogException"
    assert "C30000 is blocked" in response.json()["error"]["message"]


def test_unblocking_a_customer_through_patch_lets_it_order(bc):
    customer = bc.api.get(bc.url("customers"), params={"$filter": "number eq 'C30000'"}).json()["value"][0]

    patched = bc.api.patch(
        bc.url(f"customers({customer['id']})"),
        json={"blocked": " "},
        headers={"If-Match": customer["@odata.etag"]},
    )

    assert patched.status_code == 200
    assert bc.create_order("#V-8", customer="C30000").status_code == 201
