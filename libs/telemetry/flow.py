"""A business flow's identity across asynchronous hops: its correlation id and trace context.

One order is one trace (MISSION V1) only if every later step, whatever woke it (a reminder, an
answer from another service, a webhook from the 3PL days later), continues the context the flow
started with. Services keep `capture_flow()` next to the state they own (an order actor's state, a
3PL release row) and run each later step inside `resume_flow(saved)`; what that step publishes or
calls then carries the same correlation id and `traceparent`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate

from libs.telemetry.correlation import correlation_id

CORRELATION_KEY = "correlation_id"


def capture_flow() -> dict[str, str]:
    """The current correlation id and W3C trace context, as a small dict to store with state."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    current = correlation_id.get()
    if current:
        carrier[CORRELATION_KEY] = current
    return carrier


@contextmanager
def resume_flow(saved: Mapping[str, str] | None) -> Iterator[None]:
    """Run the block as part of the flow `capture_flow()` saved (a no-op for an empty one)."""
    if not saved:
        yield
        return
    token = otel_context.attach(propagate.extract(dict(saved)))
    previous = correlation_id.set(saved.get(CORRELATION_KEY) or correlation_id.get())
    try:
        yield
    finally:
        correlation_id.reset(previous)
        otel_context.detach(token)
