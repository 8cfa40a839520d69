"""Pipelined JetStream publishes: many in flight at once, one PubAck or error per message."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from nats.js import JetStreamContext, api


async def publish_batch(
    js: JetStreamContext, messages: Sequence[tuple[str, bytes, Mapping[str, str]]], *, ack_timeout: float
) -> list[api.PubAck | BaseException]:
    """Publish `messages` (subject, payload, headers) concurrently and await every PubAck together.

    Concurrent `js.publish` requests rather than nats-py 2.16's `publish_async`: the latter's reply
    handler raises JetStream API errors (stream full under `discard: new`, message too large)
    inside the subscription callback instead of failing the future, so they surface only as
    timeouts. See docs/decisions/0007-bus-outbox-relay.md.

    Returns:
        One result per message, in order: the PubAck, or the exception (a TimeoutError when no
        answer came within `ack_timeout`).
    """
    return await asyncio.gather(
        *(
            js.publish(subject, payload, timeout=ack_timeout, headers=dict(headers))
            for subject, payload, headers in messages
        ),
        return_exceptions=True,
    )
