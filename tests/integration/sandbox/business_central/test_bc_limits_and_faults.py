"""Request window, concurrency limit and fault injection on the Business Central stand-in."""

import threading
import time

import httpx
import pytest

from sandbox.business_central.config import BusinessCentralSettings


def test_request_window_answers_429_with_retry_after_then_slides(make_bc):
    bc = make_bc(rate_limit=5, rate_window_s=300)  # the fixture already spent 1 (GET companies)
    answers = [bc.api.get(bc.url("items")).status_code for _ in range(5)]

    refused = bc.api.get(bc.url("items"))
    bc.clock.now += 300

    assert answers == [200, 200, 200, 200, 429]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "Application_TooManyRequests"
    assert refused.headers["retry-after"] == "300"
    assert bc.api.get(bc.url("items")).status_code == 200


def _wait_until(condition, deadline_s=5.0):
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        time.sleep(0.005)


def test_more_than_the_simultaneous_limit_is_429(make_bc):
    bc = make_bc(max_concurrent=2)
    bc.raw.put("/_sandbox/faults", json={"items.list": {"timeout_rate": 1, "timeout_s": 30}})
    hanging = [threading.Thread(target=bc.api.get, args=(bc.url("items"),)) for _ in range(2)]
    for thread in hanging:
        thread.start()
    _wait_until(lambda: all(limit.in_flight == 2 for limit in bc.app.in_flight.values()))

    refused = bc.api.get(bc.url("customers"))
    bc.raw.delete("/_sandbox/faults")
    for thread in hanging:
        thread.join(timeout=5)

    assert refused.status_code == 429
    assert "retry-after" in refused.headers
    assert bc.api.get(bc.url("customers")).status_code == 200


def test_latency_fault_delays_the_operation_only(bc):
    bc.raw.put("/_sandbox/faults", json={"operation": "salesOrders.list", "fault": {"latency_ms": 500}})

    started = time.monotonic()
    bc.api.get(bc.url("salesOrders"))
    slow = time.monotonic() - started
    started = time.monotonic()
    bc.api.get(bc.url("items"))
    fast = time.monotonic() - started

    assert slow >= 0.5
    assert fast < 0.5


def test_error_fault_429_carries_retry_after_and_creates_nothing(bc):
    bc.raw.put(
        "/_sandbox/faults",
        json={"salesOrders.create": {"error_rate": 1, "error_status": 429, "retry_after_s": 7}},
    )

    response = bc.create_order("#F-1")

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert bc.api.get(bc.url("salesOrders")).json()["value"] == []
    assert bc.raw.get("/_sandbox/counts").json()["attempts"] == {}


def test_wildcard_503_fault_and_specific_override(bc):
    bc.raw.put("/_sandbox/faults", json={"*": {"error_rate": 1}, "items.list": {}})

    assert bc.api.get(bc.url("customers")).status_code == 503
    assert bc.api.get(bc.url("items")).status_code == 200


def test_timeout_fault_makes_the_client_time_out(bc):
    bc.raw.put("/_sandbox/faults", json={"salesOrders.get": {"timeout_rate": 1, "timeout_s": 30}})
    order = bc.create_order("#F-2").json()

    with pytest.raises(httpx.ReadTimeout):
        bc.api.get(bc.url(f"salesOrders({order['id']})"), timeout=0.3)
    bc.raw.delete("/_sandbox/faults")

    assert bc.api.get(bc.url(f"salesOrders({order['id']})")).status_code == 200


def test_drop_after_commit_creates_the_order_although_the_caller_sees_504(bc):
    bc.raw.put("/_sandbox/faults", json={"salesOrders.create": {"drop_response_rate": 1}})

    response = bc.create_order("#F-3")
    found = bc.api.get(bc.url("salesOrders"), params={"$filter": "externalDocumentNumber eq '#F-3'"})

    assert response.status_code == 504
    assert response.headers["x-sandbox-fault"] == "dropped-after-commit"
    assert len(found.json()["value"]) == 1
    assert bc.raw.get("/_sandbox/counts").json()["created"] == {"salesOrders": {"#F-3": 1}}


def test_drop_after_commit_on_ship_and_invoice_still_posts(bc):
    order = bc.create_order("#F-4").json()
    bc.raw.put("/_sandbox/faults", json={"shipAndInvoice": {"drop_response_rate": 1}})

    response = bc.api.post(bc.url(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice"))

    assert response.status_code == 504
    assert len(bc.api.get(bc.url("salesInvoices")).json()["value"]) == 1


def test_faults_given_at_start_apply(make_bc):
    bc = make_bc(faults={"customers.list": {"error_rate": 1, "error_status": 500}})

    assert bc.api.get(bc.url("customers")).status_code == 500


def test_the_default_request_window_is_bcs_6000_per_5_minutes(monkeypatch):
    monkeypatch.delenv("BC_SANDBOX_RATE_LIMIT", raising=False)
    monkeypatch.delenv("BC_SANDBOX_RATE_WINDOW_S", raising=False)

    settings = BusinessCentralSettings()

    assert (settings.rate_limit, settings.rate_window_s) == (6000, 300.0)
