"""Webhook delivery by the Shopify stand-in: signature, headers, shapes, retries, removal, faults."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.common.server import serve_in_thread
from sandbox.shopify.config import API_VERSION, ShopifySettings

ROOT = Path(__file__).resolve().parents[4]
ORDERS_QUERY = (
    "{ webhookSubscriptions(first: 10) { nodes { id topic uri"
    " endpoint { ... on WebhookHttpEndpoint { callbackUrl } } } } }"
)


def _key_paths(value, prefix=""):
    """Every key path in a JSON value; list elements share the path ``[]``."""
    paths = set()
    if isinstance(value, dict):
        for key, child in value.items():
            paths.add(f"{prefix}{key}")
            paths |= _key_paths(child, f"{prefix}{key}.")
    elif isinstance(value, list):
        for child in value:
            paths |= _key_paths(child, f"{prefix}[].")
    return paths


def test_checkout_sends_a_signed_orders_create_with_every_shopify_header(
    shopify, receiver, wait, documented_body
):
    shopify.subscribe("ORDERS_CREATE", receiver.url("orders"))

    order = shopify.checkout(("SKU-1001", 2), ("SKU-1003", 1))

    hook = wait(lambda: receiver.on("orders"), what="orders/create delivery")[0]
    expected = base64.b64encode(
        hmac.new(shopify.settings.webhook_secret.encode(), hook.body, hashlib.sha256).digest()
    )
    assert hmac.compare_digest(hook.headers["x-shopify-hmac-sha256"].encode(), expected)
    assert hook.headers["x-shopify-topic"] == "orders/create"
    assert hook.headers["x-shopify-shop-domain"] == "retail-mesh-demo.myshopify.com"
    assert hook.headers["x-shopify-api-version"] == API_VERSION
    assert hook.headers["x-shopify-webhook-id"]
    assert hook.headers["x-shopify-event-id"]
    assert datetime.fromisoformat(hook.headers["x-shopify-triggered-at"].replace("Z", "")[:26])
    body = hook.json()
    assert body["admin_graphql_api_id"] == order["admin_graphql_api_id"]
    assert body["id"] > 2**53 and body["admin_graphql_api_id"].endswith(f"/{body['id']}")
    assert [(li["sku"], li["quantity"]) for li in body["line_items"]] == [("SKU-1001", 2), ("SKU-1003", 1)]


@pytest.mark.parametrize("topic", ["orders_create", "orders_updated", "orders_cancelled"])
def test_order_bodies_have_the_documented_key_set(shopify, receiver, wait, documented_body, topic):
    shopify.subscribe(topic.upper(), receiver.url(topic))
    order = shopify.checkout(("SKU-1002", 1))
    if topic != "orders_create":
        response = shopify.http.post(f"/_sandbox/orders/{order['id']}/cancel", json={"reason": "CUSTOMER"})
        assert response.status_code == 200, response.text

    body = wait(lambda: receiver.on(topic), what=topic)[0].json()

    documented = documented_body(topic)
    assert set(body) == set(documented)
    for nested in ("line_items", "customer", "shipping_address", "shipping_lines"):
        # The stand-in has no staff, so attributed_staffs stays empty (its elements have no keys to compare).
        wanted = {p for p in _key_paths(documented[nested]) if not p.startswith("[].attributed_staffs.[]")}
        assert _key_paths(body[nested]) >= wanted, nested


def test_fulfillment_refund_and_return_bodies_have_the_documented_key_sets(
    shopify, receiver, wait, documented_body
):
    topics = {
        "FULFILLMENTS_CREATE": "fulfillments_create",
        "REFUNDS_CREATE": "refunds_create",
        "RETURNS_REQUEST": "returns_request",
        "RETURNS_APPROVE": "returns_approve",
        "RETURNS_CLOSE": "returns_close",
        "REVERSE_FULFILLMENT_ORDERS_DISPOSE": "reverse_fulfillment_orders_dispose",
        "ORDERS_EDITED": "orders_edited",
    }
    for topic, name in topics.items():
        shopify.subscribe(topic, receiver.url(name))
    # The documented returns/process body is empty ({}), so only its identity is checked.
    shopify.subscribe("RETURNS_PROCESS", receiver.url("returns_process"))
    order = shopify.checkout(("SKU-1004", 2), ("SKU-1005", 1))
    shopify.http.post(
        f"/_sandbox/orders/{order['id']}/edit", json={"add": [{"sku": "SKU-1006", "quantity": 1}]}
    ).raise_for_status()
    fo = shopify.gql(
        "query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 5) { nodes { id } } } }",
        {"id": order["admin_graphql_api_id"]},
    )["order"]["fulfillmentOrders"]["nodes"][0]
    shopify.gql(
        """mutation($fo: ID!) { fulfillmentCreate(fulfillment: {lineItemsByFulfillmentOrder:
            [{fulfillmentOrderId: $fo}],
                 trackingInfo: {company: "UPS", number: "1Z999"}}) { fulfillment { id } userErrors {
                   message } } }""",
        {"fo": fo["id"]},
    )
    line_id = order["line_items"][0]["id"]
    returned = shopify.http.post(
        f"/_sandbox/orders/{order['id']}/returns",
        json={"lines": [{"line_item_id": line_id, "quantity": 1, "reason": "DEFECTIVE"}]},
    )
    assert returned.status_code == 201, returned.text
    return_gid = returned.json()["return"]["admin_graphql_api_id"]
    processed = _returns_flow(shopify, return_gid)

    for name in topics.values():
        body = wait(lambda name=name: receiver.on(name), what=name)[0].json()
        assert set(body) == set(documented_body(name)), name
    assert processed["userErrors"] == []
    (hook,) = wait(lambda: receiver.on("returns_process"), what="returns_process")
    assert hook.headers["x-shopify-topic"] == "returns/process"
    body = hook.json()
    assert body["admin_graphql_api_id"] == return_gid
    assert return_gid.endswith(f"/{body['id']}")
    assert body["order"]["admin_graphql_api_id"] == order["admin_graphql_api_id"]


def _returns_flow(shopify, return_gid):
    data = shopify.gql(
        """mutation($id: ID!) { returnApproveRequest(input: {id: $id}) {
        return { status reverseFulfillmentOrders(first: 1) { nodes { lineItems(first: 5) { nodes { id
          totalQuantity } } } } }
        userErrors { message } } }""",
        {"id": return_gid},
    )["returnApproveRequest"]
    rfo_line = data["return"]["reverseFulfillmentOrders"]["nodes"][0]["lineItems"]["nodes"][0]
    location = shopify.gql("{ locations(first: 1) { nodes { id } } }")["locations"]["nodes"][0]["id"]
    shopify.gql(
        """mutation($line: ID!, $loc: ID!) { reverseFulfillmentOrderDispose(dispositionInputs: [
        {reverseFulfillmentOrderLineItemId: $line, quantity: 1, dispositionType: RESTOCKED, locationId:
          $loc}]) {
        userErrors { message } } }""",
        {"line": rfo_line["id"], "loc": location},
    )
    return shopify.gql(
        """mutation($id: ID!) { returnProcess(input: {returnId: $id, financialTransfer: {issueRefund: {}}}) {
        return { status } userErrors { message } } }""",
        {"id": return_gid},
    )["returnProcess"]


def test_a_failing_receiver_gets_retries_with_growing_back_off_until_it_answers(shopify, receiver, wait):
    receiver.script["flaky"] = [500, 503, 500]
    shopify.subscribe("ORDERS_CREATE", receiver.url("flaky"))

    shopify.checkout(("SKU-1001", 1))

    wait(lambda: len(receiver.on("flaky")) == 4, what="four attempts")
    hooks = receiver.on("flaky")
    assert {h.body for h in hooks} == {hooks[0].body}
    assert len({h.headers["x-shopify-event-id"] for h in hooks}) == 1
    assert len({h.headers["x-shopify-webhook-id"] for h in hooks}) == 1
    attempts = wait(
        lambda: (
            [d for d in shopify.deliveries("orders/create") if d["outcome"] == "delivered"]
            and shopify.deliveries("orders/create")
        ),
        what="delivery log",
    )
    waits = [d["next_retry_in_s"] for d in attempts if d["outcome"] == "failed"]
    assert waits == [60 * 1e-5, 120 * 1e-5, 240 * 1e-5]
    assert [d["outcome"] for d in attempts] == ["failed", "failed", "failed", "delivered"]


def test_a_subscription_is_removed_after_eight_consecutive_failures(shopify, receiver, wait):
    receiver.always["down"] = 500
    shopify.subscribe("ORDERS_CREATE", receiver.url("down"))

    shopify.checkout(("SKU-1001", 1))

    wait(lambda: any(d["outcome"] == "subscription_removed" for d in shopify.deliveries()), what="removal")
    assert len(receiver.on("down")) == 8
    assert shopify.gql(ORDERS_QUERY)["webhookSubscriptions"]["nodes"] == []
    shopify.checkout(("SKU-1001", 1))
    assert len(receiver.on("down")) == 8


def test_a_webhook_gives_up_after_eight_retries_when_removal_is_later(shopify_factory, receiver, wait):
    shop = shopify_factory(webhook_remove_after_failures=100)
    receiver.always["down"] = 500
    shop.subscribe("ORDERS_CREATE", receiver.url("down"))

    shop.checkout(("SKU-1001", 1))

    wait(lambda: any(d["outcome"] == "gave_up" for d in shop.deliveries()), what="give up")
    assert len(receiver.on("down")) == 9


def test_duplicate_fault_sends_the_same_event_twice(shopify, receiver, wait):
    shopify.subscribe("ORDERS_CREATE", receiver.url("dup"))
    shopify.http.put("/_sandbox/webhook-faults", json={"duplicate_rate": 1.0}).raise_for_status()

    shopify.checkout(("SKU-1001", 1))

    hooks = wait(lambda: len(receiver.on("dup")) == 2 and receiver.on("dup"), what="two deliveries")
    assert hooks[0].headers["x-shopify-event-id"] == hooks[1].headers["x-shopify-event-id"]
    assert hooks[0].body == hooks[1].body
    assert hooks[0].headers["x-shopify-webhook-id"] != hooks[1].headers["x-shopify-webhook-id"]


def test_drop_fault_never_sends_and_records_the_drop(shopify, receiver, wait):
    shopify.subscribe("ORDERS_CREATE", receiver.url("drop"))
    shopify.subscribe("ORDERS_PAID", receiver.url("paid"))
    shopify.http.put(
        "/_sandbox/webhook-faults", json={"drop_rate": 1.0, "topics": ["orders/create"]}
    ).raise_for_status()

    shopify.checkout(("SKU-1001", 1))

    wait(lambda: receiver.on("paid"), what="the orders/paid that is not dropped")
    wait(lambda: shopify.deliveries("orders/paid"), what="logged orders/paid")
    assert receiver.on("drop") == []
    assert [d["outcome"] for d in shopify.deliveries("orders/create")] == ["dropped"]


def test_delay_fault_holds_the_first_attempt(shopify, receiver, wait):
    shopify.subscribe("ORDERS_CREATE", receiver.url("slow"))
    shopify.http.put("/_sandbox/webhook-faults", json={"delay_rate": 1.0, "delay_ms": 300}).raise_for_status()

    shopify.checkout(("SKU-1001", 1))

    hook = wait(lambda: receiver.on("slow"), what="delayed delivery")[0]
    triggered = datetime.fromisoformat(hook.headers["x-shopify-triggered-at"][:26] + "+00:00")
    logged = wait(lambda: shopify.deliveries("orders/create"), what="logged attempt")[0]
    assert (datetime.fromisoformat(logged["at"]) - triggered).total_seconds() >= 0.3
    assert logged["fault"] == "delayed"


def test_reorder_fault_delivers_a_held_webhook_after_the_next_one(shopify, receiver, wait):
    shopify.subscribe("ORDERS_CREATE", receiver.url("order"))
    shopify.http.put(
        "/_sandbox/webhook-faults", json={"reorder_rate": 1.0, "reorder_max_hold_ms": 60000}
    ).raise_for_status()

    first = shopify.checkout(("SKU-1001", 1))
    second = shopify.checkout(("SKU-1002", 1))

    hooks = wait(lambda: len(receiver.on("order")) == 2 and receiver.on("order"), what="both deliveries")
    assert [h.json()["id"] for h in hooks] == [second["id"], first["id"]]


def test_webhook_subscriptions_are_created_listed_and_deleted(shopify, receiver):
    sub_id = shopify.subscribe("ORDERS_UPDATED", receiver.url("crud"))

    listed = shopify.gql(ORDERS_QUERY)["webhookSubscriptions"]["nodes"]
    duplicate = shopify.gql(
        """mutation($uri: String!) { webhookSubscriptionCreate(topic: ORDERS_UPDATED,
        webhookSubscription: {uri: $uri}) { webhookSubscription { id } userErrors { field message } } }""",
        {"uri": receiver.url("crud")},
    )["webhookSubscriptionCreate"]
    deleted = shopify.gql(
        "mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId "
        "userErrors { message } } }",
        {"id": sub_id},
    )["webhookSubscriptionDelete"]
    again = shopify.gql(
        "mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId "
        "userErrors { message } } }",
        {"id": sub_id},
    )["webhookSubscriptionDelete"]

    assert listed == [
        {
            "id": sub_id,
            "topic": "ORDERS_UPDATED",
            "uri": receiver.url("crud"),
            "endpoint": {"callbackUrl": receiver.url("crud")},
        }
    ]
    assert duplicate["webhookSubscription"] is None and duplicate["userErrors"][0]["message"].startswith(
        "Address"
    )
    assert deleted == {"deletedWebhookSubscriptionId": sub_id, "userErrors": []}
    assert again["deletedWebhookSubscriptionId"] is None and again["userErrors"]
    assert shopify.gql(ORDERS_QUERY)["webhookSubscriptions"]["nodes"] == []


def test_every_subscription_to_a_topic_gets_its_own_webhook_of_one_event(shopify, receiver, wait):
    shopify.subscribe("ORDERS_CREATE", receiver.url("a"))
    shopify.subscribe("ORDERS_CREATE", receiver.url("b"))

    shopify.checkout(("SKU-1001", 1))

    a = wait(lambda: receiver.on("a"), what="a")[0]
    b = wait(lambda: receiver.on("b"), what="b")[0]
    assert a.headers["x-shopify-event-id"] == b.headers["x-shopify-event-id"]
    assert a.headers["x-shopify-webhook-id"] != b.headers["x-shopify-webhook-id"]
    assert json.loads(a.body) == json.loads(b.body)


def test_checkout_cli_order_reaches_a_loopback_callback_url_as_a_signed_orders_create(
    shopify, receiver, wait
):
    registered = shopify.gql(
        """mutation($url: URL!) { webhookSubscriptionCreate(topic: ORDERS_CREATE,
             webhookSubscription: {callbackUrl: $url, format: JSON}) {
             webhookSubscription { id endpoint { ... on WebhookHttpEndpoint { callbackUrl } } }
             userErrors { field message } } }""",
        {"url": receiver.url("adapter")},
    )["webhookSubscriptionCreate"]
    assert registered["userErrors"] == []
    assert registered["webhookSubscription"]["endpoint"]["callbackUrl"] == receiver.url("adapter")

    placed = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox.shopify.checkout",
            "--base-url",
            shopify.base_url,
            "--sku",
            "SKU-1001:2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert placed.returncode == 0, placed.stderr
    printed = json.loads(placed.stdout.strip().splitlines()[-1])
    hook = wait(lambda: receiver.on("adapter"), what="orders/create at the callback URL")[0]
    signature = base64.b64encode(
        hmac.new(shopify.settings.webhook_secret.encode(), hook.body, hashlib.sha256).digest()
    ).decode()
    assert hook.headers["x-shopify-hmac-sha256"] == signature
    assert hook.headers["x-shopify-topic"] == "orders/create"
    body = hook.json()
    assert body["id"] == printed["id"] and body["name"] == printed["name"]
    assert [(li["sku"], li["quantity"]) for li in body["line_items"]] == [("SKU-1001", 2)]


@pytest.fixture
def silent_receiver():
    """A receiver that accepts the connection and never answers until the test ends."""
    release = threading.Event()
    hits: list[float] = []

    async def hang(request: Request) -> Response:
        await request.body()
        hits.append(time.monotonic())
        await asyncio.to_thread(release.wait, 30)
        return Response(status_code=200)

    app = Starlette(routes=[Route("/hang", hang, methods=["POST"])])
    with serve_in_thread(app) as base_url:
        yield f"{base_url}/hang", hits
        release.set()


def test_a_receiver_that_does_not_answer_in_time_fails_the_attempt_and_is_retried(
    shopify_factory, silent_receiver, wait
):
    url, hits = silent_receiver
    shop = shopify_factory(webhook_timeout_s=0.3, webhook_max_retries=1, webhook_remove_after_failures=100)
    shop.subscribe("ORDERS_CREATE", url)

    shop.checkout(("SKU-1001", 1))

    wait(lambda: any(d["outcome"] == "gave_up" for d in shop.deliveries()), what="give up")
    failed = [d for d in shop.deliveries("orders/create") if d["outcome"] == "failed"]
    assert [d["error"] for d in failed] == ["timeout", "timeout"]
    assert all(d["duration_ms"] >= 300 for d in failed)
    assert len(hits) == 2
    assert ShopifySettings().webhook_timeout_s == 5.0


def test_paid_fulfilled_and_hold_topics_fire_with_the_documented_key_sets(
    shopify, receiver, wait, documented_body
):
    topics = {
        "ORDERS_PAID": "orders_paid",
        "ORDERS_PARTIALLY_FULFILLED": "orders_partially_fulfilled",
        "ORDERS_FULFILLED": "orders_fulfilled",
        "FULFILLMENT_ORDERS_PLACED_ON_HOLD": "fulfillment_orders_placed_on_hold",
        "FULFILLMENT_ORDERS_HOLD_RELEASED": "fulfillment_orders_hold_released",
    }
    for topic, name in topics.items():
        shopify.subscribe(topic, receiver.url(name))
    order = shopify.checkout(("SKU-1001", 2))
    fo = shopify.gql(
        """query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 5) { nodes { id
             lineItems(first: 5) { nodes { id } } } } } }""",
        {"id": order["admin_graphql_api_id"]},
    )["order"]["fulfillmentOrders"]["nodes"][0]
    hold = shopify.gql(
        """mutation($id: ID!) { fulfillmentOrderHold(id: $id, fulfillmentHold: {reason: OTHER}) {
             userErrors { message } } }""",
        {"id": fo["id"]},
    )["fulfillmentOrderHold"]
    release = shopify.gql(
        "mutation($id: ID!) { fulfillmentOrderReleaseHold(id: $id) { userErrors { message } } }",
        {"id": fo["id"]},
    )["fulfillmentOrderReleaseHold"]
    ship = """mutation($fo: ID!, $line: ID!) { fulfillmentCreate(fulfillment: {lineItemsByFulfillmentOrder:
        [{fulfillmentOrderId: $fo, fulfillmentOrderLineItems: [{id: $line, quantity: 1}]}]}) {
        userErrors { message } } }"""
    line = fo["lineItems"]["nodes"][0]["id"]
    first = shopify.gql(ship, {"fo": fo["id"], "line": line})["fulfillmentCreate"]
    second = shopify.gql(ship, {"fo": fo["id"], "line": line})["fulfillmentCreate"]
    assert hold["userErrors"] == release["userErrors"] == first["userErrors"] == second["userErrors"] == []

    bodies = {
        name: wait(lambda name=name: receiver.on(name), what=name)[0].json() for name in topics.values()
    }

    for name in ("orders_paid", "orders_partially_fulfilled", "orders_fulfilled"):
        assert set(bodies[name]) == set(documented_body(name)), name
        assert bodies[name]["id"] == order["id"]
    assert bodies["orders_partially_fulfilled"]["fulfillment_status"] == "partial"
    assert bodies["orders_fulfilled"]["fulfillment_status"] == "fulfilled"
    for name in ("fulfillment_orders_placed_on_hold", "fulfillment_orders_hold_released"):
        assert bodies[name]["fulfillment_order"]["id"] == fo["id"], name


def test_products_update_body_has_the_documented_key_set(shopify, receiver, wait, documented_body):
    shopify.subscribe("PRODUCTS_UPDATE", receiver.url("products"))
    handle = shopify.http.get("/_sandbox/state").json()["products"][0]["handle"]

    updated = shopify.gql(
        """mutation($input: ProductSetInput!) { productSet(input: $input) { product { id }
             userErrors { message } } }""",
        {"input": {"handle": handle, "title": "Renamed"}},
    )["productSet"]

    assert updated["userErrors"] == []
    body = wait(lambda: receiver.on("products"), what="products/update")[0].json()
    documented = documented_body("products_update")
    assert set(body) == set(documented)
    assert set(body["variants"][0]) == set(documented["variants"][0])
    assert body["title"] == "Renamed" and body["admin_graphql_api_id"] == updated["product"]["id"]


@pytest.fixture
def slow_receiver():
    """A receiver that answers 200 after 0.4 s, counting the requests it holds at once."""
    seen = {"now": 0, "most": 0}
    lock = threading.Lock()

    async def slow(request: Request) -> Response:
        await request.body()
        with lock:
            seen["now"] += 1
            seen["most"] = max(seen["most"], seen["now"])
        await asyncio.sleep(0.4)  # the receiver's own work, not a wait for a condition
        with lock:
            seen["now"] -= 1
        return Response(status_code=200)

    app = Starlette(routes=[Route("/slow", slow, methods=["POST"])])
    with serve_in_thread(app) as base_url:
        yield f"{base_url}/slow", seen


def test_the_deadline_starts_when_the_request_leaves_not_while_it_waits_for_a_connection(
    shopify_factory, slow_receiver, wait
):
    url, seen = slow_receiver
    # Two connections for twelve webhooks: the last ones wait about 2.4 s for a connection of the
    # sender's, longer than the 2 s deadline, yet the receiver answers each within 0.4 s.
    shop = shopify_factory(
        webhook_timeout_s=2.0, webhook_max_connections=2, webhook_remove_after_failures=100
    )
    shop.subscribe("ORDERS_CREATE", url)

    for _ in range(12):
        shop.checkout(("SKU-1001", 1))

    wait(lambda: len(shop.deliveries("orders/create")) >= 12, timeout_s=60, what="twelve attempts")
    attempts = shop.deliveries("orders/create")
    assert [d["outcome"] for d in attempts] == ["delivered"] * 12
    # The receiver's 0.4 s is counted. asyncio may fire a timer up to its clock resolution early
    # (BaseEventLoop._clock_resolution), so a 0.4 s sleep can end at 399.9 ms.
    durations = [d["duration_ms"] for d in attempts]
    assert all(duration >= 395 for duration in durations), durations
    assert seen["most"] <= 2  # the pool really was the bottleneck
