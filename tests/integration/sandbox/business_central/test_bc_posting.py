"""Posting on the Business Central stand-in: shipAndInvoice, partial shipments, returns, receipts."""


def _ship(bc, order_id):
    return bc.api.post(bc.url(f"salesOrders({order_id})/Microsoft.NAV.shipAndInvoice"))


def test_ship_and_invoice_posts_a_shipment_and_an_invoice_and_takes_stock(bc):
    before = bc.stock("SKU-1002", "EAST")
    order = bc.create_order("#8001", [{"lineObjectNumber": "SKU-1002", "quantity": 2}]).json()

    response = _ship(bc, order["id"])
    shipments = bc.api.get(bc.url("salesShipments"), params={"$filter": "externalDocumentNumber eq '#8001'"})
    invoices = bc.api.get(bc.url("salesInvoices"), params={"$filter": f"orderNumber eq '{order['number']}'"})

    assert response.status_code == 204
    [shipment] = shipments.json()["value"]
    [invoice] = invoices.json()["value"]
    assert shipment["orderNumber"] == order["number"]
    assert invoice["orderId"] == order["id"]
    assert invoice["status"] == "Open"
    assert invoice["totalAmountIncludingTax"] == order["totalAmountIncludingTax"]
    assert bc.stock("SKU-1002", "EAST") == before - 2
    # BC deletes a sales order once it is fully shipped and invoiced.
    assert bc.api.get(bc.url(f"salesOrders({order['id']})")).status_code == 404


def test_posted_documents_have_the_key_sets_of_the_real_payloads(bc, fixture_keys):
    order = bc.create_order("#8002").json()
    _ship(bc, order["id"])

    shipment = bc.api.get(
        bc.url("salesShipments"), params={"$filter": "externalDocumentNumber eq '#8002'"}
    ).json()["value"][0]
    lines = bc.api.get(bc.url(f"salesShipments({shipment['id']})/salesShipmentLines")).json()["value"]
    item = bc.api.get(bc.url("items"), params={"$filter": "number eq 'SKU-1002'"}).json()["value"][0]

    assert set(shipment) - {"@odata.etag"} == fixture_keys("dynamics_salesshipment_get.block1.json")
    assert set(lines[0]) - {"@odata.etag"} == fixture_keys("dynamics_salesshipmentline_get.block1.json")
    assert set(item) - {"@odata.etag"} == fixture_keys("dynamics_item_get.block1.json")


def test_partial_shipment_through_ship_quantity(bc):
    order = bc.create_order("#8003", [{"lineObjectNumber": "SKU-1003", "quantity": 5}]).json()
    line = order["salesOrderLines"][0]
    line_url = bc.url(f"salesOrders({order['id']})/salesOrderLines({line['id']})")
    before = bc.stock("SKU-1003", "EAST")

    patched = bc.api.patch(line_url, json={"shipQuantity": 2}, headers={"If-Match": line["@odata.etag"]})
    first = _ship(bc, order["id"])
    after_first = bc.api.get(line_url).json()
    header = bc.api.get(bc.url(f"salesOrders({order['id']})")).json()
    second = _ship(bc, order["id"])

    assert patched.json()["shipQuantity"] == 2 and patched.json()["invoiceQuantity"] == 2
    assert first.status_code == 204
    assert after_first["shippedQuantity"] == 2 and after_first["invoicedQuantity"] == 2
    assert after_first["shipQuantity"] == 3
    assert header["fullyShipped"] is False and header["status"] == "Open"
    assert second.status_code == 204
    invoices = bc.api.get(bc.url("salesInvoices"), params={"$filter": f"orderNumber eq '{order['number']}'"})
    assert len(invoices.json()["value"]) == 2
    assert bc.stock("SKU-1003", "EAST") == before - 5
    assert bc.api.get(line_url).status_code == 404


def test_ship_quantity_cannot_exceed_outstanding(bc):
    order = bc.create_order("#8004", [{"lineObjectNumber": "SKU-1003", "quantity": 1}]).json()
    line = order["salesOrderLines"][0]

    response = bc.api.patch(
        bc.url(f"salesOrders({order['id']})/salesOrderLines({line['id']})"),
        json={"shipQuantity": 2},
        headers={"If-Match": line["@odata.etag"]},
    )

    assert response.status_code == 400


def test_ship_from_the_west_location(bc):
    west = bc.api.get(bc.url("locations"), params={"$filter": "code eq 'WEST'"}).json()["value"][0]
    before_east, before_west = bc.stock("SKU-1004", "EAST"), bc.stock("SKU-1004", "WEST")
    order = bc.create_order(
        "#8005", [{"lineObjectNumber": "SKU-1004", "quantity": 1, "locationId": west["id"]}]
    )

    _ship(bc, order.json()["id"])

    assert (bc.stock("SKU-1004", "EAST"), bc.stock("SKU-1004", "WEST")) == (before_east, before_west - 1)


def test_credit_memo_for_a_return_puts_stock_back_and_credits_the_customer(bc):
    before = bc.stock("SKU-1005", "EAST")
    memo = bc.api.post(
        bc.url("salesCreditMemos"),
        json={
            "customerNumber": "C10000",
            "externalDocumentNumber": "RMA-1",
            "salesCreditMemoLines": [{"lineObjectNumber": "SKU-1005", "quantity": 1}],
        },
    ).json()

    posted = bc.api.post(bc.url(f"salesCreditMemos({memo['id']})/Microsoft.NAV.post"))
    again = bc.api.post(bc.url(f"salesCreditMemos({memo['id']})/Microsoft.NAV.post"))

    assert memo["status"] == "Draft"
    assert posted.status_code == 204
    assert again.status_code == 400
    assert bc.api.get(bc.url(f"salesCreditMemos({memo['id']})")).json()["status"] == "Open"
    assert bc.stock("SKU-1005", "EAST") == before + 1
    assert bc.raw.get("/_sandbox/counts").json()["created"]["salesCreditMemos"] == {"RMA-1": 1}


def test_purchase_order_receipt_brings_incoming_stock_on_hand(bc):
    before = bc.stock("SKU-1008", "EAST")
    po = bc.api.post(
        bc.url("purchaseOrders"),
        json={
            "vendorNumber": "V10000",
            "purchaseOrderLines": [{"lineObjectNumber": "SKU-1008", "quantity": 40}],
        },
    )

    received = bc.api.post(bc.url(f"purchaseOrders({po.json()['id']})/Microsoft.NAV.receiveAndInvoice"))

    assert po.status_code == 201
    assert received.status_code == 204
    assert bc.stock("SKU-1008", "EAST") == before + 40


def test_items_carry_inventory_that_shipping_takes_down(bc):
    def inventory() -> float:
        params = {"$filter": "number eq 'SKU-1004'"}
        return bc.api.get(bc.url("items"), params=params).json()["value"][0]["inventory"]

    before = inventory()
    order = bc.create_order("#8010", [{"lineObjectNumber": "SKU-1004", "quantity": 3}]).json()

    shipped = _ship(bc, order["id"])

    assert shipped.status_code == 204
    assert before > 3
    assert inventory() == before - 3
