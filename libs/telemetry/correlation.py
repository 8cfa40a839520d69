"""The correlation id of the current unit of work, carried on every hop (gRPC metadata, NATS headers)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

#: gRPC metadata key of the correlation id (metadata keys are lower case).
GRPC_CORRELATION_KEY = "x-correlation-id"
#: NATS header of the correlation id, as named in docs/architecture.md.
NATS_CORRELATION_HEADER = "Retail-Correlation-Id"

#: The current correlation id, or None outside any request or message turn. A ContextVar, so each
#: asyncio task (each RPC, each message) sees its own value.
correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# What a caller may send us: bounded and printable, so a hostile value cannot bloat or forge log lines.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_correlation_id() -> str:
    """Return a fresh correlation id (a UUID4 string); does not set it."""
    return str(uuid.uuid4())


def accept_correlation_id(candidate: str | None) -> str:
    """Return `candidate` when it is a well-formed id, else a fresh one.

    Args:
        candidate: Id received from a caller or a message header.

    Returns:
        An id safe to log and propagate.
    """
    if candidate and _ACCEPTABLE.match(candidate):
        return candidate
    return new_correlation_id()


def ensure_correlation_id() -> str:
    """Return the current correlation id, creating and setting one when there is none."""
    current = correlation_id.get()
    if current is None:
        current = new_correlation_id()
        correlation_id.set(current)
    return current
