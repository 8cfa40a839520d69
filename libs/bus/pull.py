"""Pull requests kept outstanding on a durable consumer; each message is handed over as it arrives.

nats-py's `PullSubscription.fetch` is not used: a fetch waits until *its own* pull request has
ended before it returns. A request from an earlier fetch can still be alive on the server (the
client timed out a moment before the server's 408 and sent a second request: nats-io/nats.py#933,
reported again as #986 and open in 2.16). The server gives the next message to the oldest request,
so the fetch that receives it waits for its own request to fill or expire. The message then sits
in the client until the next message or the fetch timeout. In the bench at 2 orders a second, one
order in three waited about 0.5 s at the erp-adapter and as long again at the tpl-adapter for the
next order's event (docs/decisions/0039-pull-requests-without-fetch.md).

Here a message is tied to no request. Every message on the inbox goes to `on_message` at once,
whichever request it answers. The requests only carry credit: how many more messages the process
can take. The credit comes back when a message arrives, when the server ends a request (408 with
`Nats-Pending-Messages`) and, as a safety net for a request lost in a reconnect, once the last
request sent has certainly expired.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import api

log = logging.getLogger(__name__)

STATUS = "Status"
PENDING_MESSAGES = "Nats-Pending-Messages"
#: Idle heartbeats and flow control: not answers to a request.
CONTROL = "100"
#: The server ended a request at its expiry; the header says how much of it was unused.
REQUEST_TIMEOUT = "408"
#: Seconds past a request's expiry after which its credit is taken back even without a 408.
GRACE_S = 1.0


class PullRequests:
    """The pull requests of one process on one durable consumer, sharing one inbox.

    Args:
        nc: a connected NATS client.
        stream: the stream name.
        durable: the durable consumer name.
        on_message: called with each message, in arrival order, from the subscription's task; it
            must not block (start a task or enqueue).
        on_credit: called when credit comes back other than by a message (a request ended).
        expires: seconds each pull request waits on the server.
        prefix: the JetStream API prefix.
    """

    def __init__(
        self,
        nc: NATS,
        *,
        stream: str,
        durable: str,
        on_message: Callable[[Msg], None],
        on_credit: Callable[[], None] = lambda: None,
        expires: float = 2.0,
        prefix: str = api.DEFAULT_PREFIX,
    ) -> None:
        self._nc = nc
        self._subject = f"{prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.durable = durable
        self._on_message = on_message
        self._on_credit = on_credit
        self.expires = expires
        #: Messages asked for and neither received nor given back by the server.
        self.outstanding = 0
        #: Pull requests sent since start.
        self.requests = 0
        #: Answers that were neither a message nor a request's end (consumer deleted, no responders).
        self.refusals = 0
        #: Monotonic time before which no request should be sent (`back_off`).
        self.refused_until = 0.0
        self._refused_in_a_row = 0
        self._live_until = 0.0
        self._sub = None
        self._inbox = ""

    async def start(self) -> None:
        """Subscribe to the inbox every request answers to."""
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(self._inbox, cb=self._received)

    async def stop(self) -> None:
        """Unsubscribe, and wait one round trip so the server has taken it in before the consumer
        hands anything back (`Consumer.stop`): it then finds no one listening on these requests.
        A message already on its way is redelivered after ack_wait."""
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
            with contextlib.suppress(Exception):  # closing or disconnected: nothing to wait for
                await self._nc.flush(timeout=2)

    async def request(self, batch: int) -> None:
        """Ask for up to `batch` more messages, for `expires` seconds; a request that cannot be
        sent (disconnected, closing) raises and holds the next one back (`back_off`)."""
        body = json.dumps({"batch": batch, "expires": int(self.expires * 1_000_000_000)}).encode()
        try:
            await self._nc.publish(self._subject, body, reply=self._inbox)
        except Exception:
            self.back_off()
            raise
        self.outstanding += batch
        self.requests += 1
        self._live_until = time.monotonic() + self.expires

    def back_off(self) -> None:
        """Hold the next request back after a refusal or a failed send: 0.2 s, doubling up to 5 s,
        until a message or a request's end comes."""
        self._refused_in_a_row += 1
        self.refused_until = time.monotonic() + min(5.0, 0.1 * 2 ** min(self._refused_in_a_row, 6))

    def expiry_due_in(self) -> float | None:
        """Seconds until every request sent has certainly expired; None with no credit out."""
        if not self.outstanding:
            return None
        return max(0.0, self._live_until + GRACE_S - time.monotonic())

    def take_back_expired(self) -> None:
        """Forget the credit of requests past their expiry whose end never came (a reconnect)."""
        if self.outstanding and time.monotonic() >= self._live_until + GRACE_S:
            log.info("pull requests of %s ended unanswered; asking again", self.durable)
            self.outstanding = 0

    async def _received(self, msg: Msg) -> None:
        status = msg.headers.get(STATUS) if msg.headers else None
        if not status:
            self.outstanding = max(0, self.outstanding - 1)
            self._refused_in_a_row = 0
            self._on_message(msg)
            return
        if status == CONTROL:
            return
        pending = msg.headers.get(PENDING_MESSAGES) if msg.headers else None
        if status == REQUEST_TIMEOUT and pending is not None:
            self.outstanding = max(0, self.outstanding - int(pending))
            self._refused_in_a_row = 0
        else:
            # Exceeded MaxWaiting, consumer deleted, leadership change, no responders: which
            # request it ends is unknown, so all credit is taken back (asking again may bring a
            # few more messages than the capacity, never fewer).
            self.refusals += 1
            description = msg.headers.get("Description", "") if msg.headers else ""
            log.warning("pull request of %s answered %s %s", self.durable, status, description)
            self.outstanding = 0
            self.back_off()
        self._on_credit()
