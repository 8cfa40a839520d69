"""The benchmark's figures, computed from hand-made stand-in records."""

from __future__ import annotations

from bench.figures import answered_orders, compute, done_orders


def _records(fulfillments, *, open_orders=(), invoiced=("#1001",), lines=None):
    return {
        "shopify": {
            "orders": [
                {
                    "id": 1,
                    "name": "#1001",
                    "created_at": 100.0,
                    "cancelled": False,
                    "lines": lines or [{"sku": "SKU-1001", "quantity": 2, "location": "EAST"}],
                    "fulfillments": fulfillments,
                }
            ],
            "inventory_adjustments": [
                {
                    "created_at": 105.0,
                    "changes": [{"sku": "SKU-1008", "location": "WEST", "name": "available"}],
                }
            ],
        },
        "deliveries": [
            {"topic": "orders/create", "uri": "http://me", "outcome": "delivered", "duration_ms": 20.0},
            {"topic": "orders/create", "uri": "http://other", "outcome": "delivered", "duration_ms": 9000.0},
        ],
        "bc_counts": {
            "created": {"salesOrders": {"#1001": 1}},
            "created_at": {"salesOrders": {"#1001": [100.5]}},
        },
        "bc_state": {
            "salesOrders": [{"externalDocumentNumber": n} for n in open_orders],
            "salesInvoices": [
                {"externalDocumentNumber": n, "lastModifiedDateTime": "1970-01-01T00:01:50.000Z"}
                for n in invoiced
            ],
        },
        "tpl_counts": {"created": {"orders": {"1": 1}}},
        "tpl_state": {"orders": []},
    }


def _parcel(at, number, units=1):
    return {"created_at": at, "tracking_numbers": [number], "units": {"SKU-1001": units}}


def test_two_parcels_of_one_order_are_two_shipments_not_a_duplicate():
    records = _records([_parcel(101.0, "1ZA"), _parcel(102.0, "1ZB")])

    figures = compute(records, since=99.0, webhook_url="http://me", hot_stock={}, restocks=[])

    assert figures["duplicate_shopify_fulfillments"] == 0
    assert figures["orders_done"] == 1 and figures["lost_orders"] == 0
    assert figures["order_to_cash_window_s"] == 110.0 - 99.0


def test_a_second_fulfillment_with_the_same_tracking_number_is_a_duplicate():
    records = _records([_parcel(101.0, "1ZA", 2), _parcel(102.0, "1ZA", 2)])

    figures = compute(records, since=99.0, webhook_url="http://me", hot_stock={}, restocks=[])

    assert figures["duplicate_shopify_fulfillments"] == 1


def test_an_order_still_open_in_the_erp_is_not_done():
    records = _records([_parcel(101.0, "1ZA", 2)], open_orders=("#1001",))

    assert done_orders(records, since=99.0) == {}


def test_latencies_come_from_the_stand_ins_records_and_hot_units_beyond_stock_are_oversold():
    records = _records([_parcel(101.0, "1ZA", 2)])

    figures = compute(
        records,
        since=99.0,
        webhook_url="http://me",
        hot_stock={"SKU-1001": 1},
        restocks=[{"sku": "SKU-1008", "location": "WEST", "at": 104.0}],
    )

    assert figures["acceptance_p50_s"] == 0.5
    assert figures["webhook_ack_max_s"] == 0.02
    assert figures["inventory_lag_p50_s"] == 1.0
    assert figures["oversold_units"] == 1


def test_in_the_burst_an_order_is_lost_only_when_the_erp_never_got_it():
    records = _records([], invoiced=())  # accepted by the ERP, not shipped yet
    records["shopify"]["orders"].append({**records["shopify"]["orders"][0], "id": 2, "name": "#1002"})

    figures = compute(
        records, since=99.0, webhook_url="http://me", hot_stock={}, restocks=[], lost_unless="accepted"
    )

    assert figures["orders_done"] == 0
    assert figures["orders_accepted_by_erp"] == 1
    assert figures["lost_orders"] == 1  # #1002 never reached Business Central
    assert figures["lost_means"] == "not accepted by the deadline"


def test_a_receiver_floor_has_answered_the_webhooks_it_took_with_a_2xx_since_the_load_began():
    def attempt(event_id, outcome, at="1970-01-01T00:01:50+00:00", uri="http://me", topic="orders/create"):
        return {"event_id": event_id, "outcome": outcome, "at": at, "uri": uri, "topic": topic}

    records = {
        "deliveries": [
            attempt("e1", "failed"),
            attempt("e1", "delivered"),
            attempt("e2", "delivered"),
            attempt("e3", "failed"),
            attempt("e4", "delivered", uri="http://other"),
            attempt("e5", "delivered", topic="orders/updated"),
            attempt("e6", "delivered", at="1970-01-01T00:01:30+00:00"),
        ]
    }

    assert answered_orders(records, 100.0, "http://me") == {"e1", "e2"}


def test_placed_rate_is_what_the_checkout_created_and_acceptance_ends_at_the_last_erp_order():
    records = _records([_parcel(101.0, "1ZA")])
    second = {**records["shopify"]["orders"][0], "id": 2, "name": "#1002", "created_at": 104.0}
    third = {**records["shopify"]["orders"][0], "id": 3, "name": "#1003", "created_at": 102.0}
    records["shopify"]["orders"] += [second, third]
    records["bc_counts"]["created_at"]["salesOrders"] |= {"#1002": [107.0, 108.0], "#1003": [103.0]}

    figures = compute(records, since=99.0, webhook_url="http://me", hot_stock={}, restocks=[])

    # Three orders created from 100 to 104: two gaps in four seconds, whatever --rate asked for.
    assert figures["orders_placed_per_s"] == 0.5
    # Until the 99th percentile of the sales orders' first creations (a second copy does not count):
    # of three, the last, #1002's at 107.
    assert figures["acceptance_window_s"] == 107.0 - 99.0


def test_one_order_has_no_placed_rate():
    figures = compute(_records([]), since=99.0, webhook_url="http://me", hot_stock={}, restocks=[])

    assert figures["orders_placed_per_s"] is None
    assert figures["acceptance_window_s"] == 100.5 - 99.0
