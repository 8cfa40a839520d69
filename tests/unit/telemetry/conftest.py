"""Fixtures for telemetry tests: the shared in-memory span exporter and a captured JSON log stream."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from libs.telemetry import configure_logging
from libs.telemetry.testing import memory_exporter


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """The process-wide in-memory span exporter, emptied for this test."""
    exporter = memory_exporter()
    exporter.clear()
    return exporter


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """JSON log lines of the whole process, captured for this test and uninstalled after it."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging("orders", "DEBUG", stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)
