"""The deadline of the RPC being served, so outgoing calls inherit what is left of it."""

from __future__ import annotations

import time
from contextvars import ContextVar

# Monotonic time at which the current incoming RPC's deadline passes; None without a deadline.
_deadline_at: ContextVar[float | None] = ContextVar("rpc_deadline_at", default=None)


def remaining() -> float | None:
    """Return the seconds left before the current RPC's deadline, or None when it has none.

    The value can be zero or negative once the deadline has passed. Client channels from
    `libs.rpc.client` cap their timeouts with it, so a chain of calls never outlives its caller.
    """
    deadline_at = _deadline_at.get()
    if deadline_at is None:
        return None
    return deadline_at - time.monotonic()


def set_remaining(seconds: float | None) -> object:
    """Record the current RPC's remaining time; returns a token for `reset`. Used by the interceptor."""
    return _deadline_at.set(None if seconds is None else time.monotonic() + seconds)


def reset(token: object) -> None:
    """Restore the previous deadline (see `set_remaining`)."""
    _deadline_at.reset(token)  # type: ignore[arg-type]
