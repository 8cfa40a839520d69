"""Fault injection and the ``/_sandbox`` control API of the Shopify stand-in, over real HTTP."""

from __future__ import annotations

import time

import httpx

ORDERS = "{ orders(first: 5) { nodes { id } } }"
PRODUCT_SET = """mutation($input: ProductSetInput!) { productSet(input: $input) {
    product { id handle } userErrors { field message } } }"""
PRODUCT_BY_HANDLE = '{ products(first: 5, query: "handle:fault-gaiter") { nodes { id handle } } }'


def _order_names(shopify) -> list[str]:
    return [o["name"] for o in shopify.http.get("/_sandbox/state").json()["orders"]]


def test_injected_429_on_checkout_carries_retry_after_and_places_no_order(shopify):
    before = _order_names(shopify)
    shopify.http.put(
        "/_sandbox/faults",
        json={"operation": "checkout", "fault": {"error_rate": 1, "error_status": 429, "retry_after_s": 2.5}},
    ).raise_for_status()

    response = shopify.http.post("/_sandbox/checkout", json={"lines": [{"sku": "SKU-1001", "quantity": 1}]})

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.headers["X-Sandbox-Fault"] == "error"
    assert _order_names(shopify) == before
    assert shopify.http.get("/_sandbox/counts").json()["attempts"] == {}


def test_a_5xx_fault_on_one_graphql_root_field_leaves_the_others_alone(shopify):
    shopify.http.put(
        "/_sandbox/faults", json={"graphql.orders": {"error_rate": 1, "error_status": 503}}
    ).raise_for_status()

    faulted = shopify.graphql(ORDERS)
    other = shopify.graphql("{ shop { name } }")

    assert faulted.status_code == 503 and faulted.headers["X-Sandbox-Fault"] == "error"
    assert other.status_code == 200 and other.json()["data"]["shop"]["name"]


def test_latency_fault_delays_graphql_answers(shopify):
    shopify.http.put("/_sandbox/faults", json={"graphql": {"latency_ms": 300}}).raise_for_status()

    started = time.monotonic()
    response = shopify.graphql(ORDERS)
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed >= 0.3


def test_timeout_fault_hangs_until_the_client_gives_up_and_clearing_releases_it(shopify):
    shopify.http.put("/_sandbox/faults", json={"*": {"timeout_rate": 1, "timeout_s": 60}}).raise_for_status()
    impatient = httpx.Client(base_url=shopify.base_url, timeout=0.3, trust_env=False)

    try:
        impatient.post("/_sandbox/checkout", json={"lines": [{"sku": "SKU-1001", "quantity": 1}]})
        timed_out = False
    except httpx.ReadTimeout:
        timed_out = True
    finally:
        impatient.close()
    shopify.http.delete("/_sandbox/faults").raise_for_status()

    assert timed_out
    assert shopify.graphql(ORDERS).status_code == 200


def test_dropped_response_after_a_mutation_commits_it_though_the_caller_sees_504(shopify):
    shopify.http.put(
        "/_sandbox/faults", json={"graphql.productSet": {"drop_response_rate": 1}}
    ).raise_for_status()
    spec = {
        "title": "Fault Gaiter",
        "handle": "fault-gaiter",
        "variants": [{"sku": "SKU-3001", "price": "9.00"}],
    }

    response = shopify.graphql(PRODUCT_SET, {"input": spec})

    assert response.status_code == 504
    assert response.headers["X-Sandbox-Fault"] == "dropped-after-commit"
    assert [p["handle"] for p in shopify.gql(PRODUCT_BY_HANDLE)["products"]["nodes"]] == ["fault-gaiter"]
    assert shopify.http.get("/_sandbox/counts").json()["created"]["products"] == {"fault-gaiter": 1}


def test_dropped_checkout_response_still_places_the_order_once(shopify):
    shopify.http.put("/_sandbox/faults", json={"checkout": {"drop_response_rate": 1}}).raise_for_status()
    before = _order_names(shopify)

    response = shopify.http.post("/_sandbox/checkout", json={"lines": [{"sku": "SKU-1002", "quantity": 1}]})

    assert response.status_code == 504
    after = _order_names(shopify)
    assert len(after) == len(before) + 1
    counts = shopify.http.get("/_sandbox/counts").json()
    assert counts["created"]["orders"] == {after[-1]: 1} and counts["duplicates"] == {}


def test_state_shows_the_shop_and_counts_show_each_created_order_by_name(shopify):
    first = shopify.checkout(("SKU-1001", 1))
    second = shopify.checkout(("SKU-1002", 2))

    state = shopify.http.get("/_sandbox/state").json()
    counts = shopify.http.get("/_sandbox/counts").json()

    assert [loc["code"] for loc in state["locations"]] == ["EAST", "WEST"]
    assert {sku for p in state["products"] for sku in p["skus"]} >= {"SKU-1001", "SKU-1010"}
    assert {first["name"], second["name"]} <= {o["name"] for o in state["orders"]}
    assert counts["created"]["orders"] == {first["name"]: 1, second["name"]: 1}
    assert counts["duplicates"] == {}


def test_reset_rebuilds_the_seeded_shop_and_forgets_orders_faults_and_counts(shopify):
    seeded = shopify.http.get("/_sandbox/state").json()
    shopify.checkout(("SKU-1001", 1))
    shopify.http.put("/_sandbox/faults", json={"graphql": {"latency_ms": 1}}).raise_for_status()
    shopify.http.put("/_sandbox/webhook-faults", json={"drop_rate": 1}).raise_for_status()

    other = shopify.http.post("/_sandbox/reset", json={"seed": 5})
    other_state = shopify.http.get("/_sandbox/state").json()
    again = shopify.http.post("/_sandbox/reset", json={"seed": 0})
    again_state = shopify.http.get("/_sandbox/state").json()

    assert other.json() == {"seed": 5} and again.json() == {"seed": 0}
    assert other_state["shop"]["seed"] == 5 and other_state["products"] != seeded["products"]
    assert again_state["products"] == seeded["products"]
    assert again_state["orders"] == seeded["orders"]
    assert shopify.http.get("/_sandbox/faults").json() == {"seed": 0, "faults": {}}
    assert shopify.http.get("/_sandbox/webhook-faults").json()["drop_rate"] == 0.0
    assert shopify.http.get("/_sandbox/counts").json() == {
        "attempts": {},
        "created": {},
        "created_at": {},
        "duplicates": {},
    }


def test_two_stand_ins_with_the_same_seed_give_the_same_ids_to_the_same_orders(shopify_factory):
    one, two = shopify_factory(seed=11), shopify_factory(seed=11)

    first = one.checkout(("SKU-1003", 1))
    second = two.checkout(("SKU-1003", 1))

    assert first["id"] == second["id"] and first["name"] == second["name"]
    assert (
        one.http.get("/_sandbox/state").json()["products"]
        == two.http.get("/_sandbox/state").json()["products"]
    )


def test_faults_given_in_the_settings_apply_from_the_first_request(shopify_factory, receiver, wait):
    shop = shopify_factory(
        faults={"graphql.orders": {"error_rate": 1, "error_status": 500}},
        webhook_faults={"duplicate_rate": 1},
    )
    shop.subscribe("ORDERS_CREATE", receiver.url("twice"))

    faulted = shop.graphql(ORDERS)
    shop.checkout(("SKU-1001", 1))

    assert faulted.status_code == 500
    hooks = wait(lambda: len(receiver.on("twice")) == 2 and receiver.on("twice"), what="two deliveries")
    assert hooks[0].headers["x-shopify-event-id"] == hooks[1].headers["x-shopify-event-id"]
