"""The inventory pusher: the mesh's channel availability → Shopify, per location (I4, M5).

Each round takes up to one batch (≤ 250) of due `inventory_push` rows, oldest change first, and:

1. maps mesh locations (`EAST`) to Shopify location GIDs (read once, cached; read again when a code
   is missing) and SKUs to inventory item GIDs (`shopify_inventory_item`, looked up once);
2. reads Shopify's current `available` where the adapter does not know it (first push, or after
   a stale compare-and-set);
3. sends one `inventorySetQuantities(name: "available", reason: "correction")` with
   `changeFromQuantity` = the `available` Shopify was last seen to hold, under an `@idempotent`
   key derived from the batch content;
4. on `CHANGE_FROM_QUANTITY_STALE` for some quantities (someone else changed Shopify, e.g. an order
   placed there), reads those levels again and sends again: the set is all-or-nothing, so the
   others are sent again with them;
5. records what was pushed; a row whose wanted version moved on meanwhile stays due.

What is sent (`_target`): the mesh's figure when it is lower than Shopify's. When it is higher,
Shopify is raised by at most the mesh's own rise since the last write (`base_quantity`): a sale
Shopify took that the mesh has not reserved yet (its webhook still on the way) lowered Shopify and
not the mesh, and setting the mesh's figure would sell those units a second time. Once the mesh
reserves the sale its figure falls to Shopify's. A lower Shopify figure that stays unchanged for
`lower_grace_s` is no sale in flight; verification then repairs it to the mesh's figure
(docs/decisions/0025-shopify-sales-never-undone-by-a-push.md).

Nothing is lost: a row leaves the due set only when Shopify accepted its wanted version; every
failure (throttled too long, 5xx, unknown SKU, item not stocked) keeps it due with a back-off.
Pacing: every call goes through `ShopifyAdmin.execute`, which waits for the cost bucket reported in
`extensions.cost.throttleStatus` and leaves `keep_free` of it to customer-facing calls. Once a
round's oldest change has waited `urgent_after_s`, its calls wait only for their own cost: the
availability shoppers see must not wait until a sale's order flow stops draining the bucket, and
one call a round bounds what it takes from that flow
(docs/decisions/0034-availability-pushes-get-a-bounded-share.md). Verification and look-ups stay
in the bulk lane.

Echo: the mesh never reads Shopify's `available` as an input: availability flows mesh → Shopify
only. Shopify's own `inventory_levels/update` webhooks (if subscribed) are classified by
`InventoryEchoFilter`: those matching our last push are echoes of our own write; all are ignored.

Verification (I5, docs/decisions/0021-shopify-availability-drift.md): every `INVENTORY_VERIFY_S`
the levels pushed are read again; each that differs from what was pushed is reported to the
inventory service (`ReportChannelCount`), which records the drift with its evidence and decides:
push the mesh's figure again (within the bound, or Shopify shows more), or hold Shopify's lower
figure as a ceiling (`held_quantity`) until the mesh's figure falls to it or Shopify shows the
mesh's figure again. Without an answer (inventory unreachable) only a Shopify figure above ours is
overwritten (the safe direction); the rest waits for the next round.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter, Histogram
from sqlalchemy import Row, bindparam, case, delete, func, null, select, update

from libs.store import Compiled, Database
from libs.telemetry import record_outcome
from retail.common.v1 import common_pb2
from retail.inventory.v1 import inventory_service_pb2, inventory_service_pb2_grpc
from services.shopify_adapter.clients.admin import (
    ITEM_LOOKUP_COST,
    ShopifyAdmin,
    ShopifyError,
    ShopifyTransient,
)
from services.shopify_adapter.store import tables
from services.shopify_adapter.store.queries import upsert
from services.shopify_adapter.sync.worker import backoff_s
from services.shopify_adapter.translate.fulfillment import location_gids
from services.shopify_adapter.translate.inventory import (
    MAPPING_ERRORS,
    MAX_QUANTITIES_PER_CALL,
    STALE,
    Quantity,
    errors_by_index,
    idempotency_key,
    set_quantities_input,
)

log = logging.getLogger(__name__)

#: Inventory update lag (V4): from the oldest position change not yet in Shopify (the event's
#: occurred_at) to Shopify accepting the figure.
UPDATE_LAG = Histogram(
    "shopify_inventory_update_lag_seconds",
    "Time from a position change (AvailabilityChanged occurred_at) until Shopify shows the channel figure.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0),
)
PUSHED = Counter(
    "shopify_inventory_quantities_total",
    "Inventory quantities by outcome: pushed, unchanged (Shopify already showed it), drift (Shopify moved on "
    "its own; pushed again), held (Shopify far below the mesh; its figure kept as a ceiling), stale "
    "(compare-and-set retried from a fresh read), deferred (kept due with a back-off).",
    ["outcome"],
)
CALLS = Histogram(
    "shopify_inventory_set_quantities_batch_size",
    "Quantities per inventorySetQuantities call.",
    buckets=(1, 5, 10, 25, 50, 100, 250),
)
URGENT_ROUNDS = Counter(
    "shopify_inventory_urgent_rounds_total",
    "inventorySetQuantities calls sent once their round's oldest change had waited urgent_after_s "
    "(they no longer leave the bulk share).",
)
LEVEL_UPDATES = Counter(
    "shopify_inventory_level_updates_total",
    "inventory_levels/update webhooks by kind: echo (our own write) or external (ignored: Shopify's "
    "available is never an input).",
    ["kind"],
)

#: Rounds of read-and-send for one batch before stale items are left for the next round.
MAX_STALE_ROUNDS = 4

# Built once, on the tables, run as compiled statements (libs.store.Compiled) and given their
# parameters: the pusher runs them every poll and for every item, and an ORM statement built per
# call costs several times its execution (decision 0029). `_KNOWN_ITEMS`'s expanding list would
# not take the sqlite3 path.
_PUSH = tables.InventoryPush.__table__
_ITEM_COLUMNS = (
    _PUSH.c.sku,
    _PUSH.c.location_id,
    _PUSH.c.wanted_quantity,
    _PUSH.c.wanted_version,
    _PUSH.c.pending_since,
    _PUSH.c.attempts,
    _PUSH.c.item_gid,
    _PUSH.c.location_gid,
    _PUSH.c.held_quantity,
    _PUSH.c.base_quantity,
    _PUSH.c.shopify_available,
    _PUSH.c.lower_quantity,
    _PUSH.c.lower_since,
)
_DUE = Compiled(
    select(*_ITEM_COLUMNS)
    .where(_PUSH.c.pushed_version < _PUSH.c.wanted_version, _PUSH.c.next_attempt_at <= bindparam("b_now"))
    .order_by(_PUSH.c.pending_since, _PUSH.c.sku, _PUSH.c.location_id)
    .limit(bindparam("b_limit"))
)
_PUSHED = Compiled(
    select(*_ITEM_COLUMNS)
    .where(_PUSH.c.pushed_version >= _PUSH.c.wanted_version)
    .where(_PUSH.c.item_gid.is_not(None), _PUSH.c.location_gid.is_not(None))
    .order_by(_PUSH.c.sku, _PUSH.c.location_id)
)
_THIS_ROW = (_PUSH.c.sku == bindparam("b_sku")) & (_PUSH.c.location_id == bindparam("b_location_id"))
_DONE = Compiled(
    update(_PUSH)
    .where(_THIS_ROW)
    .values(
        pushed_quantity=bindparam("b_target"),
        base_quantity=bindparam("b_wanted"),
        pushed_version=bindparam("b_version"),
        pushed_at=bindparam("b_now"),
        shopify_available=bindparam("b_target"),
        item_gid=bindparam("b_item_gid"),
        location_gid=bindparam("b_location_gid"),
        attempts=0,
        last_error=None,
        # A hold ends once the mesh's own figure has fallen to it.
        held_quantity=case(
            (_PUSH.c.wanted_quantity <= _PUSH.c.held_quantity, null()), else_=_PUSH.c.held_quantity
        ),
        # A newer change that arrived meanwhile is what the next push waits for.
        pending_since=case((_PUSH.c.wanted_version > bindparam("b_version"), _PUSH.c.wanted_at), else_=None),
    )
)
#: SET gets the columns given with `b_sku` and `b_location_id`.
_DEFER = Compiled(update(_PUSH).where(_THIS_ROW))
_MOVE = tables.InventoryMove.__table__
_MOVES = Compiled(
    select(_MOVE.c.id, _MOVE.c.sku, _MOVE.c.location_id, _MOVE.c.quantity)
    .order_by(_MOVE.c.id)
    .limit(bindparam("b_limit"))
)
# Shopify committed units at this location for an order the mesh had already counted here (the
# adapter moved its fulfillment order in): Shopify's figure fell by them, so the push may raise it
# back by as much, and is due (decision 0042). NULLs stay NULL (not known yet: read first).
_MOVED_IN = Compiled(
    update(_PUSH)
    .where(_THIS_ROW)
    .values(
        shopify_available=_PUSH.c.shopify_available - bindparam("b_quantity"),
        base_quantity=_PUSH.c.base_quantity - bindparam("b_quantity"),
        pushed_version=case(
            (_PUSH.c.pushed_version >= _PUSH.c.wanted_version, _PUSH.c.wanted_version - 1),
            else_=_PUSH.c.pushed_version,
        ),
        pending_since=func.coalesce(
            _PUSH.c.pending_since, bindparam("b_now", type_=_PUSH.c.pending_since.type)
        ),
        next_attempt_at=bindparam("b_now"),
    )
)
# ...and released them where Shopify had put them: its figure there rose by as much (to the
# mesh's, which never counted them there).
_MOVED_OUT = Compiled(
    update(_PUSH)
    .where(_THIS_ROW)
    .values(shopify_available=_PUSH.c.shopify_available + bindparam("b_quantity"))
)
_MOVES_PER_ROUND = 500
_TAKE_MOVES = delete(_MOVE).where(_MOVE.c.id.in_(bindparam("b_ids", expanding=True)))
_ITEM_MAP = tables.InventoryItemMap.__table__
_KNOWN_ITEMS = select(_ITEM_MAP.c.sku, _ITEM_MAP.c.item_gid).where(
    _ITEM_MAP.c.sku.in_(bindparam("b_skus", expanding=True))
)
_FORGET_ITEM = Compiled(delete(_ITEM_MAP).where(_ITEM_MAP.c.sku == bindparam("b_sku")))
_PUSHED_QUANTITY = Compiled(
    select(_PUSH.c.pushed_quantity).where(
        _PUSH.c.item_gid == bindparam("b_item_gid"), _PUSH.c.location_gid == bindparam("b_location_gid")
    )
)


@dataclass
class _Item:
    """One due row while a round works it."""

    sku: str
    location_id: str
    wanted: int
    version: int
    pending_since: datetime | None
    attempts: int
    item_gid: str = ""
    location_gid: str = ""
    current: int | None = None
    held: int | None = None
    base: int | None = None
    lower: int | None = None
    lower_since: datetime | None = None


def _target(item: _Item) -> int:
    """What to set Shopify's `available` to (module docstring): never undo a sale Shopify took."""
    if item.current is None or item.base is None or item.wanted <= item.current:
        return item.wanted
    return min(item.wanted, item.current + max(0, item.wanted - item.base))


def _item(row: Row[Any], *, current: int | None) -> _Item:
    """A push row as the pusher works on it; `current` is Shopify's level as far as known.

    `wanted` is what Shopify should show: the mesh's figure, capped by a held Shopify figure.
    """
    wanted = row.wanted_quantity if row.held_quantity is None else min(row.wanted_quantity, row.held_quantity)
    return _Item(
        row.sku,
        row.location_id,
        wanted,
        row.wanted_version,
        row.pending_since,
        row.attempts,
        item_gid=row.item_gid or "",
        location_gid=row.location_gid or "",
        current=current,
        held=row.held_quantity,
        base=row.base_quantity,
        lower=row.lower_quantity,
        lower_since=row.lower_since,
    )


class InventoryPusher:
    """Pushes due `inventory_push` rows to Shopify.

    Args:
        db: the service database.
        admin: the Admin API client.
        batch: quantities per call (≤ 250).
        keep_free: share of the throttle bucket left to customer-facing calls (M5 priority lanes).
        urgent_after_s: once a round's oldest change has waited this long, its calls leave no share
            (0: always leave it).
        retry_max_s: back-off ceiling of a row that failed.
        inventory: the inventory service, told about levels Shopify changed on its own (I5);
            None: every such level is pushed again unreported.
        channel: the mesh channel Shopify shows.
        timeout_s: deadline of one ReportChannelCount call.
        lower_grace_s: how long a lower Shopify figure must stand unchanged before verification
            repairs it (sales still on their way to the mesh explain it until then).
    """

    def __init__(
        self,
        db: Database,
        admin: ShopifyAdmin,
        *,
        batch: int = MAX_QUANTITIES_PER_CALL,
        keep_free: float = 0.25,
        urgent_after_s: float = 1.0,
        retry_max_s: float = 300.0,
        inventory: inventory_service_pb2_grpc.InventoryServiceStub | None = None,
        channel: str = "online-store",
        timeout_s: float = 5.0,
        lower_grace_s: float = 30.0,
    ) -> None:
        self.db = db
        self.admin = admin
        self.batch = max(1, min(batch, MAX_QUANTITIES_PER_CALL))
        self.keep_free = keep_free
        self.urgent_after_s = urgent_after_s
        self.retry_max_s = retry_max_s
        self.inventory = inventory
        self.channel = channel
        self.timeout_s = timeout_s
        self.lower_grace_s = lower_grace_s
        self._locations: dict[str, str] = {}
        # Whether `inventory_move` may hold rows: once at start (left by a previous run), then when
        # the routing consumer says it recorded some (`moves_recorded`): no read per round otherwise.
        self._moves_waiting = True

    def moves_recorded(self) -> None:
        """Fulfillment-order moves were recorded: apply them before the next round."""
        self._moves_waiting = True

    async def step(self) -> bool:
        """Push one batch of due rows; True when a full batch was taken (more may wait)."""
        await self._apply_moves()
        rows = await self.db.fetch(_DUE, {"b_now": datetime.now(UTC), "b_limit": self.batch})
        items = [_item(r, current=r.shopify_available) for r in rows]
        if not items:
            return False
        started = time.perf_counter()
        try:
            await self._push(items)
        except ShopifyTransient as exc:
            await self._defer(items, f"ShopifyTransient: {exc}")
            record_outcome("shopify-adapter.inventory", "retry", time.perf_counter() - started)
            return False
        except ShopifyError as exc:
            await self._defer(items, f"ShopifyError: {exc}")
            record_outcome("shopify-adapter.inventory", "business_error", time.perf_counter() - started)
            return False
        record_outcome("shopify-adapter.inventory", "ok", time.perf_counter() - started)
        return len(items) == self.batch

    async def _apply_moves(self) -> None:
        """Account for the fulfillment orders the adapter moved (`inventory_move`, decision 0042):
        Shopify's committed units went from one location to another, and with them its `available`.

        Applied here, between rounds, so a push in flight never records a figure from before a move
        over the move's adjustment.
        """
        if not self._moves_waiting:
            return
        self._moves_waiting = False  # before the read: a move recorded meanwhile sets it again
        try:
            await self._apply_recorded_moves()
        except BaseException:
            self._moves_waiting = True  # still there: the next round tries again
            raise

    async def _apply_recorded_moves(self) -> None:
        moves = (await self.db.fetch(_MOVES, {"b_limit": _MOVES_PER_ROUND})).all()
        if len(moves) == _MOVES_PER_ROUND:
            self._moves_waiting = True  # more than one round's worth
        if not moves:
            return
        now = datetime.now(UTC)
        async with self.db.transaction() as session:
            # One by one, in the order recorded: a move in and a move out of one location are not
            # the same as neither (only the move in lets the push raise Shopify back).
            for move in moves:
                row = {"b_sku": move.sku, "b_location_id": move.location_id, "b_quantity": abs(move.quantity)}
                if move.quantity > 0:
                    await session.execute(_MOVED_IN, {**row, "b_now": now})
                elif move.quantity < 0:
                    await session.execute(_MOVED_OUT, row)
            await session.execute(_TAKE_MOVES, {"b_ids": [move.id for move in moves]})

    async def verify(self) -> bool:
        """Re-read Shopify's `available` of every item pushed, and report and repair where it drifted.

        Shopify moves `available` on its own: a checkout commits stock at the location Shopify
        picked, which need not be where the mesh routed the order, and staff edit levels. Nothing
        in the mesh changes then, so no AvailabilityChanged wakes the pusher; this periodic read
        finds such drift, reports it to the inventory service (ListDrifts, InventoryDriftDetected)
        and does what it decided (I4, the Shopify side of I5). Returns False: one round per timer
        tick is enough.
        """
        items = [_item(r, current=None) for r in await self.db.fetch(_PUSHED)]
        if not items:
            return False
        await self._read(items)
        drifted = [i for i in items if i.current is not None and i.current != i.wanted]
        if not drifted:
            return False
        observed_at = datetime.now(UTC)
        # A lower figure is reported only once it has stood `lower_grace_s`: until then sales
        # Shopify took and the mesh has not reserved yet explain it, and under a flash sale every
        # SKU would otherwise be escalated, held and put on the operators' worklist (decision 0036).
        decisions: list[tuple[_Item, str]] = []
        for item in drifted:
            explained = self._sales_may_explain(item, observed_at)
            decisions.append((item, "wait" if explained else await self._report(item, observed_at)))
        now = datetime.now(UTC)
        kinds: dict[str, int] = defaultdict(int)
        async with self.db.transaction() as session:
            for item, decision in decisions:
                row = await session.get(tables.InventoryPush, (item.sku, item.location_id))
                if row is None or row.wanted_version != item.version:
                    continue  # a newer change arrived meanwhile; it is due anyway
                row.shopify_available = item.current
                current = item.current or 0
                lower = current < item.wanted
                stood = self._stood(row, current, now) if lower else False  # starts the clock if need be
                if decision == "push" and lower and not stood:
                    decision = "wait"  # maybe sales the mesh has not reserved yet: look again later
                if decision != "wait" or not lower:
                    row.lower_quantity, row.lower_since = None, None
                if decision == "push":
                    row.held_quantity = None
                    row.base_quantity = current  # so the push brings Shopify to the mesh's figure
                    row.pushed_version = row.wanted_version - 1
                    row.pending_since = row.pending_since or now
                    row.next_attempt_at = now
                elif decision == "hold":
                    row.held_quantity = item.current
                elif decision == "matches":
                    row.held_quantity = None  # Shopify shows the mesh's figure now; its push follows
                kinds[decision] += 1
        PUSHED.labels("drift").inc(kinds["push"])
        PUSHED.labels("held").inc(kinds["hold"])
        log.info("Shopify availability drifted", extra={"items": len(drifted), **kinds})
        return False

    def _sales_may_explain(self, item: _Item, now: datetime) -> bool:
        """Whether Shopify's figure is below the mesh's and has not yet stood `lower_grace_s`
        (as last recorded by `_stood`): sales on their way to the mesh may explain it."""
        if item.current is None or item.current >= item.wanted or self.lower_grace_s <= 0:
            return False
        return not self._grace_over(item.lower, item.lower_since, item.current, now)

    def _stood(self, row: tables.InventoryPush, current: int, now: datetime) -> bool:
        """Whether Shopify's lower figure `current` has stood unchanged for `lower_grace_s`;
        records it with the time first seen when it is new."""
        if row.lower_quantity != current or row.lower_since is None:
            row.lower_quantity, row.lower_since = current, now
            return self.lower_grace_s <= 0
        return self._grace_over(row.lower_quantity, row.lower_since, current, now)

    def _grace_over(self, lower: int | None, since: datetime | None, current: int, now: datetime) -> bool:
        """Whether `current` is the lower figure first seen at `since`, `lower_grace_s` ago or more."""
        if lower != current or since is None:
            return False
        return (now - since).total_seconds() >= self.lower_grace_s

    async def _report(self, item: _Item, observed_at: datetime) -> str:
        """Tell the inventory service what Shopify shows; `push`, `hold`, `matches` or `wait`."""
        higher = (item.current or 0) > item.wanted
        if self.inventory is None:
            return "push"
        at = Timestamp()
        at.FromDatetime(observed_at)
        key = f"{item.sku}@{item.location_id}@{observed_at.isoformat()}"
        request = inventory_service_pb2.ReportChannelCountRequest(
            request_id=f"shopify-verify:{uuid.uuid5(uuid.NAMESPACE_URL, key)}",
            source_system=common_pb2.SOURCE_SYSTEM_SHOPIFY,
            channel=self.channel,
            sku=item.sku,
            location_id=item.location_id,
            observed=item.current or 0,
            pushed=item.wanted,
            pushed_version=max(0, item.version),
            observed_at=at,
        )
        try:
            reply = await self.inventory.ReportChannelCount(request, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "drift not reported; the inventory service did not answer",
                extra={"sku": item.sku, "location": item.location_id, "code": exc.code().name},
            )
            return "push" if higher else "wait"  # overwrite only in the safe direction
        if not reply.drifted:
            return "matches"
        if reply.outcome == inventory_service_pb2.DRIFT_OUTCOME_ESCALATED_HELD:
            return "hold"
        return "push"

    # ----- one round ------------------------------------------------------------------------------

    def _urgent_at(self, items: list[_Item]) -> float | None:
        """`time.monotonic()` at which this round's oldest change will have waited
        `urgent_after_s` (from then on its calls leave no share of the bucket), or None."""
        since = [i.pending_since for i in items if i.pending_since is not None]
        if self.urgent_after_s <= 0 or not since:
            return None
        oldest = min(since)
        waited = (datetime.now(UTC) - oldest).total_seconds()
        return time.monotonic() + self.urgent_after_s - waited

    async def _push(self, items: list[_Item]) -> None:
        work = await self._mapped(items)
        urgent_at = self._urgent_at(items)
        for _ in range(MAX_STALE_ROUNDS):
            await self._read([i for i in work if i.current is None], urgent_at)
            missing = [i for i in work if i.current is None]
            if missing:
                await self._defer(missing, "ITEM_NOT_STOCKED_AT_LOCATION: the item is not stocked there")
            work = [i for i in work if i.current is not None]
            unchanged = [i for i in work if i.current == _target(i)]
            if unchanged:
                await self._done(unchanged)
                PUSHED.labels("unchanged").inc(len(unchanged))
            work = [i for i in work if i.current != _target(i)]
            if not work:
                return
            quantities = [
                Quantity(i.item_gid, i.location_gid, _target(i), int(i.current or 0), i.version) for i in work
            ]
            key = idempotency_key(quantities)
            CALLS.observe(len(quantities))
            if urgent_at is not None and time.monotonic() >= urgent_at:
                URGENT_ROUNDS.inc()
            payload = await self.admin.set_quantities(
                set_quantities_input(quantities, key), key, keep_free=self.keep_free, urgent_at=urgent_at
            )
            per_item, general = errors_by_index(payload.get("userErrors") or [])
            if not per_item and not general:
                await self._done(work)
                PUSHED.labels("pushed").inc(len(work))
                return
            if general and not per_item:
                await self._defer(work, "; ".join(general)[:1000])
                return
            retry: list[_Item] = []
            for index, item in enumerate(work):
                code = per_item.get(index)
                if code is None:
                    retry.append(item)
                elif code == STALE:
                    PUSHED.labels("stale").inc()
                    item.current = None
                    retry.append(item)
                else:
                    await self._defer([item], code, forget_item=code in MAPPING_ERRORS)
            work = retry
        if work:
            # Still stale after several reads: Shopify is changing under us; try again shortly.
            for item in work:
                item.current = None
            await self._defer(work, f"{STALE} after {MAX_STALE_ROUNDS} reads")

    async def _mapped(self, items: list[_Item]) -> list[_Item]:
        """The items whose SKU and location Shopify knows, GIDs filled in; the others deferred."""
        if {i.location_id for i in items} - self._locations.keys():
            self._locations = location_gids(await self.admin.locations(keep_free=self.keep_free))
        gids = await self._item_gids(sorted({i.sku for i in items}))
        mapped: list[_Item] = []
        for item in items:
            location_gid = self._locations.get(item.location_id)
            item_gid = gids.get(item.sku)
            if not location_gid:
                await self._defer([item], f"UNKNOWN_LOCATION: no Shopify location named {item.location_id}")
            elif not item_gid:
                await self._defer([item], f"UNKNOWN_SKU: no Shopify inventory item with SKU {item.sku}")
            else:
                if (item_gid, location_gid) != (item.item_gid, item.location_gid):
                    item.current = None  # never compare against another item's figure
                item.item_gid, item.location_gid = item_gid, location_gid
                mapped.append(item)
        return mapped

    def _chunk(self, cost_each: int, ceiling: int) -> int:
        """How many look-ups fit in one call: half of the usable bucket, at most `ceiling`."""
        maximum = self.admin.state.maximum_available
        usable = maximum * (1 - self.keep_free) if maximum > 0 else 250.0
        return max(1, min(ceiling, int(usable / 2 / cost_each)))

    async def _item_gids(self, skus: list[str]) -> dict[str, str]:
        async with self.db.read() as session:
            known = dict((await session.execute(_KNOWN_ITEMS, {"b_skus": skus})).all())
        unknown = [s for s in skus if s not in known]
        while unknown:
            size = self._chunk(ITEM_LOOKUP_COST, 50)
            chunk, unknown = unknown[:size], unknown[size:]
            found = await self.admin.inventory_items_by_sku(chunk, keep_free=self.keep_free)
            if found:
                async with self.db.transaction() as session:
                    for sku, gid in found.items():
                        await upsert(
                            session,
                            tables.InventoryItemMap,
                            {"sku": sku, "item_gid": gid, "resolved_at": datetime.now(UTC)},
                            ["sku"],
                        )
            known.update(found)
        return known

    async def _read(self, items: list[_Item], urgent_at: float | None = None) -> None:
        """Fill `current` with Shopify's `available` now (None stays: not stocked at the location);
        the calls leave the bulk share free until `urgent_at` (see `_push`)."""
        by_location: dict[str, list[_Item]] = defaultdict(list)
        for item in items:
            by_location[item.location_gid].append(item)
        for location_gid, group in by_location.items():
            size = self._chunk(4, 100)
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                levels = await self.admin.available_at(
                    location_gid, [i.item_gid for i in chunk], keep_free=self.keep_free, urgent_at=urgent_at
                )
                for item in chunk:
                    item.current = levels.get(item.item_gid)

    # ----- outcomes -------------------------------------------------------------------------------

    async def _done(self, items: list[_Item]) -> None:
        """Shopify shows these items' target (`_target`): record it, the mesh's figure it answers
        (`base_quantity`) and the lag."""
        now = datetime.now(UTC)
        async with self.db.transaction() as session:
            await session.execute(
                _DONE,
                [
                    {
                        "b_sku": item.sku,
                        "b_location_id": item.location_id,
                        "b_target": _target(item),
                        "b_wanted": item.wanted,
                        "b_version": item.version,
                        "b_now": now,
                        "b_item_gid": item.item_gid,
                        "b_location_gid": item.location_gid,
                    }
                    for item in items
                ],
            )
        for item in items:
            if item.pending_since is not None:
                UPDATE_LAG.observe(max(0.0, (now - item.pending_since).total_seconds()))

    async def _defer(self, items: list[_Item], reason: str, *, forget_item: bool = False) -> None:
        """Keep these items due, later (back-off by their attempts), with the reason."""
        if not items:
            return
        now = datetime.now(UTC)
        async with self.db.transaction() as session:
            await session.execute(
                _DEFER,
                [
                    {
                        "b_sku": item.sku,
                        "b_location_id": item.location_id,
                        "attempts": item.attempts + 1,
                        "last_error": reason[:1000],
                        "shopify_available": item.current,
                        "next_attempt_at": now
                        + timedelta(seconds=backoff_s(item.attempts + 1, self.retry_max_s)),
                    }
                    for item in items
                ],
            )
            if forget_item:
                await session.execute(_FORGET_ITEM, [{"b_sku": item.sku} for item in items])
        PUSHED.labels("deferred").inc(len(items))
        log.warning(
            "inventory push deferred",
            extra={
                "count": len(items),
                "sku": items[0].sku,
                "location": items[0].location_id,
                "reason": reason[:300],
            },
        )


class InventoryEchoFilter:
    """Tells our own writes from other changes in Shopify's `inventory_levels/update` webhooks.

    Both kinds are ignored (Shopify's `available` is never an input to the mesh); the split is
    counted so an operator sees Shopify-side edits (`external`) that the next push will overwrite.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def classify(self, body: dict[str, Any]) -> str:
        """`echo` when the body reports the `available` we last pushed for that level, else `external`."""
        try:
            item_gid = f"gid://shopify/InventoryItem/{int(body['inventory_item_id'])}"
            location_gid = f"gid://shopify/Location/{int(body['location_id'])}"
            available = int(body["available"])
        except (KeyError, TypeError, ValueError):
            LEVEL_UPDATES.labels("external").inc()
            return "external"
        pushed = (
            await self.db.fetch(_PUSHED_QUANTITY, {"b_item_gid": item_gid, "b_location_gid": location_gid})
        ).scalar_one_or_none()
        kind = "echo" if pushed is not None and pushed == available else "external"
        LEVEL_UPDATES.labels(kind).inc()
        return kind
