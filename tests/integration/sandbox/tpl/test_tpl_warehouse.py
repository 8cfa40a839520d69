"""The warehouse at work over real HTTP: webhooks with retries, splits, returns, delays, the loop."""

from __future__ import annotations

from sandbox.tpl.webhook import sign
from tests.integration.sandbox.tpl.conftest import wait_until

SCALE = 0.01
#: Distinct delays, in simulated seconds, so each stage is seen waiting for its own one.
DELAYS = {
    "time_scale": SCALE,
    "pick_delay_s": 30.0,
    "pack_delay_s": 20.0,
    "ship_delay_s": 60.0,
    "delivery_delay_s": 600.0,
    "return_receive_delay_s": 300.0,
}


def subscribe(tpl, receiver, topic: str) -> dict:
    response = tpl.client.post(tpl.api("/webhook"), json={"topic": topic, "subscription_url": receiver.url})
    assert response.status_code == 201
    return response.json()


def tick(tpl) -> list[dict]:
    """Run one step as the simulation loop does: only what is due moves."""
    response = tpl.client.post("/_sandbox/advance", json={"force": False})
    assert response.status_code == 200, response.text
    return response.json()["events"]


def shipment_of(tpl, order_id: int) -> dict:
    return tpl.client.get(tpl.api(f"/order/{order_id}")).json()["shipments"][0]


def test_order_shipped_webhook_is_retried_with_back_off_until_accepted(tpl, receiver) -> None:
    receiver.fail_first = 2
    subscription = subscribe(tpl, receiver, "order.shipped")
    order = tpl.create_order("SO-HOOK", [("SKU-1001", 1)]).json()

    tpl.client.post(f"/_sandbox/orders/{order['id']}/ship")

    (body,) = wait_until(lambda: receiver.bodies("order.shipped"), what="a delivered order.shipped")
    assert body["reference_id"] == "SO-HOOK"
    assert body["tracking"]["tracking_number"].startswith("1Z")
    assert body["parent_cartons"][0]["tracking_number"] == body["tracking"]["tracking_number"]
    assert body["order"]["status"] == "Fulfilled"
    log = wait_until(
        lambda: (lambda entries: entries if len(entries) == 3 else None)(
            tpl.client.get("/_sandbox/webhooks/deliveries").json()
        ),
        what="three logged attempts",
    )
    assert [(e["attempt"], e["status"], e["delivered"]) for e in log] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    last = receiver.requests[-1]
    headers = last["headers"]
    assert headers["webhook-signature"] == sign(
        subscription["secret"], headers["webhook-id"], headers["webhook-timestamp"], last["raw"]
    )


def test_webhook_delivery_gives_up_after_max_attempts(tpl_factory, receiver) -> None:
    receiver.fail_first = 100
    with tpl_factory(webhook_max_attempts=3) as tpl:
        subscribe(tpl, receiver, "order.shipped")
        order = tpl.create_order("SO-GIVEUP", [("SKU-1001", 1)]).json()
        tpl.client.post(f"/_sandbox/orders/{order['id']}/ship")

        log = wait_until(
            lambda: (lambda entries: entries if len(entries) >= 3 else None)(
                tpl.client.get("/_sandbox/webhooks/deliveries").json()
            ),
            what="three attempts",
        )

    assert [e["attempt"] for e in log] == [1, 2, 3]
    assert not any(e["delivered"] for e in log)
    assert len(receiver.requests) == 3


def test_partial_shipment_leaves_in_two_parcels_with_separate_tracking(tpl, receiver) -> None:
    subscribe(tpl, receiver, "order.shipped")
    order = tpl.create_order("SO-SPLIT", [("SKU-1002", 3), ("SKU-1003", 1)]).json()

    shipped = tpl.client.post(f"/_sandbox/orders/{order['id']}/ship", json={"split": True}).json()["order"]

    first, second = shipped["shipments"]
    assert [(p["sku"], p["quantity"]) for p in first["products"]] == [("SKU-1002", 2), ("SKU-1003", 1)]
    assert [(p["sku"], p["quantity"]) for p in second["products"]] == [("SKU-1002", 1)]
    assert first["tracking"]["tracking_number"] != second["tracking"]["tracking_number"]
    assert shipped["status"] == "Fulfilled"
    bodies = wait_until(lambda: (lambda b: b if len(b) == 2 else None)(receiver.bodies("order.shipped")))
    assert {b["id"] for b in bodies} == {first["id"], second["id"]}


def test_seeded_partial_rate_ships_part_first_and_the_rest_on_a_later_step(tpl_factory) -> None:
    with tpl_factory(partial_shipment_rate=1.0) as tpl:
        order = tpl.create_order("SO-RATE", [("SKU-1004", 2)]).json()

        tpl.client.post("/_sandbox/advance", json={"steps": 3})  # picked, packed, first parcel shipped
        middle = tpl.client.get(tpl.api(f"/order/{order['id']}")).json()
        tpl.client.post("/_sandbox/advance", json={"steps": 1})
        done = tpl.client.get(tpl.api(f"/order/{order['id']}")).json()

    assert middle["status"] == "PartiallyFulfilled"
    assert [s["status"] for s in middle["shipments"]] == ["Completed", "Processing"]
    assert done["status"] == "Fulfilled"
    assert [sum(p["quantity"] for p in s["products"]) for s in done["shipments"]] == [1, 1]


def test_advance_moves_an_order_through_pick_pack_ship_and_delivery(tpl, receiver) -> None:
    subscribe(tpl, receiver, "order.shipment.delivered")
    order = tpl.create_order("SO-STEPS", [("SKU-1005", 1)]).json()
    stages = []

    for _ in range(4):
        tpl.client.post("/_sandbox/advance", json={"steps": 1})
        stages.append(
            tpl.client.get(tpl.api(f"/order/{order['id']}")).json()["shipments"][0]["status_details"][0][
                "name"
            ]
        )

    assert stages == ["Picked", "Packed", "Completed", "Delivered"]
    (body,) = wait_until(lambda: receiver.bodies("order.shipment.delivered"))
    assert body["delivery_date"]


def test_simulation_loop_ships_and_delivers_on_its_own(tpl_factory) -> None:
    with tpl_factory(simulate=True, tick_s=5.0, time_scale=0.002) as tpl:
        order = tpl.create_order("SO-LOOP", [("SKU-1006", 1)]).json()

        delivered = wait_until(
            lambda: (lambda o: o if o["shipments"][0]["delivery_date"] else None)(
                tpl.client.get(tpl.api(f"/order/{order['id']}")).json()
            ),
            timeout_s=20,
            what="delivery by the simulation loop",
        )

    assert delivered["status"] == "Fulfilled"
    assert delivered["shipments"][0]["tracking"]["tracking_number"]


def test_return_received_with_damage_restocks_only_good_units_and_notifies(tpl, receiver) -> None:
    subscribe(tpl, receiver, "return.completed")
    before = tpl.inventory("SKU-1009")["EAST"]
    created = tpl.client.post(
        tpl.api("/return"),
        json={
            "reference_id": "RMA-1",
            "fulfillment_center": {"id": 1},
            "tracking_number": "1ZRETURN",
            "inventory": [{"sku": "SKU-1009", "quantity": 3}],
        },
    )
    assert created.json()["status"] == "AwaitingArrival"

    received = tpl.client.post(
        f"/_sandbox/returns/{created.json()['id']}/receive", json={"damaged": {"SKU-1009": 1}}
    )

    assert received.status_code == 200
    ret = tpl.client.get(tpl.api(f"/return/{created.json()['id']}")).json()
    assert ret["status"] == "Completed"
    assert ret["inventory"][0]["action_taken"] == [
        {"action": "Restock", "quantity": 2},
        {"action": "Quarantine", "quantity": 1, "reason": "Damaged"},
    ]
    after = tpl.inventory("SKU-1009")["EAST"]
    assert after["on_hand_quantity"] == before["on_hand_quantity"] + 2
    assert after["damaged_quantity"] == before["damaged_quantity"] + 1
    (body,) = wait_until(lambda: receiver.bodies("return.completed"))
    assert body["reference_id"] == "RMA-1"


def test_seeded_damage_rate_decides_the_same_way_for_the_same_seed(tpl_factory) -> None:
    outcomes = []
    for _ in range(2):
        with tpl_factory(damaged_return_rate=0.5) as tpl:
            ret = tpl.client.post(
                tpl.api("/return"),
                json={"reference_id": "RMA-S", "inventory": [{"sku": "SKU-1001", "quantity": 20}]},
            ).json()
            tpl.client.post("/_sandbox/advance", json={"steps": 1})
            outcomes.append(
                tpl.client.get(tpl.api(f"/return/{ret['id']}")).json()["inventory"][0]["quantity_damaged"]
            )

    assert outcomes[0] == outcomes[1]
    assert 0 < outcomes[0] < 20


def test_webhook_subscriptions_are_listed_and_deleted(tpl, receiver) -> None:
    created = subscribe(tpl, receiver, "return.completed")

    listed = tpl.client.get(tpl.api("/webhook")).json()
    deleted = tpl.client.delete(tpl.api(f"/webhook/{created['id']}"))
    bad_topic = tpl.client.post(
        tpl.api("/webhook"), json={"topic": "order.nope", "subscription_url": receiver.url}
    )

    assert [s["id"] for s in listed] == [created["id"]]
    assert deleted.status_code == 204
    assert tpl.client.get(tpl.api("/webhook")).json() == []
    assert bad_topic.status_code == 400


def test_injected_delivery_fault_fails_the_attempt_and_the_retry_delivers(tpl, receiver) -> None:
    subscribe(tpl, receiver, "order.shipped")
    tpl.client.put("/_sandbox/faults", json={"operation": "webhook.deliver", "fault": {"error_rate": 1.0}})
    order = tpl.create_order("SO-FAULT", [("SKU-1001", 1)]).json()
    tpl.client.post(f"/_sandbox/orders/{order['id']}/ship")
    wait_until(lambda: tpl.client.get("/_sandbox/webhooks/deliveries").json(), what="a failed attempt")

    tpl.client.delete("/_sandbox/faults")

    (body,) = wait_until(lambda: receiver.bodies("order.shipped"), what="delivery after the fault")
    assert body["reference_id"] == "SO-FAULT"
    log = wait_until(
        lambda: (lambda entries: entries if entries[-1]["delivered"] else None)(
            tpl.client.get("/_sandbox/webhooks/deliveries").json()
        ),
        what="the delivered attempt in the log",
    )
    assert log[0]["error"] == "sandbox fault 503"


def test_an_order_waits_out_its_pick_pack_and_ship_delays_before_each_stage(tpl_factory, clock) -> None:
    timeline = [  # (simulated seconds that pass, then the stage after one tick)
        (0, "Processing"),
        (29, "Processing"),  # the 30 s pick delay is not over
        (2, "Picked"),
        (0, "Picked"),  # a second tick at the same moment moves nothing
        (19, "Picked"),  # the 20 s pack delay counts from the pick
        (2, "Packed"),
        (59, "Packed"),  # the 60 s ship delay counts from the pack
        (2, "Completed"),
    ]
    with tpl_factory(**DELAYS) as tpl:
        order = tpl.create_order("SO-DELAYS", [("SKU-1007", 1)]).json()
        seen = []
        for passed_s, _ in timeline:
            clock.move(passed_s * SCALE)
            tick(tpl)
            seen.append(shipment_of(tpl, order["id"]))

    assert [s["status_details"][0]["name"] for s in seen] == [stage for _, stage in timeline]
    assert all(s["tracking"] is None for s in seen[:-1])
    assert seen[-1]["tracking"]["tracking_number"].startswith("1Z")


def test_a_shipped_order_is_delivered_only_after_the_delivery_delay(tpl_factory, receiver, clock) -> None:
    with tpl_factory(**DELAYS) as tpl:
        subscribe(tpl, receiver, "order.shipment.delivered")
        order = tpl.create_order("SO-DELIVERY", [("SKU-1007", 1)]).json()
        tpl.client.post(f"/_sandbox/orders/{order['id']}/ship")

        clock.move(599 * SCALE)
        early = tick(tpl)
        in_transit = shipment_of(tpl, order["id"])
        clock.move(2 * SCALE)
        late = tick(tpl)
        delivered = shipment_of(tpl, order["id"])
        (body,) = wait_until(lambda: receiver.bodies("order.shipment.delivered"), what="the delivery webhook")

    assert early == []
    assert in_transit["status_details"][0]["name"] == "Completed"
    assert in_transit["delivery_date"] is None
    assert late == [{"topic": "order.shipment.delivered", "id": delivered["id"]}]
    assert delivered["status_details"][0]["name"] == "Delivered"
    assert delivered["delivery_date"]
    assert body["id"] == delivered["id"]


def test_a_return_is_received_only_after_the_return_receive_delay(tpl_factory, clock) -> None:
    with tpl_factory(**DELAYS) as tpl:
        before = tpl.inventory("SKU-1008")["EAST"]["on_hand_quantity"]
        created = tpl.client.post(
            tpl.api("/return"),
            json={
                "reference_id": "RMA-DELAY",
                "fulfillment_center": {"id": 1},
                "inventory": [{"sku": "SKU-1008", "quantity": 2}],
            },
        ).json()
        statuses = []
        for passed_s in (0, 299, 2):
            clock.move(passed_s * SCALE)
            tick(tpl)
            statuses.append(tpl.client.get(tpl.api(f"/return/{created['id']}")).json()["status"])
        after = tpl.inventory("SKU-1008")["EAST"]["on_hand_quantity"]

    assert statuses == ["AwaitingArrival", "AwaitingArrival", "Completed"]
    assert after == before + 2
