"""Fault kinds and the control API of the 3PL stand-in: latency, 5xx, timeouts, faults at start, reset."""

from __future__ import annotations

import time

import httpx

from sandbox.tpl.config import TplSettings
from tests.integration.sandbox.tpl.conftest import HEADERS


def test_latency_fault_delays_the_answer_of_its_operation(tpl) -> None:
    tpl.client.put("/_sandbox/faults", json={"inventory.list": {"latency_ms": 300}}).raise_for_status()

    started = time.monotonic()
    slow = tpl.client.get(tpl.api("/inventory-level"), params={"SKUs": "SKU-1001"})
    slow_s = time.monotonic() - started

    assert slow.status_code == 200 and slow.json()[0]["sku"] == "SKU-1001"
    assert slow_s >= 0.3


def test_injected_503_on_create_creates_nothing_and_a_retry_creates_once(tpl) -> None:
    tpl.client.put(
        "/_sandbox/faults", json={"order.create": {"error_rate": 1, "error_status": 503}}
    ).raise_for_status()

    failed = tpl.create_order("SO-503", [("SKU-1001", 1)])
    tpl.client.delete("/_sandbox/faults", params={"operation": "order.create"}).raise_for_status()
    retried = tpl.create_order("SO-503", [("SKU-1001", 1)])

    assert failed.status_code == 503 and failed.headers["X-Sandbox-Fault"] == "error"
    assert retried.status_code == 201
    counts = tpl.client.get("/_sandbox/counts").json()
    assert counts["created"]["orders"] == {"SO-503": 1} and counts["duplicates"] == {}


def test_timeout_fault_hangs_until_the_client_gives_up_and_clearing_releases_it(tpl) -> None:
    tpl.client.put("/_sandbox/faults", json={"*": {"timeout_rate": 1, "timeout_s": 60}}).raise_for_status()

    with httpx.Client(base_url=tpl.base_url, headers=HEADERS, timeout=0.3) as impatient:
        try:
            impatient.get(tpl.api("/location"))
            timed_out = False
        except httpx.ReadTimeout:
            timed_out = True
    tpl.client.delete("/_sandbox/faults").raise_for_status()

    assert timed_out
    assert tpl.client.get(tpl.api("/location")).status_code == 200


def test_faults_given_in_the_settings_apply_from_the_first_request(tpl_factory) -> None:
    faults = {"order.get": {"error_rate": 1, "error_status": 500}, "order.create": {"drop_response_rate": 1}}

    with tpl_factory(faults=faults) as tpl:
        created = tpl.create_order("SO-START", [("SKU-1001", 1)])
        (order,) = tpl.client.get(tpl.api("/order"), params={"ReferenceIds": "SO-START"}).json()
        fetched = tpl.client.get(tpl.api(f"/order/{order['id']}"))
        configured = tpl.client.get("/_sandbox/faults").json()["faults"]

    assert created.status_code == 504
    assert fetched.status_code == 500
    assert set(configured) == {"order.get", "order.create"}


def test_reset_forgets_faults_counts_and_orders_and_reseeds(tpl) -> None:
    tpl.create_order("SO-1", [("SKU-1001", 1)])
    tpl.client.put("/_sandbox/faults", json={"order.get": {"latency_ms": 1}}).raise_for_status()

    reset = tpl.client.post("/_sandbox/reset", json={"seed": 3})

    assert reset.json() == {"seed": 3}
    assert tpl.client.get("/_sandbox/faults").json() == {"seed": 3, "faults": {}}
    assert tpl.client.get("/_sandbox/counts").json() == {
        "attempts": {},
        "created": {},
        "created_at": {},
        "duplicates": {},
    }
    assert tpl.client.get("/_sandbox/state").json()["orders"] == []


def test_the_default_limit_refuses_the_151st_request_within_a_minute(tpl_factory) -> None:
    with tpl_factory(rate_limit=TplSettings().rate_limit) as tpl:
        answers = [tpl.client.get(tpl.api("/location")).status_code for _ in range(151)]

    assert answers[:150] == [200] * 150
    assert answers[150] == 429
