"""Position → Shopify lag (mesh only): from the inventory service's own position change to Shopify
showing the figure it announced.

`inventory_lag_*` (bench/figures.py) times the whole path from the warehouse's recount, the same way
for every system. This module times the part the issue names, "position change → Shopify shows it",
which only the mesh has: its inventory service publishes `retail.inventory.v1.AvailabilityChanged`
for every position whose availability changed, with the channel figures and `meta.occurred_at` (UTC
wall clock, stamped when the ledger's transaction writes the event to its outbox).

- `availability_changes` reads every AvailabilityChanged from the mesh's JetStream, after the
  settle wait and before the mesh stops (and before the stand-ins' records are read);
- `position_lag` matches them to the Shopify stand-in's records (`/_sandbox/records`: inventory
  adjustments and orders, in epoch seconds of the stand-in's UTC clock, the same wall clock as
  `occurred_at`: one machine).
"""

from __future__ import annotations

import asyncio
import contextlib
from bisect import bisect_right
from collections import defaultdict
from typing import Any

import nats
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import api

from bench.figures import percentile
from libs.bus.envelope import PoisonMessage, decode
from libs.bus.streams import INVENTORY, subject_for
from retail.inventory.v1 import events_pb2 as inventory_events

#: The mesh channel Shopify shows (the shopify-adapter's `channel`).
CHANNEL = "online-store"
SUBJECT = subject_for(inventory_events.AvailabilityChanged)


async def availability_changes(
    nats_url: str, *, batch: int = 256, timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """Every AvailabilityChanged in the mesh's INVENTORY stream, oldest first.

    Source: JetStream, not the inventory service's outbox table. The stream is what was actually
    published (what the shopify-adapter consumes), it is the same whichever store the mesh runs on
    (`--mesh-db sqlite|postgresql`), and it keeps every message for 7 days with deletes and purges
    denied (libs/bus/streams.py), whereas outbox rows are the producer's private, store-specific
    state, purged once published past the retention horizon (libs/bus Retention, Outbox.purge).

    Read with an ephemeral pull consumer (deliver all, no acks, in memory, deleted at the end)
    filtered on the subject; no durable consumer of the mesh is touched.

    Returns:
        One dict per event (duplicates by event id dropped): `sku`, `location` (upper case, as the
        shopify-adapter maps it to a Shopify location), `available` (the channel's figure, None
        when the event has no such channel), `at` (`meta.occurred_at`, epoch seconds),
        `version` (position version), `event_id`.
    """
    nc = await nats.connect(nats_url, name="bench-positions", connect_timeout=5)
    changes: dict[str, dict[str, Any]] = {}
    try:
        js = nc.jetstream()
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.NONE,
            inactive_threshold=60.0,
            mem_storage=True,
        )
        sub = await js.pull_subscribe(SUBJECT, stream=INVENTORY.name, config=config)
        try:
            expected = (await sub.consumer_info()).num_pending
            seen = 0
            deadline = asyncio.get_running_loop().time() + timeout_s
            while seen < expected and asyncio.get_running_loop().time() < deadline:
                try:
                    messages = await sub.fetch(batch, timeout=2)
                except NatsTimeoutError:
                    continue
                for msg in messages:
                    seen += 1
                    change = _change(msg.headers or {}, msg.data)
                    if change is not None:
                        changes.setdefault(change["event_id"], change)
        finally:
            with contextlib.suppress(Exception):
                await js.delete_consumer(INVENTORY.name, (await sub.consumer_info()).name)
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
    finally:
        await nc.close()
    return sorted(changes.values(), key=lambda c: (c["at"], c["version"]))


def _change(headers: dict[str, str], payload: bytes) -> dict[str, Any] | None:
    try:
        event = decode(headers, payload, validate=False)
    except PoisonMessage:
        return None
    if not isinstance(event, inventory_events.AvailabilityChanged):
        return None
    figure = next((max(0, c.available) for c in event.channels if c.channel == CHANNEL), None)
    return {
        "sku": event.sku,
        "location": event.location_id.upper(),
        "available": figure,
        "at": event.meta.occurred_at.ToMicroseconds() / 1e6,
        "version": event.position_version,
        "event_id": event.meta.event_id,
    }


def _shopify_timeline(shopify: dict[str, Any]) -> dict[tuple[str, str], list[tuple[float, int | None]]]:
    """Per (SKU, location): Shopify's `available` after each move, oldest first.

    A move is an inventory adjustment (its `quantity_after_change` of `available`: absolute), an
    order line Shopify routed there (a checkout commits stock: `available` falls by the line's
    quantity, with no adjustment record), or a fulfillment-order move (`fulfillmentOrderMove`:
    the committed units leave one location, `available` rises there and falls at the other).
    None until the first adjustment: before it the absolute figure is unknown. Cancellation
    restocks have no time in the records and are not seen (the next adjustment, absolute, corrects
    the figure); a line split over two locations counts at the one the records name.
    """
    moves: dict[tuple[str, str], list[tuple[float, str, int]]] = defaultdict(list)
    for group in shopify.get("inventory_adjustments", []):
        for change in group["changes"]:
            if change["name"] == "available" and group.get("created_at") is not None:
                key = (change["sku"], change["location"])
                moves[key].append((group["created_at"], "set", int(change["quantity_after_change"])))
    for order in shopify.get("orders", []):
        for line in order["lines"]:
            if line.get("location") and order.get("created_at") is not None:
                moves[(line["sku"], line["location"])].append(
                    (order["created_at"], "sale", -int(line["quantity"]))
                )
    for moved in shopify.get("fulfillment_order_moves", []):
        if moved.get("created_at") is None:
            continue
        for sku, units in moved["units"].items():
            moves[(sku, moved["from"])].append((moved["created_at"], "sale", int(units)))
            moves[(sku, moved["to"])].append((moved["created_at"], "sale", -int(units)))
    timeline: dict[tuple[str, str], list[tuple[float, int | None]]] = {}
    for key, keyed in moves.items():
        keyed.sort(key=lambda m: m[0])
        value: int | None = None
        states = []
        for when, kind, n in keyed:
            value = n if kind == "set" else (value + n if value is not None else None)
            states.append((when, value))
        timeline[key] = states
    return timeline


def _value_at(states: list[tuple[float, int | None]], times: list[float], at: float) -> int | None:
    """Shopify's `available` at `at` from `_shopify_timeline` states (`times`: their times)."""
    index = bisect_right(times, at)
    return states[index - 1][1] if index else None


class _Wanted:
    """What shows a pending change of one SKU/location: the change itself or any newer one
    announced so far (`add`). A fall to X is shown by `available` <= X, a rise by >= X, a change
    with no known or no different previous figure by X exactly (see `position_lag`)."""

    def __init__(self, figure: int, previous: int | None) -> None:
        self.fall_max: int | None = None  # a fall to X is shown by anything <= X
        self.rise_min: int | None = None  # a rise to X by anything >= X
        self.exact: set[int] = set()
        self.add(figure, previous)

    def add(self, figure: int, previous: int | None) -> None:
        if previous is None or previous == figure:
            self.exact.add(figure)
        elif figure < previous:
            self.fall_max = figure if self.fall_max is None else max(self.fall_max, figure)
        else:
            self.rise_min = figure if self.rise_min is None else min(self.rise_min, figure)

    def shown_by(self, value: int | None) -> bool:
        if value is None:
            return False
        return (
            value in self.exact
            or (self.fall_max is not None and value <= self.fall_max)
            or (self.rise_min is not None and value >= self.rise_min)
        )


def position_lag(changes: list[dict[str, Any]], shopify: dict[str, Any], *, since: float) -> dict[str, Any]:
    """Lag from each mesh position change to Shopify showing it.

    Per SKU and location, each AvailabilityChanged of the `online-store` channel that occurred at
    `t >= since` moves the channel's figure from P (the previous event's figure) to X. Shopify
    *shows* it when its `available` there, rebuilt from its records (`_shopify_timeline`:
    adjustments set it, order lines routed there lower it, fulfillment-order moves shift it), is X
    or less for a fall (less: Shopify's own checkouts took sales the mesh has not reserved yet), X
    or more for a rise, exactly X when P is unknown or equal. Then:

    - *already shown*: Shopify showed it at `t` (a sale Shopify took itself, which the mesh then
      reserved: nothing to send). Counted apart, not in the lag.
    - *measured*: the lag is the first moment after `t` (an adjustment, an order line, or a newer
      change's own time) when Shopify shows this change or a newer change of that SKU/location
      announced by then. A change a newer one followed before it was shown is also counted as
      *coalesced*: the shopify-adapter sends only the newest figure of a key, so its lag runs
      until Shopify shows that one (leaving these out would drop exactly the slow changes).
    - *unshown*: Shopify shows neither it nor any newer change by the end of the records (a rise
      the adapter deliberately sends only in part, `_target` in services/shopify_adapter/sync/
      inventory.py and decision 0025, stays unshown until verification repairs it).

    Why not "the first adjustment whose `available` is exactly X": most changes under load are
    sales Shopify had already taken (it was at or below X before the mesh's change, so the adapter
    sends nothing), and a rise may be sent in part on purpose; both left most changes unmatched.
    Nor "the first adjustment after t": it timed those same sales to unrelated later pushes.

    Args:
        changes: `availability_changes` (any order; events without the channel are ignored).
        shopify: the Shopify stand-in's `/_sandbox/records`.
        since: Unix time the load began; earlier changes are not measured (they still give the
            figure P of the next one).
    """
    timeline = _shopify_timeline(shopify)
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for change in changes:
        if change.get("available") is not None:
            by_key[(change["sku"], change["location"])].append(change)
    lags: list[float] = []
    already = coalesced = unshown = 0
    for key, keyed in by_key.items():
        keyed.sort(key=lambda c: (c["at"], c["version"]))
        states = timeline.get(key, [])
        times = [when for when, _ in states]
        for i, change in enumerate(keyed):
            t, figure = change["at"], change["available"]
            if t < since:
                continue
            previous = keyed[i - 1]["available"] if i else None
            wanted = _Wanted(figure, previous)
            if wanted.shown_by(_value_at(states, times, t)):
                already += 1
                continue
            # Moments when what Shopify shows, or what it should show, changes after t.
            moments = sorted({when for when in times if when > t} | {c["at"] for c in keyed[i + 1 :]})
            j = i + 1
            shown = None
            for moment in moments:
                while j < len(keyed) and keyed[j]["at"] <= moment:
                    wanted.add(keyed[j]["available"], keyed[j - 1]["available"])
                    j += 1
                if wanted.shown_by(_value_at(states, times, moment)):
                    shown = moment
                    break
            if shown is None:
                unshown += 1
                continue
            lags.append(shown - t)
            if i + 1 < len(keyed) and keyed[i + 1]["at"] <= shown:
                coalesced += 1
    return {
        "position_lag_p50_s": percentile(lags, 0.50),
        "position_lag_p99_s": percentile(lags, 0.99),
        "position_lag_max_s": max(lags, default=None),
        "position_changes_measured": len(lags),
        "position_changes_coalesced": coalesced,
        "position_changes_already_shown": already,
        "position_changes_unshown": unshown,
    }
