"""Webhooks from the real Shopify stand-in into the adapter: signature, dedup, storage, ingest."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac

import httpx
from sqlalchemy import func, select

from services.shopify_adapter.store import tables
from tests.integration.shopify_adapter.conftest import NEW_SECRET, OLD_SECRET, SHOP, eventually


def _sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _headers(body: bytes, secret: str | None, event_id: str = "evt-1", topic: str = "orders/create") -> dict:
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Webhook-Id": f"wh-{event_id}",
        "X-Shopify-API-Version": "2026-04",
        "Content-Type": "application/json",
    }
    if secret is not None:
        headers["X-Shopify-Hmac-Sha256"] = _sign(body, secret)
    return headers


async def _rows(adapter, **where) -> list[tables.WebhookDelivery]:
    async with adapter.db.read() as session:
        query = select(tables.WebhookDelivery)
        for name, value in where.items():
            query = query.where(getattr(tables.WebhookDelivery, name) == value)
        return list((await session.execute(query)).scalars().all())


async def _count(adapter) -> int:
    async with adapter.db.read() as session:
        return (await session.execute(select(func.count()).select_from(tables.WebhookDelivery))).scalar_one()


def _url(adapter) -> str:
    return f"http://127.0.0.1:{adapter.http.port}/webhooks/shopify"


async def test_a_checkout_delivered_four_times_at_once_is_stored_and_ingested_once(
    shop, adapter, orders_service
):
    recorder, _ = orders_service
    # A second subscription to the same endpoint (another address string, as a mistyped manual
    # registration would be), plus the stand-in's duplicate fault: one event reaches the adapter
    # four times, concurrently, with one event id.
    shop.gql(
        """mutation($uri: String!) { webhookSubscriptionCreate(topic: ORDERS_CREATE,
             webhookSubscription: {uri: $uri, format: JSON}) { userErrors { message } } }""",
        {"uri": _url(adapter) + "?copy=2"},
    )
    shop.webhook_faults(duplicate_rate=1.0, topics=["orders/create"])

    order = shop.checkout(("SKU-1001", 2), ("SKU-1003", 1))

    await eventually(
        lambda: len([d for d in shop.deliveries("orders/create") if d.get("status_code") == 200]) >= 4,
        what="four orders/create deliveries answered 200",
    )
    await eventually(lambda: recorder.ingests, what="IngestOrder called")
    stored = await _rows(adapter, topic="orders/create")
    assert len(stored) == 1
    await eventually(
        lambda: _rows(adapter, topic="orders/create", status=tables.PROCESSED), what="delivery processed"
    )
    assert len(recorder.ingests) == 1
    ingested = recorder.ingests[0]
    assert ingested.order.channel_order.id == order["admin_graphql_api_id"]
    assert [(line.sku, line.quantity) for line in ingested.order.lines] == [("SKU-1001", 2), ("SKU-1003", 1)]
    assert ingested.request_id.startswith(f"shopify:order:{order['id']}@")


async def test_webhooks_of_different_orders_are_ingested_concurrently(shop, adapter, orders_service):
    recorder, _ = orders_service
    recorder.gate = asyncio.Event()  # every IngestOrder waits until both are in flight

    first, second = shop.checkout(("SKU-1001", 1)), shop.checkout(("SKU-1002", 1))

    await eventually(lambda: recorder.max_in_flight >= 2, what="two IngestOrder calls in flight at once")
    recorder.gate.set()

    async def both_processed() -> bool:
        return len(await _rows(adapter, topic="orders/create", status=tables.PROCESSED)) == 2

    await eventually(both_processed, what="both deliveries processed")
    ingested = {r.order.channel_order.id for r in recorder.ingests}
    assert ingested == {first["admin_graphql_api_id"], second["admin_graphql_api_id"]}


async def test_a_burst_is_stored_in_shared_transactions_and_each_answer_follows_its_commit(
    adapter, monkeypatch
):
    bodies = [f'{{"id": {n}, "admin_graphql_api_id": "gid://shopify/Order/{n}"}}'.encode() for n in range(60)]
    # Webhooks are the adapter's only urgent writers (the delivery worker's settles are not): count
    # the urgent transactions the database's group commit opens for them.
    urgent_transactions = 0
    transaction = adapter.db.transaction

    def counting(*, urgent: bool = False):
        nonlocal urgent_transactions
        urgent_transactions += urgent
        return transaction(urgent=urgent)

    monkeypatch.setattr(adapter.db, "transaction", counting)

    async with httpx.AsyncClient(trust_env=False, limits=httpx.Limits(max_connections=100)) as http:
        replies = await asyncio.gather(
            *(
                http.post(_url(adapter), content=b, headers=_headers(b, NEW_SECRET, event_id=f"burst-{n}"))
                for n, b in enumerate(bodies)
            ),
            # the same event again, in the same burst: stored once
            http.post(_url(adapter), content=bodies[0], headers=_headers(bodies[0], NEW_SECRET, "burst-0")),
        )

    assert [r.status_code for r in replies] == [200] * 61
    assert sorted(r.json()["status"] for r in replies).count("stored") == 60
    # every 200 came after its row committed: all 60 rows are there now
    assert len([r for r in await _rows(adapter) if r.event_id.startswith("burst-")]) == 60
    assert urgent_transactions < 61  # shared commits, not one per webhook


async def test_a_bad_or_missing_signature_is_401_and_nothing_is_stored(adapter, orders_service):
    body = b'{"id": 1, "admin_graphql_api_id": "gid://shopify/Order/1"}'

    async with httpx.AsyncClient(trust_env=False) as http:
        bad = await http.post(_url(adapter), content=body, headers=_headers(body, "not_the_secret"))
        missing = await http.post(_url(adapter), content=body, headers=_headers(body, None, event_id="evt-2"))

    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "invalid_signature"
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_signature"
    assert await _count(adapter) == 0
    assert orders_service[0].ingests == []


async def test_a_malformed_body_with_a_good_signature_is_400_and_kept_as_rejected(adapter, orders_service):
    body = b'{"id": 1, "line_items": ['

    async with httpx.AsyncClient(trust_env=False) as http:
        reply = await http.post(
            _url(adapter), content=body, headers=_headers(body, NEW_SECRET, event_id="evt-bad")
        )

    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "malformed_body"
    [row] = await _rows(adapter, event_id="evt-bad")
    assert row.status == tables.REJECTED
    assert row.body == body
    assert orders_service[0].ingests == []


async def test_during_rotation_webhooks_signed_with_the_old_or_the_new_secret_are_accepted(adapter):
    old_body = b'{"id": 11}'
    new_body = b'{"id": 12}'

    async with httpx.AsyncClient(trust_env=False) as http:
        old = await http.post(
            _url(adapter), content=old_body, headers=_headers(old_body, OLD_SECRET, "evt-old", "shop/update")
        )
        new = await http.post(
            _url(adapter), content=new_body, headers=_headers(new_body, NEW_SECRET, "evt-new", "shop/update")
        )

    assert (old.status_code, new.status_code) == (200, 200)
    assert {r.event_id for r in await _rows(adapter)} == {"evt-old", "evt-new"}
    await eventually(lambda: _rows(adapter, status=tables.IGNORED), what="unhandled topics marked ignored")


async def test_a_foreign_shop_and_an_oversized_body_are_refused_before_storage(adapter):
    body = b'{"id": 13}'
    foreign = {
        **_headers(body, NEW_SECRET, "evt-foreign"),
        "X-Shopify-Shop-Domain": "someone-else.myshopify.com",
    }
    huge = b'{"pad": "' + b"x" * (70 * 1024) + b'"}'

    async with httpx.AsyncClient(trust_env=False) as http:
        refused = await http.post(_url(adapter), content=body, headers=foreign)
        too_large = await http.post(
            _url(adapter), content=huge, headers=_headers(huge, NEW_SECRET, "evt-huge")
        )

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "shop_not_allowed"
    assert too_large.status_code == 413
    assert await _count(adapter) == 0


async def test_an_order_the_orders_service_refuses_is_marked_failed_with_the_reason(
    shop, adapter, orders_service
):
    recorder, _ = orders_service
    recorder.refuse_skus.add("SKU-1002")

    shop.checkout(("SKU-1002", 1))

    [row] = await eventually(
        lambda: _rows(adapter, topic="orders/create", status=tables.FAILED), what="delivery marked failed"
    )
    assert "INVALID_ARGUMENT" in row.last_error
    assert "unknown SKU" in row.last_error


async def test_a_cancellation_in_shopify_cancels_the_mesh_order(shop, adapter, orders_service):
    recorder, _ = orders_service
    order = shop.checkout(("SKU-1004", 1))
    await eventually(lambda: recorder.ingests, what="order ingested")

    response = shop.http.post(f"/_sandbox/orders/{order['id']}/cancel", json={"reason": "CUSTOMER"})
    assert response.status_code == 200, response.text

    await eventually(lambda: recorder.cancels, what="CancelOrder called")
    cancel = recorder.cancels[0]
    assert cancel.order_id == "ord-1"
    assert cancel.request_id.startswith(f"shopify:cancel:{order['id']}@")
    await asyncio.sleep(0)  # let the worker settle the delivery row before teardown
