"""What the ops service consumes (durable `ops` on ORDERS and INVENTORY) to keep the worklists.

Each delivery is one transaction: the inbox row, the exception opened, counted again or resolved,
and the ExceptionRaised / ExceptionResolved it causes. A redelivered event is a duplicate in the
inbox and changes nothing; the same cause in a new event counts as a recurrence of the open
exception. The ORDERS consumer runs one message at a time, so an order's facts apply in the order
the orders service published them (a hold before its release); a late redelivery of an older fact
is caught by the clearance times (`domain.worklist.is_stale`).

Most order events are status changes of orders that have no exception; a status change only ever
resolves an order's open exceptions (it opens none and records no clearance), so one for an order
with none is acknowledged without a transaction or a span (`relevant`, asked before either). The
ORDERS consumer runs one message at a time, so the check reads what every earlier event of the
stream left.
"""

from __future__ import annotations

from google.protobuf.message import Message
from sqlalchemy import bindparam, select

from libs.bus import MessageContext, Subscription
from libs.store import Compiled
from retail.orders.v1 import events_pb2 as order_events
from services.ops.domain.worklist import State
from services.ops.events.mapping import INVENTORY_EVENTS, ORDER_EVENTS, facts_of
from services.ops.store.tables import ExceptionRow
from services.ops.worklist import Worklists

#: The service's durable consumer name on every stream it reads (deploy/nats/render_auth.py).
DURABLE = "ops"

# Built once and run as a compiled statement (libs.store.Compiled): most order events are status
# changes, and each asks this.
_EXCEPTIONS = ExceptionRow.__table__
_OPEN_EXCEPTION = Compiled(
    select(_EXCEPTIONS.c.exception_id)
    .where(_EXCEPTIONS.c.order_id == bindparam("b_order_id"), _EXCEPTIONS.c.state != State.RESOLVED.value)
    .limit(1)
)


class ExceptionEvents:
    """Handlers that open and clear exceptions from the events of other contexts.

    Args:
        worklists: the exceptions store.
    """

    def __init__(self, worklists: Worklists) -> None:
        self.worklists = worklists

    def subscriptions(self) -> list[Subscription]:
        """One durable `ops` consumer per stream read (ORDERS in order, INVENTORY)."""
        return [
            Subscription(
                DURABLE,
                list(ORDER_EVENTS),
                self.on_event,
                concurrency=1,
                hop="ops.orders",
                relevant=self.relevant,
            ),
            Subscription(DURABLE, list(INVENTORY_EVENTS), self.on_event, hop="ops.inventory"),
        ]

    async def relevant(self, event: Message) -> bool:
        """False for a status change of an order with no unresolved exception (nothing to do)."""
        if not isinstance(event, order_events.OrderStatusChanged):
            return True
        found = await self.worklists.db.fetch(_OPEN_EXCEPTION, {"b_order_id": event.order_id})
        return found.first() is not None

    async def on_event(self, event: Message, ctx: MessageContext) -> None:
        """Apply what the event means for the worklists, in the delivery's transaction."""

        async def emit(message: Message, key: str) -> str:
            return await ctx.emit(message, key=key)

        for fact in facts_of(event):
            await self.worklists.apply(
                ctx.session, fact, event_id=ctx.event_id, correlation_id=ctx.correlation_id, emit=emit
            )
