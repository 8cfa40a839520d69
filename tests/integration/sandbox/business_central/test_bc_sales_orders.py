"""Sales orders on the Business Central stand-in: deep insert, shapes, OData queries, ETags."""


def test_deep_insert_creates_order_and_lines_in_one_post(bc):
    response = bc.create_order(
        "#1001",
        [
            {"lineObjectNumber": "SKU-1002", "quantity": 2},
            {"lineObjectNumber": "SKU-1003", "quantity": 1, "unitPrice": 10},
        ],
    )

    assert response.status_code == 201
    order = response.json()
    assert order["number"] and order["externalDocumentNumber"] == "#1001"
    assert order["status"] == "Draft"
    assert [line["lineObjectNumber"] for line in order["salesOrderLines"]] == ["SKU-1002", "SKU-1003"]
    assert order["salesOrderLines"][1]["amountExcludingTax"] == 10
    assert order["totalAmountIncludingTax"] == round(
        sum(line["amountIncludingTax"] for line in order["salesOrderLines"]), 2
    )
    assert response.headers["location"].endswith(f"/salesOrders({order['id']})")
    assert response.headers["etag"] == order["@odata.etag"]


def test_read_back_has_the_key_sets_of_the_real_payloads(bc, fixture_keys):
    order_keys = fixture_keys("dynamics_salesorder.block1.json")
    line_keys = fixture_keys("dynamics_salesorderline_get.block1.json") | fixture_keys(
        "dynamics_salesOrderLine_create.response.json"
    )
    created = bc.create_order("#1002").json()

    order = bc.api.get(bc.url(f"salesOrders({created['id']})"), params={"$expand": "salesOrderLines"}).json()

    assert set(order) - {"@odata.context", "@odata.etag", "salesOrderLines"} == order_keys
    assert order["@odata.context"].endswith("/salesOrders/$entity")
    for line in order["salesOrderLines"]:
        assert set(line) - {"@odata.etag"} == line_keys


def test_post_without_expand_returns_the_header_only(bc):
    response = bc.api.post(
        bc.url("salesOrders"),
        json={
            "customerNumber": "C10000",
            "salesOrderLines": [{"lineObjectNumber": "SKU-1001", "quantity": 1}],
        },
    )

    assert response.status_code == 201
    assert "salesOrderLines" not in response.json()
    lines = bc.api.get(bc.url(f"salesOrders({response.json()['id']})/salesOrderLines")).json()["value"]
    assert len(lines) == 1


def test_filter_by_external_document_number_and_number(bc):
    first = bc.create_order("#2001").json()
    bc.create_order("#2002")

    by_external = bc.api.get(bc.url("salesOrders"), params={"$filter": "externalDocumentNumber eq '#2001'"})
    by_both = bc.api.get(
        bc.url("salesOrders"),
        params={"$filter": f"externalDocumentNumber eq '#2001' and number eq '{first['number']}'"},
    )
    by_mismatch = bc.api.get(
        bc.url("salesOrders"),
        params={"$filter": f"externalDocumentNumber eq '#2002' and number eq '{first['number']}'"},
    )

    assert by_external.json()["@odata.context"].endswith("/salesOrders")
    assert [o["id"] for o in by_external.json()["value"]] == [first["id"]]
    assert [o["id"] for o in by_both.json()["value"]] == [first["id"]]
    assert by_mismatch.json()["value"] == []


def test_top_skip_select_and_bad_filter(bc):
    for n in range(5):
        bc.create_order(f"#30{n}")

    page = bc.api.get(bc.url("salesOrders"), params={"$top": 2, "$skip": 1, "$select": "number"}).json()[
        "value"
    ]
    bad = bc.api.get(bc.url("salesOrders"), params={"$filter": "number startswith '1'"})

    assert [o["number"] for o in page] == ["101002", "101003"]
    assert set(page[0]) == {"@odata.etag", "id", "number"}
    assert bad.status_code == 400


def test_patch_needs_the_current_etag(bc):
    order = bc.create_order("#4001").json()
    url = bc.url(f"salesOrders({order['id']})")

    missing = bc.api.patch(url, json={"externalDocumentNumber": "#4001-A"})
    updated = bc.api.patch(
        url, json={"externalDocumentNumber": "#4001-A"}, headers={"If-Match": order["@odata.etag"]}
    )
    stale = bc.api.patch(
        url, json={"externalDocumentNumber": "#4001-B"}, headers={"If-Match": order["@odata.etag"]}
    )

    assert missing.status_code == 428
    assert updated.status_code == 200
    assert updated.json()["externalDocumentNumber"] == "#4001-A"
    assert updated.json()["@odata.etag"] != order["@odata.etag"]
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "Request_EntityChanged"
    assert bc.api.get(url).json()["externalDocumentNumber"] == "#4001-A"


def test_unknown_property_is_refused_as_bc_does(bc):
    response = bc.api.post(bc.url("salesOrders"), json={"customerNumber": "C10000", "externalDocNumber": "x"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest_PropertyNotFound"


def test_delete_with_etag_removes_order_and_lines(bc):
    order = bc.create_order("#5001").json()
    url = bc.url(f"salesOrders({order['id']})")

    stale = bc.api.delete(url, headers={"If-Match": 'W/"stale"'})
    deleted = bc.api.delete(url, headers={"If-Match": order["@odata.etag"]})

    assert stale.status_code == 412
    assert deleted.status_code == 204
    assert bc.api.get(url).status_code == 404
    assert (
        bc.api.get(bc.url("salesOrderLines"), params={"$filter": f"documentId eq {order['id']}"}).json()[
            "value"
        ]
        == []
    )


def test_a_second_order_with_the_same_external_number_is_allowed_and_counted(bc):
    bc.create_order("#6001")

    second = bc.create_order("#6001")
    counts = bc.raw.get("/_sandbox/counts").json()

    assert second.status_code == 201
    assert counts["attempts"]["salesOrders"]["#6001"] == 2
    assert counts["duplicates"] == {"salesOrders": {"#6001": 2}}


def test_lines_can_be_added_patched_and_deleted_under_an_order(bc):
    order = bc.create_order("#7001").json()
    lines_url = bc.url(f"salesOrders({order['id']})/salesOrderLines")

    added = bc.api.post(lines_url, json={"lineObjectNumber": "SKU-1004", "quantity": 3})
    line = added.json()
    patched = bc.api.patch(
        f"{lines_url}({line['id']})", json={"quantity": 4}, headers={"If-Match": line["@odata.etag"]}
    )
    after_patch = bc.api.get(bc.url(f"salesOrders({order['id']})")).json()
    deleted = bc.api.delete(f"{lines_url}({line['id']})", headers={"If-Match": patched.json()["@odata.etag"]})

    assert added.status_code == 201 and line["sequence"] == 20000
    assert patched.json()["quantity"] == 4 and patched.json()["shipQuantity"] == 4
    assert after_patch["@odata.etag"] != order["@odata.etag"]
    assert deleted.status_code == 204
    assert len(bc.api.get(lines_url).json()["value"]) == 1


def test_ship_to_fields_of_an_open_order_can_be_patched_until_something_ships(bc):
    order = bc.create_order("#4101", [{"lineObjectNumber": "SKU-1003", "quantity": 5}]).json()
    url = bc.url(f"salesOrders({order['id']})")
    new = {
        "shipToName": "Ada Buyer",
        "shipToAddressLine1": "77 River Rd",
        "shipToCity": "Troy",
        "shipToPostCode": "12180",
    }

    patched = bc.api.patch(url, json=new, headers={"If-Match": order["@odata.etag"]})
    line = order["salesOrderLines"][0]
    line_url = bc.url(f"salesOrders({order['id']})/salesOrderLines({line['id']})")
    bc.api.patch(line_url, json={"shipQuantity": 2}, headers={"If-Match": line["@odata.etag"]})
    shipped = bc.api.post(bc.url(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice"))
    current = bc.api.get(url).json()
    refused = bc.api.patch(
        url, json={"shipToCity": "Schenectady"}, headers={"If-Match": current["@odata.etag"]}
    )
    unchanged_city = bc.api.patch(
        url, json={"shipToCity": "Troy"}, headers={"If-Match": current["@odata.etag"]}
    )

    assert patched.status_code == 200
    assert {name: patched.json()[name] for name in new} == new
    assert shipped.status_code == 204
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Application_DialogException"
    assert "partly shipped" in refused.json()["error"]["message"]
    assert unchanged_city.status_code == 200  # the same value is no change
    assert bc.api.get(url).json()["shipToCity"] == "Troy"
