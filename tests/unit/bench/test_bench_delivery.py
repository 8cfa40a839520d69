"""Delivery delays per consumer, from hand-made outbox and hop-log tables of a kept run."""

from __future__ import annotations

import sqlite3

import pytest

from bench.delivery import delays, summary


def _db(path, outbox=(), hops=()):
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE outbox (id TEXT, published_at TEXT)")
    connection.execute(
        "CREATE TABLE hop_log (hop TEXT, event_id TEXT, created_at TEXT, latency_ms REAL, outcome TEXT)"
    )
    connection.executemany("INSERT INTO outbox VALUES (?, ?)", outbox)
    connection.executemany("INSERT INTO hop_log VALUES (?, ?, ?, ?, ?)", hops)
    connection.commit()
    connection.close()


def test_a_delay_runs_from_the_producer_s_puback_to_the_start_of_handling(tmp_path):
    _db(
        tmp_path / "orders.db",
        outbox=[("e1", "2026-11-29 15:00:00.000000"), ("e2", "2026-11-29 15:00:01.000000")],
    )
    _db(
        tmp_path / "erp-adapter.db",
        hops=[
            # Handled from 15:00:00.010 for 30 ms; from 15:00:01.500 for 20 ms; a failure is left out.
            ("erp-adapter", "e1", "2026-11-29 15:00:00.040000", 30.0, "ok"),
            ("erp-adapter", "e2", "2026-11-29 15:00:01.520000", 20.0, "ok"),
            ("erp-adapter", "e2", "2026-11-29 15:00:01.100000", 5.0, "retry"),
            ("erp-adapter", "unknown", "2026-11-29 15:00:02.000000", 1.0, "ok"),
        ],
    )
    _db(tmp_path / "catalog.db")  # no events at all

    found = delays(tmp_path)

    assert list(found) == ["erp-adapter/erp-adapter"]
    assert found["erp-adapter/erp-adapter"] == pytest.approx([0.010, 0.500], abs=1e-6)


def test_the_run_s_figures_cover_every_consumer(tmp_path):
    _db(
        tmp_path / "orders.db",
        outbox=[
            ("e1", "2026-11-29 15:00:00.000000"),
            ("e2", "2026-11-29 15:00:01.000000"),
            ("e3", "2026-11-29 15:00:02.000000"),
        ],
    )
    _db(tmp_path / "erp-adapter.db", hops=[("erp-adapter", "e1", "2026-11-29 15:00:00.040000", 30.0, "ok")])
    _db(
        tmp_path / "ops.db",
        hops=[
            ("ops.orders", "e2", "2026-11-29 15:00:01.400000", 100.0, "ok"),
            ("ops.orders", "e3", "2026-11-29 15:00:02.080000", 30.0, "ok"),
        ],
    )

    figures = summary(tmp_path)

    # Delays 0.010, 0.050 and 0.300 s: the median is the bench's nearest-rank p50.
    assert figures["event_deliveries"] == 3
    assert figures["event_delivery_p50_s"] == pytest.approx(0.050, abs=1e-6)
    assert figures["event_delivery_max_s"] == pytest.approx(0.300, abs=1e-6)
    assert figures["event_deliveries_over_200ms"] == 1
    assert summary(tmp_path / "nothing-here") == {}
