"""What a handler raises to tell the bus how a failure should be treated (M3)."""

from __future__ import annotations


class Retryable(Exception):
    """A transient failure (timeout, 429, 5xx): the message is redelivered after a delay.

    Args:
        reason: why, for the hop log and the dead letter if retries run out (no personal data).
        delay: seconds before the next delivery, e.g. the target's `Retry-After`; None uses the
            consumer's back-off for this delivery.
    """

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class Permanent(Exception):
    """A business failure that can never succeed as is (tax rejection, unknown SKU).

    The message is dead-lettered at once and terminated; an operator fixes the cause and
    replays it (M4).

    Args:
        reason: why, shown in the dead-letter list (no personal data).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
