"""The running warehouse: state, the simulation loop, and what each event sets off.

An event (a shipment shipped or delivered, a return received) goes to the webhook subscribers of
its topic and, in EDI mode, becomes a file in the outbound folder (945 for shipments of orders
that came by 940, 944 for every received return); a stock adjustment becomes a 947.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from sandbox.common.counters import CreateCounter
from sandbox.common.faults import FaultInjector
from sandbox.common.ratelimit import SlidingWindow
from sandbox.tpl.config import TplSettings
from sandbox.tpl.mailbox import Mailbox, PollResult
from sandbox.tpl.payload import order_json, return_json, shipment_json
from sandbox.tpl.receiving import ReceivingBook
from sandbox.tpl.state import Adjustment, Event, TplState
from sandbox.tpl.webhook import WebhookDispatcher


class Warehouse:
    """Everything one 3PL stand-in holds, and its background loops.

    Args:
        settings: the stand-in's settings.
    """

    def __init__(self, settings: TplSettings) -> None:
        self.settings = settings
        self.state = TplState(
            settings.seed,
            partial_rate=settings.partial_shipment_rate,
            damaged_rate=settings.damaged_return_rate,
        )
        self.faults = FaultInjector(settings.seed)
        self.faults.configure_many(settings.faults)
        self.counter = CreateCounter()
        self.webhooks = WebhookDispatcher(
            self.faults,
            timeout_s=settings.webhook_timeout_s,
            max_attempts=settings.webhook_max_attempts,
            backoff_s=settings.scaled(settings.webhook_backoff_s),
        )
        self.limits: dict[str, SlidingWindow] = {}
        self.written: list[str] = []
        self.receiving = ReceivingBook()
        self.mailbox: Mailbox | None = None
        if settings.edi_dir is not None:
            self.mailbox = Mailbox(
                settings.edi_dir,
                self.state,
                sender_id=settings.edi_sender_id,
                receiver_id=settings.edi_receiver_id,
                record_create=lambda key, created: self.counter.record("edi_orders", key, created),
                due_at=self.first_due_at,
            )
        self._tasks: list[asyncio.Task] = []

    # --- time -------------------------------------------------------------------------------

    def delays(self) -> list[float]:
        """Real seconds after entering Processing, Picked, Packed and Completed."""
        s = self.settings
        return [
            s.scaled(s.pick_delay_s),
            s.scaled(s.pack_delay_s),
            s.scaled(s.ship_delay_s),
            s.scaled(s.delivery_delay_s),
        ]

    def first_due_at(self) -> float:
        """When a new order is due to be picked."""
        return time.monotonic() + self.delays()[0]

    def return_due_at(self) -> float:
        """When a new return is due to arrive."""
        return time.monotonic() + self.settings.scaled(self.settings.return_receive_delay_s)

    def limiter(self, token: str) -> SlidingWindow:
        """The request window of one API user."""
        window = self.limits.get(token)
        if window is None:
            window = self.limits[token] = SlidingWindow(self.settings.rate_limit, self.settings.rate_window_s)
        return window

    # --- events -----------------------------------------------------------------------------

    def dispatch(self, events: list[Event]) -> list[dict[str, Any]]:
        """Send each event to its subscribers and, in EDI mode, to the outbound folder."""
        done = []
        for event in events:
            payload = self.payload(event)
            self.webhooks.publish(event.topic, payload)
            if self.mailbox is not None:
                if event.topic == "order.shipped" and event.order and event.order.source == "edi":
                    self.written.append(self.mailbox.write_shipping_advice(event.order, event.shipment))
                elif event.topic == "return.completed" and event.ret is not None:
                    self.written.append(self.mailbox.write_receipt_advice(event.ret))
            done.append({"topic": event.topic, "id": payload.get("id")})
        return done

    def payload(self, event: Event) -> dict[str, Any]:
        """The webhook body of an event: the shipment (with its order) or the return."""
        if event.ret is not None:
            return {"topic": event.topic, **return_json(self.state, event.ret)}
        assert event.order is not None and event.shipment is not None
        return {
            "topic": event.topic,
            **shipment_json(self.state, event.order, event.shipment),
            "order": order_json(self.state, event.order),
        }

    def advance(self, *, force: bool, steps: int = 1) -> list[dict[str, Any]]:
        """Run the simulation step now (``force``: every shipment moves, due or not)."""
        done = []
        for _ in range(steps):
            done.extend(self.dispatch(self.state.advance(time.monotonic(), self.delays(), force=force)))
        return done

    def ship_now(self, order_id: int, *, split: bool = False) -> list[dict[str, Any]]:
        """Pick, pack and ship an order's pending shipments now (``split``: in two parcels)."""
        order = self.state.order(order_id)
        if split:
            pending = [s for s in order.shipments if not s.shipped and not s.cancelled]
            if pending and len(order.shipments) == 1:
                rest = self.state.split(order, pending[0])
                if rest is not None:
                    order.shipments.append(rest)
        done = []
        for shipment in list(order.shipments):
            while (
                not shipment.shipped
                and not shipment.cancelled
                and order.status not in ("Exception", "Cancelled")
            ):
                done.extend(self.dispatch(self.state.step(order, shipment, time.monotonic(), self.delays())))
        return done

    def adjust(self, sku: str, center: str | int, delta: int, reason: str) -> Adjustment:
        """Adjust stock (``TplState.adjust_stock``); in EDI mode a 947 tells the depositor."""
        adjustment = self.state.adjust_stock(sku, center, delta, reason)
        if self.mailbox is not None:
            self.written.append(self.mailbox.write_adjustment_advice(adjustment))
        return adjustment

    def poll_mailbox(self) -> PollResult:
        """Read the inbound folder now."""
        if self.mailbox is None:
            return PollResult()
        return self.mailbox.poll()

    def reset(self, seed: int) -> None:
        """Seeded demo data again; no subscriptions, no request windows."""
        self.state.reset(seed)
        self.webhooks.reset()
        self.limits.clear()
        self.written.clear()
        self.receiving.clear()

    # --- background loops -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the simulation, mailbox and inventory-advice loops (when ``simulate``)."""
        if not self.settings.simulate:
            return
        s = self.settings
        self._tasks.append(asyncio.create_task(self._every(s.scaled(s.tick_s), self._tick)))
        if self.mailbox is not None:
            self._tasks.append(asyncio.create_task(self._every(s.scaled(s.edi_poll_s), self._poll)))
            if s.edi_inventory_advice_s > 0:
                self._tasks.append(
                    asyncio.create_task(
                        self._every(s.scaled(s.edi_inventory_advice_s), self._inventory_advice)
                    )
                )

    async def _every(self, period: float, action) -> None:
        while True:
            await asyncio.sleep(max(period, 0.001))
            await action()

    async def _tick(self) -> None:
        if await self.faults.before("simulation.tick") is None:
            self.advance(force=False)

    async def _poll(self) -> None:
        if await self.faults.before("edi.poll") is None:
            self.poll_mailbox()

    async def _inventory_advice(self) -> None:
        if self.mailbox is not None and await self.faults.before("edi.inventory_advice") is None:
            self.written.append(self.mailbox.write_inventory_advice())

    async def stop(self) -> None:
        """Stop the loops and webhook deliveries."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.webhooks.aclose()
