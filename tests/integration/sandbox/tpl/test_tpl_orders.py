"""The ShipBob-like order API over real HTTP: create, duplicates, get, cancel, inventory, limits, faults."""

from __future__ import annotations

import httpx

from tests.integration.sandbox.tpl.conftest import HEADERS


def test_order_is_created_with_a_shipment_at_a_fulfillment_center(tpl) -> None:
    response = tpl.create_order("SO-1", [("SKU-1001", 2), ("SKU-1002", 1)])

    assert response.status_code == 201
    order = response.json()
    assert order["reference_id"] == "SO-1"
    assert order["status"] == "Processing"
    assert [p["sku"] for p in order["products"]] == ["SKU-1001", "SKU-1002"]
    (shipment,) = order["shipments"]
    assert shipment["location"]["name"] in ("EAST", "WEST")
    assert shipment["tracking"] is None


def test_duplicate_reference_id_is_refused_with_422_and_counted_once_created(tpl) -> None:
    first = tpl.create_order("SO-DUP", [("SKU-1001", 1)])

    second = tpl.create_order("SO-DUP", [("SKU-1001", 1)])

    assert first.status_code == 201
    assert second.status_code == 422
    assert second.json()["error"]["message"] == "Duplicate reference ID"
    counts = tpl.client.get("/_sandbox/counts").json()
    assert counts["attempts"]["orders"]["SO-DUP"] == 2
    assert counts["created"]["orders"]["SO-DUP"] == 1
    assert counts["duplicates"] == {}
    assert len(tpl.client.get(tpl.api("/order"), params={"ReferenceIds": "SO-DUP"}).json()) == 1


def test_order_is_found_by_id_and_by_reference_id(tpl) -> None:
    created = tpl.create_order("SO-GET", [("SKU-1003", 1)]).json()

    by_id = tpl.client.get(tpl.api(f"/order/{created['id']}"))
    by_reference = tpl.client.get(tpl.api("/order"), params={"ReferenceIds": "SO-GET"})
    missing = tpl.client.get(tpl.api("/order/999"))

    assert by_id.json()["reference_id"] == "SO-GET"
    assert [o["id"] for o in by_reference.json()] == [created["id"]]
    assert missing.status_code == 404


def test_requests_without_bearer_token_or_channel_are_refused(tpl) -> None:
    no_token = httpx.post(f"{tpl.base_url}{tpl.api('/order')}", json={"reference_id": "X"})
    bad_channel = tpl.client.post(
        tpl.api("/order"), json={"reference_id": "X"}, headers={"shipbob_channel_id": "42"}
    )

    assert no_token.status_code == 401
    assert bad_channel.status_code == 403


def test_cancel_before_shipping_releases_the_committed_stock(tpl) -> None:
    before = tpl.inventory("SKU-1004")
    order = tpl.create_order("SO-CANCEL", [("SKU-1004", 3)]).json()
    center = order["shipments"][0]["location"]["name"]
    assert tpl.inventory("SKU-1004")[center]["committed_quantity"] == before[center]["committed_quantity"] + 3

    cancelled = tpl.client.post(tpl.api(f"/order/{order['id']}:cancel"))

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "Cancelled"
    assert tpl.inventory("SKU-1004") == before


def test_cancel_after_shipping_is_refused_with_a_clear_error(tpl) -> None:
    order = tpl.create_order("SO-SHIPPED", [("SKU-1005", 1)]).json()
    tpl.client.post(f"/_sandbox/orders/{order['id']}/ship")

    refused = tpl.client.post(tpl.api(f"/order/{order['id']}/cancel"))

    assert refused.status_code == 422
    assert "already shipped" in refused.json()["error"]["message"]
    assert tpl.client.get(tpl.api(f"/order/{order['id']}")).json()["status"] == "Fulfilled"


def test_inventory_per_center_moves_from_committed_to_shipped(tpl) -> None:
    before = tpl.inventory("SKU-1006")
    order = tpl.create_order("SO-INV", [("SKU-1006", 4)]).json()
    center = order["shipments"][0]["location"]["name"]

    committed = tpl.inventory("SKU-1006")[center]
    tpl.client.post(f"/_sandbox/orders/{order['id']}/ship")
    shipped = tpl.inventory("SKU-1006")[center]

    assert committed["on_hand_quantity"] == before[center]["on_hand_quantity"]
    assert committed["fulfillable_quantity"] == before[center]["fulfillable_quantity"] - 4
    assert shipped["on_hand_quantity"] == before[center]["on_hand_quantity"] - 4
    assert shipped["committed_quantity"] == before[center]["committed_quantity"]
    assert shipped["fulfillable_quantity"] == shipped["on_hand_quantity"] - shipped["committed_quantity"]
    assert {loc for loc in tpl.inventory("SKU-1006")} == {"EAST", "WEST"}


def test_order_beyond_stock_waits_in_exception_until_stock_arrives(tpl) -> None:
    for center in ("EAST", "WEST"):
        tpl.client.post("/_sandbox/inventory", json={"sku": "SKU-1007", "location": center, "on_hand": 1})
    order = tpl.create_order("SO-OOS", [("SKU-1007", 5)]).json()
    assert order["status"] == "Exception"

    tpl.client.post("/_sandbox/inventory", json={"sku": "SKU-1007", "location": "WEST", "on_hand": 10})
    tpl.client.post("/_sandbox/advance", json={"steps": 1})

    assert tpl.client.get(tpl.api(f"/order/{order['id']}")).json()["status"] == "Processing"
    assert tpl.inventory("SKU-1007")["WEST"]["committed_quantity"] == 5


def test_rate_limit_answers_429_with_retry_after_and_remaining_calls(tpl_factory) -> None:
    with tpl_factory(rate_limit=5) as tpl:
        answers = [tpl.client.get(tpl.api("/location")) for _ in range(6)]

    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert [a.headers["x-remaining-calls"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    assert int(answers[-1].headers["x-retry-after"]) >= 1
    assert answers[-1].headers["Retry-After"] == answers[-1].headers["x-retry-after"]


def test_dropped_response_after_commit_leaves_the_order_created(tpl) -> None:
    tpl.client.put(
        "/_sandbox/faults", json={"operation": "order.create", "fault": {"drop_response_rate": 1.0}}
    )

    lost = tpl.create_order("SO-LOST", [("SKU-1008", 1)])
    tpl.client.delete("/_sandbox/faults")
    retried = tpl.create_order("SO-LOST", [("SKU-1008", 1)])

    assert lost.status_code == 504
    assert retried.status_code == 422
    assert len(tpl.client.get(tpl.api("/order"), params={"ReferenceIds": "SO-LOST"}).json()) == 1
    assert tpl.client.get("/_sandbox/counts").json()["created"]["orders"]["SO-LOST"] == 1


def test_injected_429_carries_retry_after_and_creates_nothing(tpl) -> None:
    fault = {"error_rate": 1.0, "error_status": 429, "retry_after_s": 3}
    tpl.client.put("/_sandbox/faults", json={"operation": "order.create", "fault": fault})

    response = tpl.create_order("SO-429", [("SKU-1008", 1)])

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert tpl.client.get(tpl.api("/order"), params={"ReferenceIds": "SO-429"}).json() == []


def test_reset_brings_back_the_seeded_demo_data(tpl) -> None:
    seeded = tpl.client.get("/_sandbox/state").json()["inventory"]
    tpl.create_order("SO-RESET", [("SKU-1001", 1)])

    tpl.client.post("/_sandbox/reset", json={"seed": 7})

    state = tpl.client.get("/_sandbox/state").json()
    assert state["orders"] == []
    assert state["inventory"] == seeded
    assert [c["name"] for c in state["fulfillment_centers"]] == ["EAST", "WEST"]
    assert tpl.client.get(tpl.api("/order"), headers=HEADERS).json() == []
