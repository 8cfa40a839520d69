"""One order's timeline, from hand-made stand-in records and service tables of a kept run."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import pytest

from bench.trace import Step, timelines

SINCE = datetime(2026, 11, 30, 2, 34, 24, tzinfo=UTC).timestamp()


def _at(seconds: float) -> str:
    """A service's timestamp (naive UTC, as SQLite stores it) `seconds` after the first checkout."""
    return datetime.fromtimestamp(SINCE + seconds, UTC).replace(tzinfo=None).isoformat(sep=" ")


def _iso(seconds: float) -> str:
    """A stand-in's timestamp `seconds` after the first checkout."""
    return datetime.fromtimestamp(SINCE + seconds, UTC).isoformat().replace("+00:00", "Z")


def _table(path, ddl: str, rows: list[tuple]) -> None:
    connection = sqlite3.connect(path)
    connection.execute(ddl)
    if rows:
        marks = ", ".join("?" * len(rows[0]))
        connection.executemany(f"INSERT INTO {ddl.split()[2]} VALUES ({marks})", rows)
    connection.commit()
    connection.close()


def _order(shopify_id: int, name: str, *, created: float, fulfilled: float, tracking: str) -> dict:
    """A Shopify order record of one unit, fulfilled with tracking `fulfilled` s after the start."""
    return {
        "id": shopify_id,
        "name": name,
        "created_at": SINCE + created,
        "cancelled": False,
        "lines": [{"sku": "SKU-1", "quantity": 1}],
        "fulfillments": [
            {"created_at": SINCE + fulfilled, "units": {"SKU-1": 1}, "tracking_numbers": [tracking]}
        ],
    }


def _run(tmp_path):
    records = {
        "since": SINCE,
        "shopify": {
            "orders": [
                _order(7, "#1001", created=0.1, fulfilled=1.3, tracking="1Z"),
                _order(8, "#1002", created=0.2, fulfilled=0.9, tracking="1Y"),
            ]
        },
        "bc_counts": {"created_at": {"salesOrders": {"#1001": [SINCE + 0.3], "#1002": [SINCE + 0.4]}}},
        "bc_state": {
            "salesOrders": [],
            "salesInvoices": [
                {"externalDocumentNumber": "#1001", "lastModifiedDateTime": _iso(1.2)},
                {"externalDocumentNumber": "#1002", "lastModifiedDateTime": _iso(0.8)},
            ],
        },
        "tpl_state": {
            "orders": [
                {
                    "order_number": "#1001",
                    "reference_id": "shp-7:EAST:1",
                    "created_date": _iso(0.5),
                    "shipments": [{"tracking": {"shipping_date": _iso(1.0)}}],
                },
            ]
        },
    }
    (tmp_path / "records.json").write_text(json.dumps(records))
    mesh = tmp_path / "mesh"
    mesh.mkdir()
    _table(
        mesh / "orders.db",
        "CREATE TABLE order_summary (order_id TEXT, channel_order_id TEXT, snapshot_json TEXT)",
        [
            ("shp-7", "gid://shopify/Order/7", json.dumps({"correlation_id": "c-7"})),
            ("shp-8", "gid://shopify/Order/8", json.dumps({"correlation_id": "c-8"})),
        ],
    )
    _table(
        mesh / "orders.db",
        "CREATE TABLE outbox (key TEXT, event_type TEXT, created_at TEXT, published_at TEXT)",
        [
            ("shp-7", "retail.orders.v1.OrderAccepted", _at(0.25), _at(0.26)),
            ("shp-8", "retail.orders.v1.OrderAccepted", _at(0.3), None),
        ],
    )
    _table(
        mesh / "orders.db",
        "CREATE TABLE hop_log"
        " (correlation_id TEXT, hop TEXT, outcome TEXT, created_at TEXT, latency_ms REAL)",
        [("c-7", "orders", "ok", _at(1.25), 50.0), ("c-8", "orders", "ok", _at(0.5), 1.0)],
    )
    _table(
        mesh / "shopify-adapter.db",
        "CREATE TABLE webhook_delivery (order_gid TEXT, topic TEXT, received_at TEXT, processed_at TEXT)",
        [("gid://shopify/Order/7", "orders/create", _at(0.15), _at(0.22))],
    )
    _table(mesh / "catalog.db", "CREATE TABLE other (x INTEGER)", [])  # no bus tables: skipped
    return tmp_path


def test_an_order_s_steps_merge_the_stand_ins_and_the_services_in_time_order(tmp_path):
    steps = timelines(_run(tmp_path), ["#1001"])["#1001"]

    assert [(round(step.at, 3), step.who, step.what) for step in steps] == [
        (0.1, "shopify", "order created"),
        (0.15, "shopify-adapter", "webhook orders/create stored"),
        (0.22, "shopify-adapter", "webhook orders/create worked"),
        (0.25, "orders", "+OrderAccepted (PubAck 0.260)"),
        (0.3, "business-central", "sales order created"),
        (0.5, "3pl", "order shp-7:EAST:1 created"),
        (1.0, "3pl", "shipped"),
        (1.2, "business-central", "invoice posted"),
        (1.2, "orders", "handled orders: ok, 50.0 ms"),  # started 50 ms before its row was written
        (1.3, "shopify", "fulfillment created"),
    ]
    assert all(isinstance(step, Step) for step in steps)


def test_by_default_the_last_orders_done_are_traced(tmp_path):
    found = timelines(_run(tmp_path), last=1)

    assert list(found) == ["#1001"]  # done at 1.3 s, after #1002 (0.9 s)
    two = timelines(tmp_path, last=2)
    assert list(two) == ["#1002", "#1001"]
    assert (0.3, "orders", "+OrderAccepted (not published)") in [
        (round(s.at, 3), s.who, s.what) for s in two["#1002"]
    ]


def test_an_order_the_run_did_not_place_is_named_in_the_error(tmp_path):
    with pytest.raises(LookupError, match="#9999"):
        timelines(_run(tmp_path), ["#9999"])
