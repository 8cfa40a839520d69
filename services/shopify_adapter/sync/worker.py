"""Retry pacing shared by the shopify-adapter's workers (their loop is `libs.lifecycle.Loop`)."""

from __future__ import annotations


def backoff_s(attempts: int, ceiling: float) -> float:
    """Delay before the next attempt: 1, 2, 4, ... seconds, at most `ceiling`."""
    return float(min(ceiling, 2 ** max(0, attempts - 1)))
