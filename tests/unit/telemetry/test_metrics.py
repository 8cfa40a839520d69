"""Prometheus: the endpoint serves the shared metrics; outcome labels are checked."""

from __future__ import annotations

import urllib.request

import pytest

from libs.telemetry import RPC_SERVER_HANDLING_SECONDS, record_outcome, start_metrics_server


@pytest.fixture
def metrics_server():
    """The metrics endpoint on a free loopback port."""
    server = start_metrics_server(0)
    yield server
    server.close()


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def test_endpoint_serves_shared_metrics_on_the_reported_port(metrics_server) -> None:
    RPC_SERVER_HANDLING_SECONDS.labels("retail.test.v1.Probe", "Ping", "OK").observe(0.002)
    record_outcome("test.ProbeSeen", "ok", seconds=0.01)

    body = _scrape(metrics_server.port)

    assert metrics_server.port > 0
    assert metrics_server.host == "127.0.0.1"
    assert (
        'grpc_server_handling_seconds_count{grpc_code="OK",grpc_method="Ping",grpc_service="retail.test.v1.Probe"}'
        in body
    )
    assert 'retail_handler_outcomes_total{handler="test.ProbeSeen",outcome="ok"}' in body


def test_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown handler outcome"):
        record_outcome("test.ProbeSeen", "oops")


def test_closed_server_releases_the_port() -> None:
    server = start_metrics_server(0)
    port = server.port

    server.close()

    with pytest.raises(OSError):
        _scrape(port)
